package dev.gradscope.cli;

import static dev.gradscope.report.RunReportTest.assertPage;
import static dev.gradscope.report.RunReportTest.assertRunArtifacts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.report.CsvTable;
import dev.gradscope.report.ExperimentReport;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.report.RunReport;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code experiment optimizers}: the runs it plans from its options, a tiny run on the committed MNIST subset whose
 * update-ratio tables, figures and verdicts are recomputed here from the runs' own gradients.csv, and the lists it
 * refuses; and {@code experiment init --optimizer}, which takes every optimizer train takes, checked as train checks
 * it.
 */
class OptimizersExperimentTest {
    /** Both sides of a mean computed in the same order from the same doubles: only the last bit may differ. */
    private static final double SAME_MEAN = 1e-12;

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();
    private String out = "";

    private int run(String... args) {
        PrintStream saved = System.out;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (PrintStream capture = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
            System.setOut(capture);
            return GradScope.run(new PrintWriter(err, true), args);
        } finally {
            System.setOut(saved);
            out = bytes.toString(StandardCharsets.UTF_8);
        }
    }

    private static List<ExperimentCommand.RunSpec> plan(String... args) {
        CommandLine command = new CommandLine(new ExperimentCommand.Optimizers());
        command.parseArgs(args);
        return ((ExperimentCommand.Optimizers) command.getCommand()).plan();
    }

    private static List<ExperimentCommand.RunSpec> initPlan(String... args) {
        CommandLine command = new CommandLine(new ExperimentCommand.Init());
        command.parseArgs(args);
        return ((ExperimentCommand.Init) command.getCommand()).plan();
    }

    @Test
    void theDefaultPlanIsOneRunPerOptimizerAtKerasDefaultRatesFromTheSameModel() {
        List<ExperimentCommand.RunSpec> specs = plan();
        assertEquals(List.of("sgd", "sgd momentum 0.9", "rmsprop", "adam", "adagrad"),
                specs.stream().map(ExperimentCommand.RunSpec::name).toList());
        assertEquals(List.of("sgd", "sgd-momentum-0.9", "rmsprop", "adam", "adagrad"),
                specs.stream().map(ExperimentCommand.RunSpec::dirName).toList());
        assertEquals(List.of("sgd", "sgd", "rmsprop", "adam", "adagrad"),
                specs.stream().map(s -> s.model().optimizerId()).toList());
        assertEquals(List.of(0.01, 0.01, 0.001, 0.001, 0.001),
                specs.stream().map(s -> s.model().learningRate()).toList());
        assertEquals(List.of(0.0, 0.9, 0.0, 0.0, 0.0), specs.stream().map(s -> s.model().momentum()).toList());
        for (ExperimentCommand.RunSpec spec : specs) {
            assertEquals("relu", spec.model().units().activation());
            assertTrue(Arrays.equals(new int[] {512, 256, 128, 64}, spec.model().hidden()));
            assertEquals("glorot_uniform", spec.model().initializer().toString());
            assertFalse(spec.clipping().on());
        }

        List<ExperimentCommand.RunSpec> chosen = plan("--optimizers", "RMSprop:0.5,adamw,nadam", "--activation",
                "tanh", "--hidden", "32,16");
        assertEquals(List.of("rmsprop momentum 0.5", "adamw", "nadam"),
                chosen.stream().map(ExperimentCommand.RunSpec::name).toList());
        assertEquals(0.5, chosen.get(0).model().momentum());
        assertEquals(Adam.ADAMW_WEIGHT_DECAY, chosen.get(1).model().weightDecay(), "adamw with Keras's decay");
        assertTrue(chosen.stream().allMatch(s -> s.model().units().activation().equals("tanh")
                && Arrays.equals(new int[] {32, 16}, s.model().hidden())));
    }

