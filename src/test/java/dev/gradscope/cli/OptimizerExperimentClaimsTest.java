package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import dev.gradscope.report.CsvTable;
import dev.gradscope.report.ExperimentReport;
import dev.gradscope.report.RunReport;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * What {@code experiment optimizers}' and {@code experiment init --optimizer}'s pages say, checked against their own
 * runs: clipped adagrad's step bound, the learning rate that gives adagrad SGD-sized steps, the glorot spread of
 * maxout's kernels, the verdicts' numbers, the Reproduce line.
 */
class OptimizerExperimentClaimsTest {
    @TempDir
    Path tmp;

    private static int run(String... args) {
        StringWriter err = new StringWriter();
        int status = GradScope.run(new PrintWriter(err, true), args);
        assertEquals(0, status, err.toString());
        return status;
    }

    /** Per global step, the L2 norm of the update of all parameters together, from a run's gradients.csv. */
    private static Map<String, Double> globalUpdateNorms(Path runDir) {
        CsvTable g = CsvTable.read(runDir.resolve(RunReport.GRADIENTS_FILE));
        int step = g.header().indexOf("global_step");
        int update = g.header().indexOf("update_norm");
        Map<String, Double> squares = new LinkedHashMap<>();
        for (List<Object> row : g.rows()) {
            double u = Double.parseDouble((String) row.get(update));
            squares.merge((String) row.get(step), u * u, Double::sum);
        }
        squares.replaceAll((k, v) -> Math.sqrt(v));
        return squares;
    }

