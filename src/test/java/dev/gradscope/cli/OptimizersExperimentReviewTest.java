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

/** Review "optexp": what experiment optimizers' and experiment init's pages say, checked against their own runs. */
class OptimizersExperimentReviewTest {
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
     * The adagrad verdict advises "train --optimizer adagrad --learning-rate 0.01 (or more) gives it steps of SGD's
     * size"; at that rate its first step is lr × g / √0.1, 3.16 times SGD's at its default 0.01.
     */
    @Test
    void theAdagradAdviceGivesStepsOfSgdsSize() throws IOException {
        Map<String, Double> firstSteps = new LinkedHashMap<>();
        for (String optimizer : List.of("sgd", "adagrad")) {
            Path out = tmp.resolve(optimizer);
            run("train", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--train-limit", "256",
                    "--epochs", "1", "--hidden", "32,16", "--optimizer", optimizer, "--learning-rate", "0.01", "--out",
                    out.toString(), "--quiet");
            firstSteps.put(optimizer, globalUpdateNorms(out).get("1"));
        }
        double ratio = firstSteps.get("adagrad") / firstSteps.get("sgd");
        assertTrue(ratio > 0.8 && ratio < 1.25, "adagrad at lr 0.01 takes a first step " + ratio
                + " times SGD's, not SGD's size; √0.1 × 0.01 = 0.0032 would");
    }

    /** The Reproduce line, parsed back as a shell would split it, gives the same runs. */
    @Test
    void theReproduceLineParsesBackToTheSameRuns() throws IOException {
        Path dir = tmp.resolve("optimizers");
        run("experiment", "optimizers", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(),
                "--train-limit", "256", "--epochs", "1", "--hidden", "8", "--optimizers", "sgd, adam", "--out",
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
        assertEquals(List.of("sgd", "adam"), ((ExperimentCommand.Optimizers) command.getCommand()).plan().stream()
                .map(ExperimentCommand.RunSpec::name).toList());
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
}