    @Test
    void badOptimizerListsAreUsageErrorsThatNameTheValidOnes() {
        String valid = "adam, adamw, sgd, rmsprop, nadam, adamax, adagrad";
        for (String[] bad : List.of(new String[] {"sgd,sgdd", "unknown optimizer 'sgdd'", valid},
                new String[] {"sgd,adam,sgd:0", "names sgd twice", ""},
                new String[] {"sgd:0.9,sgd:0.90", "names sgd momentum 0.9 twice", ""},
                new String[] {"", "needs a list of optimizers", valid},
                new String[] {"sgd,,adam", "needs a list of optimizers", valid},
                new String[] {"adam:0.9", "--momentum does not apply to --optimizer adam", "sgd and rmsprop"},
                new String[] {"sgd:fast", "the momentum 'fast' is not a number", ""},
                new String[] {"sgd:1", "--momentum must be in [0, 1)", ""},
                new String[] {"sgd:0.9:1", "unknown optimizer 'sgd:0.9:1'", valid})) {
            StringWriter errors = new StringWriter();
            int status = GradScope.run(new PrintWriter(errors, true), "experiment", "optimizers", "--device", "cpu",
                    "--optimizers", bad[0]);
            assertEquals(2, status, bad[0]);
            assertTrue(errors.toString().contains(bad[1]) && errors.toString().contains(bad[2]),
                    bad[0] + ": " + errors);
            assertTrue(errors.toString().contains("--optimizers"), errors.toString());
        }
        assertEquals(2, run("experiment", "optimizers", "--activation", "relux"));
        assertTrue(err.toString().contains("relux") && err.toString().contains("softsign"), err.toString());
        assertEquals(2, run("experiment", "optimizers", "--hidden", "32,0"));
        assertTrue(err.toString().contains("--hidden needs widths >= 1"), err.toString());
    }