    private static String pageText(Path dir) throws IOException {
        return Files.readString(dir.resolve(ExperimentReport.REPORT_FILE)).replaceAll("<[^>]+>", " ")
                .replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"")
                .replace("&#39;", "'");
    }

    /**
     * Adagrad's accumulator starts at 0.1, so a clipped gradient of global norm MAX moves all parameters together by
     * at most lr × MAX / √0.1: the clipped run's steps are hundreds of times smaller than the unclipped run's. The
     * page says "a clipped run's steps stay near the learning rate per parameter, as an unclipped run's do: the limit
     * sets no bound of its own on them".
     */
    @Test
    void initWithAdagradAndClippingDoesNotDenyTheBoundItsStepsObey() throws IOException {
        Path dir = tmp.resolve("init");
        run("experiment", "init", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--train-limit",
                "512", "--epochs", "1", "--scales", "1", "--optimizer", "adagrad", "--clip-norm", "1", "--out",
                dir.toString(), "--quiet");
        Map<String, Double> plain = globalUpdateNorms(dir.resolve("runs/sigma-1"));
        Map<String, Double> clipped = globalUpdateNorms(dir.resolve("runs/sigma-1-clipped"));
        double bound = 0.001 * 1 / Math.sqrt(0.1);
        for (Map.Entry<String, Double> e : clipped.entrySet()) {
            assertTrue(e.getValue() <= bound * 1.001, "step " + e.getKey() + ": " + e.getValue() + " > " + bound);
        }
        assertTrue(clipped.get("1") < plain.get("1") / 100, "clipped " + clipped.get("1") + ", plain "
                + plain.get("1"));
        String page = pageText(dir);
        assertFalse(page.contains("the limit sets no bound of its own"), "the page denies the bound lr × MAX / √0.1 = "
                + bound + " that every clipped step obeys (clipped step 1: " + clipped.get("1") + ", unclipped: "
                + plain.get("1") + ")");
    }

    /**
     * The adagrad verdict advises a learning rate that gives adagrad SGD-sized first steps: lr × g / √0.1 = 0.01 × g at
     * lr = 0.01 × √0.1. Training adagrad at the advised rate and SGD at its default, the first global steps agree.
     */
    @Test
    void theAdagradAdviceGivesStepsOfSgdsSize() throws IOException {
        Path dir = tmp.resolve("advice");
        run("experiment", "optimizers", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(),
                "--train-limit", "256", "--epochs", "1", "--hidden", "8", "--optimizers", "sgd,adagrad", "--out",
                dir.toString(), "--quiet");
        Matcher advice = Pattern.compile("train --optimizer adagrad --learning-rate ([0-9.e-]+)")
                .matcher(pageText(dir));
        assertTrue(advice.find(), "no advice on adagrad's rate");
        assertEquals(0.01 * Math.sqrt(0.1), Double.parseDouble(advice.group(1)), 0.00005, advice.group());
        Map<String, Double> firstSteps = new LinkedHashMap<>();
        for (String[] optimizer : List.of(new String[] {"sgd", "0.01"}, new String[] {"adagrad", advice.group(1)})) {
            Path out = tmp.resolve(optimizer[0]);
            run("train", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--train-limit", "256",
                    "--epochs", "1", "--hidden", "32,16", "--optimizer", optimizer[0], "--learning-rate", optimizer[1],
                    "--out", out.toString(), "--quiet");
            firstSteps.put(optimizer[0], globalUpdateNorms(out).get("1"));
        }
        double ratio = firstSteps.get("adagrad") / firstSteps.get("sgd");
        assertTrue(ratio > 0.8 && ratio < 1.25, "adagrad at the advised rate takes a first step " + ratio
                + " times SGD's");
    }

    /** The Reproduce line, parsed back as a shell would split it, gives the same runs. */
    @Test
    void theReproduceLineParsesBackToTheSameRuns() throws IOException {
        Path dir = tmp.resolve("optimizers");
        run("experiment", "optimizers", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(),
                "--train-limit", "256", "--epochs", "1", "--hidden", "8", "--optimizers", "sgd, RMSprop:0.90 ,adam",
                "--out",
                dir.toString(), "--quiet");
        String html = Files.readString(dir.resolve(ExperimentReport.REPORT_FILE));
        Matcher pre = Pattern.compile("<pre>(.*?)</pre>", Pattern.DOTALL).matcher(html);
        assertTrue(pre.find(), "no Reproduce line");
        String line = pre.group(1).replace("\\\n", " ");
        List<String> words = new ArrayList<>(Arrays.asList(line.trim().split("\\s+")));
        assertEquals(List.of("gradscope", "experiment", "optimizers"), words.subList(0, 3));
        String[] args = words.subList(3, words.size()).toArray(String[]::new);
        CommandLine command = new CommandLine(new ExperimentCommand.Optimizers());
        assertDoesNotThrow(() -> command.parseArgs(args), "Reproduce: " + line);
        assertEquals(List.of("sgd", "rmsprop momentum 0.9", "adam"), ((ExperimentCommand.Optimizers)
                command.getCommand()).plan().stream().map(ExperimentCommand.RunSpec::name).toList());
        assertTrue(line.contains("--optimizers sgd,rmsprop:0.9,adam"), line);
    }

    /** A momentum is named as one writes it: 1e-20 is not "1.0E-20", 0.90 is 0.9. */
    @Test
    void momentaAreNamedAsOneWritesThem() {
        CommandLine command = new CommandLine(new ExperimentCommand.Optimizers());
        command.parseArgs("--optimizers", "sgd:1e-20,sgd:0.90,rmsprop:0.0001");
        List<ExperimentCommand.RunSpec> specs = ((ExperimentCommand.Optimizers) command.getCommand()).plan();
        assertEquals(List.of("sgd momentum 1e-20", "sgd momentum 0.9", "rmsprop momentum 0.0001"),
                specs.stream().map(ExperimentCommand.RunSpec::name).toList());
        assertEquals(List.of("sgd-momentum-1e-20", "sgd-momentum-0.9", "rmsprop-momentum-0.0001"),
                specs.stream().map(ExperimentCommand.RunSpec::dirName).toList());
        assertEquals(1e-20, specs.get(0).model().momentum());
        for (double x : new double[] {0.9, 1e-4, 9.5e-5, 1e-20, 0.123456789, 1.5e-7}) {
            assertEquals(x, Double.parseDouble(ExperimentCommand.plainNumber(x)), ExperimentCommand.plainNumber(x));
            assertFalse(ExperimentCommand.plainNumber(x).contains("E"), ExperimentCommand.plainNumber(x));
        }
    }

    /**
     * The page's "their ratios differ across layers by √(fan_in + fan_out), Nx in this MLP", against the spread of
     * the kernels' actual scale ||W|| / √(weights) at step 1. Maxout's kernels have width × pieces columns, which
     * glorotSpread leaves out.
     */
    @Test
    void theStatedGlorotSpreadIsTheKernelsScaleSpreadForMaxoutToo() throws IOException {
        Path dir = tmp.resolve("maxout");
        run("experiment", "optimizers", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(),
                "--train-limit", "256", "--epochs", "1", "--activation", "maxout", "--optimizers", "adam", "--out",
                dir.toString(), "--quiet");
        CsvTable g = CsvTable.read(dir.resolve("runs/adam").resolve(RunReport.GRADIENTS_FILE));
        int[] widths = {784, 512, 256, 128, 64, 10};
        List<Double> scales = new ArrayList<>();
        for (List<Object> row : g.rows()) {
            if (row.get(g.header().indexOf("global_step")).equals("1")
                    && row.get(g.header().indexOf("parameter")).equals("kernel")) {
                int d = scales.size();
                long weights = (long) widths[d] * widths[d + 1] * (d + 1 < widths.length - 1 ? 2 : 1);
                scales.add(Double.parseDouble((String) row.get(g.header().indexOf("weight_norm")))
                        / Math.sqrt(weights));
            }
        }
        double measured = scales.stream().mapToDouble(x -> x).max().orElseThrow()
                / scales.stream().mapToDouble(x -> x).min().orElseThrow();
        Matcher stated = Pattern.compile("([0-9.]+)x in this MLP").matcher(pageText(dir));
        assertTrue(stated.find(), "no spread stated");
        double page = Double.parseDouble(stated.group(1));
        assertTrue(Math.abs(page - measured) <= 0.05 * measured, "page says " + page + "x, the kernels' scales differ"
                + " by " + measured + "x");
    }

    /** glorot_uniform's scale √(2 / (fan_in + fan_out)) from the kernels' shapes: maxout's have units × pieces. */
    @Test
    void glorotSpreadIsTakenFromTheKernelsShapes() {
        assertEquals(Math.sqrt((784 + 512) / 74.0), spreadOf("relu", 2, new int[] {512, 256, 128, 64}), 1e-12);
        assertEquals(Math.sqrt((784 + 1024) / 74.0), spreadOf("maxout", 2, new int[] {512, 256, 128, 64}), 1e-12);
        assertEquals(Math.sqrt((784 + 1536) / 74.0), spreadOf("maxout", 3, new int[] {512, 256, 128, 64}), 1e-12);
        // the smallest fan need not be the output layer's: 784-32-4-10 has fans 816, 36 and 14
        assertEquals(Math.sqrt(816 / 14.0), spreadOf("tanh", 2, new int[] {32, 4}), 1e-12);
    }

    private static double spreadOf(String activation, int pieces, int[] hidden) {
        ModelOptions model = ExperimentCommand.chapterModel(activation, hidden, "glorot_uniform");
        model.maxoutPieces = pieces;
        return ExperimentCommand.Optimizers.glorotSpread(model.resolve(IllegalArgumentException::new));
    }

    /**
     * Every run starts from the same weights and sees the same first batch: step 1's gradient and weight norms are
     * equal across runs, parameter by parameter. The evenness and adagrad verdicts and the last epoch's caption state
     * what the runs' gradients.csv say.
     */
    @Test
    void theRunsStartAlikeAndTheVerdictsStateTheirNumbers() throws IOException {
        Path dir = tmp.resolve("verdicts");
        run("experiment", "optimizers", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(),
                "--train-limit", "512", "--epochs", "2", "--hidden", "32,16", "--optimizers", "sgd,adam,adagrad",
                "--out", dir.toString(), "--quiet");
        Map<String, List<String>> stepOne = new LinkedHashMap<>();
        Map<String, double[]> first = new LinkedHashMap<>();
        Map<String, double[]> last = new LinkedHashMap<>();
        for (String name : List.of("sgd", "adam", "adagrad")) {
            CsvTable g = CsvTable.read(dir.resolve("runs").resolve(name).resolve(RunReport.GRADIENTS_FILE));
            List<String> norms = new ArrayList<>();
            for (List<Object> row : g.rows()) {
                if (row.get(g.header().indexOf("global_step")).equals("1")) {
                    norms.add(row.get(g.header().indexOf("layer_index")) + " "
                            + row.get(g.header().indexOf("parameter"))
                            + " " + row.get(g.header().indexOf("grad_norm")) + " "
                            + row.get(g.header().indexOf("weight_norm")));
                }
            }
            assertEquals(6, norms.size(), name);
            stepOne.put(name, norms);
            first.put(name, OptimizersExperimentTest.kernelMeans(g, 1));
            last.put(name, OptimizersExperimentTest.kernelMeans(g, 2));
        }
        assertEquals(stepOne.get("sgd"), stepOne.get("adam"));
        assertEquals(stepOne.get("sgd"), stepOne.get("adagrad"));

        String page = pageText(dir).replaceAll("\\s+", " ");
        double sgdSpread = spread(first.get("sgd"));
        List<String> notEven = new ArrayList<>();
        for (String name : List.of("adam", "adagrad")) {
            if (!(spread(first.get(name)) < sgdSpread)) {
                notEven.add(name);
            }
            assertTrue(page.contains(name + " " + ExperimentCommand.round(spread(first.get(name))) + "x"), name);
        }
        assertTrue(page.contains(notEven.isEmpty() ? "Confirmed: every adaptive optimizer gives the layers more even"
                : "Not confirmed for " + String.join(", ", notEven) + ":"), notEven + ": " + page);
        assertTrue(page.contains("sgd " + ExperimentCommand.round(sgdSpread) + "x;"), page);

        String adagradOne = ExperimentCommand.round(first.get("adagrad")[0]);
        String adagradLast = ExperimentCommand.round(last.get("adagrad")[0]);
        assertTrue(page.contains("Layer 1's mean update ratio: " + adagradOne + " in epoch 1, " + adagradLast
                + " in the last (plain SGD's in epoch 1: " + ExperimentCommand.round(first.get("sgd")[0]) + ", "
                + ExperimentCommand.ratioText(first.get("adagrad")[0] / first.get("sgd")[0]) + " of it)"), page);
        for (String name : List.of("sgd", "adam", "adagrad")) {
            double a = first.get(name)[0];
            double b = last.get(name)[0];
            assertTrue(page.contains(name + " " + ExperimentCommand.round(a) + " → " + ExperimentCommand.round(b) + " ("
                    + (Math.abs(b / a - 1) < 0.05 ? "about the same" : b > a ? "grew" : "shrank") + ")"),
                    name + ": " + page);
        }
    }

    private static double spread(double[] ratios) {
        return Arrays.stream(ratios).max().orElseThrow() / Arrays.stream(ratios).min().orElseThrow();
    }

    /**
     * init's page with an adaptive optimizer: how it sizes steps and what clipping bounds, per optimizer; the
     * optimizer named with every setting that differs from its defaults.
     */
    @Test
    void initDescribesEachAdaptiveOptimizersStepsAndClippedBound() throws IOException {
        Map<String, List<String>> expected = new LinkedHashMap<>();
        expected.put("adam", List.of("adam (lr 0.001)", "adam divides each parameter's step by the running root mean"
                + " square of its gradient, so a clipped run's steps stay of the order of the learning rate per"
                + " parameter, as an unclipped run's do, the limit sets no bound of its own on them."));
        expected.put("rmsprop", List.of("rmsprop (lr 0.001, rho 0.8)", "as long as the gradient is well above"
                + " √epsilon = 3.2e-04 per parameter (Keras's epsilon, 1e-7, is inside the square root",
                "; for gradients that large, the limit sets no bound of its own on them."));
        expected.put("adagrad", List.of("adagrad (lr 0.001, initial accumulator 0.5)", "so a step moves a parameter"
                + " by at most lr × |g| / √A in a step: the whole step (all parameters together) is at most"
                + " lr × MAX / √A = 0.001 × 1 / √0.5 = " + ExperimentCommand.round(0.001 / Math.sqrt(0.5)) + " long.",
                "while its squared gradients add little to A its step is lr × g / √A = "
                        + ExperimentCommand.round(0.001 / Math.sqrt(0.5)) + " × g"));
        for (Map.Entry<String, List<String>> e : expected.entrySet()) {
            Path dir = tmp.resolve("init-" + e.getKey());
            List<String> args = new ArrayList<>(List.of("experiment", "init", "--device", "cpu", "--data-dir",
                    MnistSubset.dir().toString(), "--train-limit", "256", "--epochs", "1", "--scales", "1",
                    "--optimizer", e.getKey(), "--clip-norm", "1", "--out", dir.toString(), "--quiet"));
            if (e.getKey().equals("rmsprop")) {
                args.addAll(List.of("--rho", "0.8"));
            }
            if (e.getKey().equals("adagrad")) {
                args.addAll(List.of("--initial-accumulator", "0.5"));
            }
            run(args.toArray(String[]::new));
            String page = pageText(dir).replaceAll("\\s+", " ");
            for (String sentence : e.getValue()) {
                assertTrue(page.contains(sentence), e.getKey() + ": no '" + sentence + "' in " + page);
            }
            assertEquals(!e.getKey().equals("adagrad"), page.contains("the limit sets no bound of its own on them."),
                    e.getKey());
            if (e.getKey().equals("adagrad")) {
                double bound = 0.001 / Math.sqrt(0.5);
                for (Map.Entry<String, Double> step : globalUpdateNorms(dir.resolve("runs/sigma-1-clipped"))
                        .entrySet()) {
                    assertTrue(step.getValue() <= bound, "step " + step.getKey() + ": " + step.getValue());
                }
            }
        }
    }

    /** Each command's help names its own default optimizer and every optimizer id, from the one table. */
    @Test
    void theHelpNamesEachCommandsDefaultOptimizer() {
        String ids = String.join(", ", OptimizerKind.ids());
        for (String[] command : List.of(new String[] {"train", "adam"}, new String[] {"bench", "adam"},
                new String[] {"experiment init", "sgd"})) {
            StringWriter help = new StringWriter();
            CommandLine cli = new CommandLine(new GradScope());
            for (String name : command[0].split(" ")) {
                cli = cli.getSubcommands().get(name);
            }
            String usage = cli.getUsageMessage(CommandLine.Help.Ansi.OFF).replaceAll("\\s+", " ");
            assertTrue(usage.contains(ids + " (default: " + command[1] + ")"), command[0] + ": " + usage);
        }
        String optimizers = new CommandLine(new GradScope()).getSubcommands().get("experiment").getSubcommands()
                .get("optimizers").getUsageMessage(CommandLine.Help.Ansi.OFF).replaceAll("\\s+", " ");
        assertTrue(optimizers.contains("valid ids: " + ids + ")"), optimizers);
    }
}