    /**
     * Two optimizers for two epochs on 512 subset images (2 steps an epoch) in a small MLP: every file, and every
     * update-ratio number of the page's tables, figures and verdicts equal to what the runs' gradients.csv say.
     */
    @Test
    void aTinyRunWritesUpdateRatiosEqualToTheRunsGradientFiles() throws IOException {
        Path dir = tmp.resolve("optimizers");
        List<String> args = new ArrayList<>(List.of("experiment", "optimizers", "--device", "cpu", "--data-dir",
                MnistSubset.dir().toString(), "--train-limit", "512", "--epochs", "2", "--out", dir.toString(),
                "--quiet", "--optimizers", "sgd,adam", "--hidden", "32,16"));
        assertEquals(0, run(args.toArray(String[]::new)), err.toString());
        List<String> figures = List.of("update-ratio-by-depth-epoch-1", "update-ratio-by-depth-last-epoch",
                "update-ratio-per-step", "loss", "val-accuracy", "accuracy");
        for (String base : figures) {
            for (String ext : List.of(".png", ".svg", ".csv")) {
                assertTrue(Files.isRegularFile(dir.resolve(ExperimentReport.FIGURES_DIR).resolve(base + ext)),
                        base + ext);
            }
        }
        assertPage(dir.resolve(ExperimentReport.REPORT_FILE), figures.size());
        String page = Files.readString(dir.resolve(ExperimentReport.REPORT_FILE));

        CsvTable ratios = CsvTable.read(dir.resolve("update-ratios.csv"));
        CsvTable spreads = CsvTable.read(dir.resolve("update-ratio-spread.csv"));
        CsvTable byDepth = CsvTable.read(dir.resolve(ExperimentReport.FIGURES_DIR)
                .resolve("update-ratio-by-depth-epoch-1.csv"));
        CsvTable perStep = CsvTable.read(dir.resolve(ExperimentReport.FIGURES_DIR).resolve("update-ratio-per-step.csv"));
        for (String name : List.of("sgd", "adam")) {
            Path runDir = dir.resolve(ExperimentReport.RUNS_DIR).resolve(name);
            // 4 steps; 3 Dense layers x (kernel, bias); the 2 hidden layers watched in each of 2 epochs.
            assertRunArtifacts(runDir, 4, 6, 4);
            @SuppressWarnings("unchecked")
            Map<String, Object> config = (Map<String, Object>) HistoryJson.read(runDir.resolve(RunReport.HISTORY_FILE))
                    .get("config");
            assertEquals(name, ((Map<?, ?>) config.get("optimizer")).get("name"));
            assertEquals(name.equals("sgd") ? 0.01 : 0.001,
                    ((Number) ((Map<?, ?>) config.get("optimizer")).get("learning_rate")).doubleValue());

            CsvTable gradients = CsvTable.read(runDir.resolve(RunReport.GRADIENTS_FILE));
            double[] epochOne = kernelMeans(gradients, 1);
            double[] epochTwo = kernelMeans(gradients, 2);
            assertEquals(3, epochOne.length);
            for (int d = 0; d < 3; d++) {
                List<Object> row = rowOf(ratios, name, String.valueOf(d + 1));
                assertClose(epochOne[d], number(ratios, row, "mean update ratio (epoch 1)"), name + " depth " + d);
                assertClose(epochTwo[d], number(ratios, row, "mean update ratio (last epoch)"), name + " depth " + d);
                List<Object> point = rowOf(byDepth, name, String.valueOf((double) (d + 1)));
                assertClose(epochOne[d], number(byDepth, point, "y"), "figure " + name + " depth " + d);
            }
            double spreadOne = max(epochOne) / min(epochOne);
            List<Object> spreadRow = rowOf(spreads, name, null);
            assertClose(epochOne[0], number(spreads, spreadRow, "layer 1 (epoch 1)"), name);
            assertClose(epochOne[2], number(spreads, spreadRow, "output layer (epoch 1)"), name);
            assertClose(spreadOne, number(spreads, spreadRow, "max / min (epoch 1)"), name);
            assertClose(max(epochTwo) / min(epochTwo), number(spreads, spreadRow, "max / min (last epoch)"), name);
            // the verdict states the spread and every layer's ratio, as the page rounds them
            assertTrue(page.contains(name + ": update ratios " + ExperimentCommand.round(spreadOne) + "x across"
                    + " layers"), name + ": " + page);
            assertTrue(page.contains(ExperimentCommand.round(epochOne[0]) + ", " + ExperimentCommand.round(epochOne[1])
                    + ", " + ExperimentCommand.round(epochOne[2])), name);
            assertTrue(out.contains(name + " " + ExperimentCommand.round(spreadOne) + "x"), out);

            // layer 1's ratio per step: the update_ratio column of its kernel's rows, step by step
            List<Double> layerOne = new ArrayList<>();
            Object firstLayer = gradients.row(0).get(gradients.header().indexOf("layer_index"));
            for (List<Object> row : gradients.rows()) {
                if (row.get(gradients.header().indexOf("layer_index")).equals(firstLayer)
                        && row.get(gradients.header().indexOf("parameter")).equals("kernel")) {
                    layerOne.add(Double.parseDouble((String) row.get(gradients.header().indexOf("update_ratio"))));
                }
            }
            assertEquals(layerOne, perStep.rows().stream().filter(r -> r.get(0).equals(name))
                    .map(r -> Double.parseDouble((String) r.get(2))).toList());
        }
        // Each run keeps its weights as train --out does, and gradscope evaluate finds its last test accuracy.
        Path evaluation = tmp.resolve("adam.json");
        assertEquals(0, run("evaluate", dir.resolve("runs/adam/model.safetensors").toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", evaluation.toString()), err.toString());
        List<?> validation = (List<?>) HistoryJson.read(dir.resolve("runs/adam").resolve(RunReport.HISTORY_FILE))
                .get("val_accuracy");
        assertEquals(validation.get(validation.size() - 1), HistoryJson.read(evaluation).get("accuracy"));
        assertTrue(page.contains("Reproduce") && page.contains("--optimizers sgd,adam") && page.contains(
                "--activation relu") && page.contains("--hidden 32,16"), "the command line");
    }

    /** The mean update_ratio of each kernel (in layer order) over the rows of {@code epoch} (from 1). */
    static double[] kernelMeans(CsvTable gradients, int epoch) {
        int epochColumn = gradients.header().indexOf("epoch");
        int layerColumn = gradients.header().indexOf("layer_index");
        int parameterColumn = gradients.header().indexOf("parameter");
        int ratioColumn = gradients.header().indexOf("update_ratio");
        List<String> layers = new ArrayList<>();
        List<double[]> sums = new ArrayList<>(); // sum, count
        for (List<Object> row : gradients.rows()) {
            if (!row.get(epochColumn).equals(String.valueOf(epoch)) || !row.get(parameterColumn).equals("kernel")) {
                continue;
            }
            String layer = (String) row.get(layerColumn);
            if (!layers.contains(layer)) {
                layers.add(layer);
                sums.add(new double[2]);
            }
            double[] sum = sums.get(layers.indexOf(layer));
            sum[0] += Double.parseDouble((String) row.get(ratioColumn));
            sum[1]++;
        }
        return sums.stream().mapToDouble(s -> s[0] / s[1]).toArray();
    }

    private static List<Object> rowOf(CsvTable table, String first, String second) {
        return table.rows().stream().filter(r -> r.get(0).equals(first) && (second == null || r.get(1).equals(second)))
                .findFirst().orElseThrow(() -> new AssertionError("no row " + first + ", " + second));
    }

    private static double number(CsvTable table, List<Object> row, String column) {
        return Double.parseDouble((String) row.get(table.header().indexOf(column)));
    }

    private static double max(double[] values) {
        return Arrays.stream(values).max().orElseThrow();
    }

    private static double min(double[] values) {
        return Arrays.stream(values).min().orElseThrow();
    }

    private static void assertClose(double expected, double actual, String what) {
        assertTrue(expected > 0 && Math.abs(actual - expected) <= SAME_MEAN * expected,
                what + ": expected " + expected + ", got " + actual);
    }

    @Test
    void initTakesEveryOptimizerTrainTakesWithTheSettingsThatApply() {
        ModelOptions.Resolved rmsprop = initPlan("--scales", "1", "--optimizer", "rmsprop", "--momentum", "0.9",
                "--rho", "0.8", "--centered").get(0).model();
        assertEquals("rmsprop", rmsprop.optimizerId());
        assertEquals(0.001, rmsprop.learningRate());
        assertEquals(0.9, rmsprop.momentum());
        assertEquals(0.8, rmsprop.rho());
        assertTrue(rmsprop.centered());
        ModelOptions.Resolved adagrad = initPlan("--scales", "1", "--optimizer", "adagrad", "--initial-accumulator",
                "0.5").get(0).model();
        assertEquals(0.5, adagrad.initialAccumulator());
        assertEquals(" --optimizer adagrad --learning-rate 0.001 --initial-accumulator 0.5",
                OptimizerOptions.arguments(adagrad));
        ModelOptions.Resolved sgd = initPlan("--scales", "1,3").get(1).model();
        assertEquals("sgd", sgd.optimizerId(), "plain SGD stays the default");
        assertEquals(0.01, sgd.learningRate());
        assertEquals(0.0, sgd.momentum());
        assertEquals("random_normal:3.0", sgd.initializer().toString());
        assertEquals(" --optimizer sgd --learning-rate 0.01 --momentum 0.9 --nesterov", OptimizerOptions.arguments(
                initPlan("--scales", "1", "--momentum", "0.9", "--nesterov").get(0).model()));
        for (String optimizer : ModelOptions.OPTIMIZERS) {
            assertEquals(optimizer, initPlan("--scales", "1", "--optimizer", optimizer).get(0).model().optimizerId());
        }
        assertThrows(CommandLine.ParameterException.class, () -> initPlan("--optimizer", "adam", "--learning-rate",
                "1e-50"), "a rate a float cannot hold, refused as train refuses it");
    }

    @Test
    void initRefusesWhatTrainRefusesWithTrainsMessage() {
        for (String[] bad : List.of(new String[] {"--optimizer", "lion"},
                new String[] {"--optimizer", "adam", "--momentum", "0.9"},
                new String[] {"--optimizer", "sgd", "--amsgrad"},
                new String[] {"--optimizer", "adagrad", "--rho", "0.9"})) {
            List<String> trainArgs = new ArrayList<>(List.of("train", "--device", "cpu"));
            trainArgs.addAll(List.of(bad));
            StringWriter trainErrors = new StringWriter();
            assertEquals(2, GradScope.run(new PrintWriter(trainErrors, true), trainArgs.toArray(String[]::new)));
            List<String> initArgs = new ArrayList<>(List.of("experiment", "init", "--device", "cpu"));
            initArgs.addAll(List.of(bad));
            StringWriter initErrors = new StringWriter();
            assertEquals(2, GradScope.run(new PrintWriter(initErrors, true), initArgs.toArray(String[]::new)),
                    String.join(" ", bad));
            String message = trainErrors.toString().lines().findFirst().orElseThrow();
            assertTrue(initErrors.toString().contains(message), "train says " + message + "; init says " + initErrors);
        }
    }
}
