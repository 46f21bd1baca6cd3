package dev.gradscope.report;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.train.Diagnosis;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.GradientProfiler;
import dev.gradscope.train.History;
import dev.gradscope.train.NonFiniteEvent;
import dev.gradscope.train.Profile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A run's files read back give the run's history and profile, number for number. */
class RunFilesTest {
    private static final Mnist MNIST = MnistSubset.load();

    @TempDir
    Path tmp;

    private static History train(String activation) {
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, 9, 784, new int[] {24, 12}, 10, Mlp.HiddenUnits.of(activation),
                     Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            return model.fit(MNIST.train().take(350), FitOptions.builder().batchSize(100).epochs(2)
                    .validation(MNIST.test().take(100)).verbose(0).profiler(new GradientProfiler()).build());
        }
    }

    private Path written(History history) {
        Path dir = tmp.resolve("run");
        RunReport.write(dir, "test", "test run", history, Map.of("activation", "prelu", "hidden", List.of(24, 12)));
        return dir;
    }

    @Test
    void aRunsFilesGiveBackItsHistoryAndProfileExactly() {
        History history = train("prelu");
        RunFiles.Run read = RunFiles.read(written(history));
        assertEquals(history.metrics(), read.history().metrics());
        assertEquals(history.epochSeconds(), read.history().epochSeconds());
        assertNull(read.history().nonFinite());
        assertEquals("prelu", read.config().get("activation"));
        Profile expected = history.profile();
        Profile actual = read.history().profile();
        assertEquals(expected.segments().stream().map(s -> s.layerIndex() + s.layerName() + s.parameter()).toList(),
                actual.segments().stream().map(s -> s.layerIndex() + s.layerName() + s.parameter()).toList());
        assertEquals(expected.steps().size(), actual.steps().size());
        for (int i = 0; i < expected.steps().size(); i++) {
            Profile.StepStatistics e = expected.steps().get(i);
            Profile.StepStatistics a = actual.steps().get(i);
            assertEquals(List.of(e.epoch(), e.step(), e.globalStep()), List.of(a.epoch(), a.step(), a.globalStep()));
            assertArrayEquals(e.gradientNorms(), a.gradientNorms(), "step " + i);
            assertArrayEquals(e.weightNorms(), a.weightNorms(), "step " + i);
            assertArrayEquals(e.updateNorms(), a.updateNorms(), "step " + i);
        }
        assertEquals(expected.units(), actual.units());
        assertEquals(expected.saturationThreshold(), actual.saturationThreshold());
    }

    /**
     * The diagnosis of a run read back equals the live one's, dead and saturated units included, where the units a
     * kernel feeds are an activation layer's after a PReLU's parameter or a batch normalization.
     */
    @Test
    void theDiagnosisOfARunReadBackIsTheLiveOnes() {
        for (boolean batchNorm : new boolean[] {false, true}) {
            History history;
            try (CpuBackend backend = new CpuBackend();
                 Sequential model = Mlp.build(backend, 9, 784, new int[] {24, 12}, 10, Mlp.HiddenUnits.of("prelu"),
                         Initializer.glorotUniform(), 0, batchNorm).compile(new Adam(),
                         Loss.CATEGORICAL_CROSSENTROPY)) {
                history = model.fit(MNIST.train().take(350), FitOptions.builder().batchSize(100).epochs(2)
                        .validation(MNIST.test().take(100)).verbose(0).profiler(new GradientProfiler()).build());
            }
            String live = Diagnosis.of(history).describe();
            assertTrue(live.lines().filter(l -> l.matches("[12] .*")).noneMatch(l -> l.trim().endsWith("-")),
                    "the live diagnosis has the hidden layers' unit statistics: " + live);
            assertEquals(live, Diagnosis.of(RunFiles.read(written(history)).history()).describe(),
                    "batch norm " + batchNorm);
        }
    }

    @Test
    void aNonFiniteEventAndNaNLossesComeBack() {
        History trained = train("relu");
        List<Double> nan = List.of(1.0, Double.NaN);
        History history = History.of(Map.of("loss", nan, "accuracy", List.of(0.5, 0.5)), trained.epochSeconds(),
                trained.profile(), new NonFiniteEvent(1, 2, "dense_1", true));
        RunFiles.Run read = RunFiles.read(written(history));
        assertEquals(new NonFiniteEvent(1, 2, "dense_1", true), read.history().nonFinite());
        assertTrue(Double.isNaN(read.history().get("loss").get(1)));
    }

    /**
     * The epoch whose model a run ended with comes back from history.json's "restored"; a run without it (one that
     * restored nothing, or one written before runs recorded it) ended with its last epoch; an epoch the run did not
     * train is refused, naming the file.
     */
    @Test
    void theRestoredEpochComesBack() {
        History history = train("relu");
        Path dir = written(history);
        RunFiles.Run plain = RunFiles.read(dir);
        assertNull(plain.restored());
        assertEquals(2, plain.modelEpoch());

        Path file = dir.resolve(RunReport.HISTORY_FILE);
        HistoryJson.put(file, HistoryJson.RESTORED_KEY, HistoryJson.restoredDocument(1, "val_loss",
                history.get("val_loss").get(0), Map.of("val_loss", history.get("val_loss").get(0))));
        RunFiles.Run restored = RunFiles.read(dir);
        assertEquals(new RunFiles.Restored(1, "val_loss"), restored.restored());
        assertEquals(1, restored.modelEpoch());
        assertEquals(history.metrics(), restored.history().metrics(), "restored is not a metric");

        ExperimentReport.Run run = new ExperimentReport.Run("r", dir, restored.history(),
                Diagnosis.of(restored.history()), 1, null, restored.modelEpoch());
        assertTrue(run.restored());
        assertEquals(history.get("val_accuracy").get(0), run.finalTestAccuracy());
        assertEquals(history.get("loss").get(0), run.modelLog("loss"));
        assertEquals(history.get("loss").get(1), run.last("loss"));

        HistoryJson.put(file, HistoryJson.RESTORED_KEY, HistoryJson.restoredDocument(3, "val_loss", 0.1, Map.of()));
        assertContains("history.json: restored is not {epoch from 1 to the run's 2, monitor, ...}",
                () -> RunFiles.read(dir));
    }

    /** A summary of runs that all ended with their last epoch has no "model epoch" column: nothing to tell apart. */
    @Test
    void aSummaryWithoutRestoredRunsHasNoModelEpoch() {
        History history = train("relu");
        ExperimentReport.Run run = new ExperimentReport.Run("r", tmp, history, Diagnosis.of(history), 1);
        CsvTable table = ExperimentReport.summaryTable(List.of(run));
        assertEquals(List.of("run", "epochs", "loss", "accuracy", "val_loss", "val_accuracy", "test_accuracy"),
                table.header().subList(0, 7));
        assertEquals(history.get("val_accuracy").get(1), run.finalTestAccuracy());
    }

    @Test
    void whatIsMissingOrMalformedIsNamed() throws IOException {
        InvalidDataException missing = assertThrows(InvalidDataException.class, () -> RunFiles.read(tmp));
        assertTrue(missing.getMessage().contains("history.json: file not found; is " + tmp
                + " a folder that train --out wrote?"), missing.getMessage());

        Path dir = written(train("relu"));
        Path gradients = dir.resolve(RunReport.GRADIENTS_FILE);
        String csv = Files.readString(gradients);
        Files.writeString(gradients, csv.replaceFirst("grad_norm", "gradient"));
        assertContains("gradients.csv: its columns are", () -> RunFiles.read(dir));
        String[] lines = csv.split("\n");
        lines[3] = lines[3].replaceFirst(",[^,]*,([^,]*,[^,]*,[^,]*)$", ",x,$1");
        Files.writeString(gradients, String.join("\n", lines) + "\n");
        assertContains("gradients.csv: line 4: grad_norm is not a number: 'x'", () -> RunFiles.read(dir));
        lines = csv.split("\n");
        String swapped = lines[7]; // step 2's first two rows: dense.kernel, dense.bias
        lines[7] = lines[8];
        lines[8] = swapped;
        Files.writeString(gradients, String.join("\n", lines) + "\n");
        assertContains("gradients.csv: line 8 should be step 2's dense.kernel, as in every step",
                () -> RunFiles.read(dir));
        Files.writeString(gradients, csv);

        Path history = dir.resolve(RunReport.HISTORY_FILE);
        Files.writeString(history, Files.readString(history).replace("\"diagnosis\"", "\"verdicts\""));
        assertContains("the run has not finished", () -> RunFiles.read(dir));
    }

    private static void assertContains(String expected, org.junit.jupiter.api.function.Executable read) {
        InvalidDataException e = assertThrows(InvalidDataException.class, read);
        assertTrue(e.getMessage().contains(expected), () -> "expected '" + expected + "' in: " + e.getMessage());
    }

    /** Rewrites cell {@code column} of data line {@code line} (1: the first after the header) of {@code file}. */
    private static void setCell(Path file, int line, String column, String value) throws IOException {
        List<String> lines = new java.util.ArrayList<>(Files.readAllLines(file));
        int index = List.of(lines.get(0).split(",", -1)).indexOf(column);
        String[] cells = lines.get(line).split(",", -1);
        cells[index] = value;
        lines.set(line, String.join(",", cells));
        Files.write(file, lines);
    }

    @Test
    void impossibleValuesAreRefusedWithTheirLine() throws IOException {
        Path dir = written(train("relu"));
        Path gradients = dir.resolve(RunReport.GRADIENTS_FILE);
        Path layers = dir.resolve(RunReport.LAYERS_FILE);
        byte[] gradientsCsv = Files.readAllBytes(gradients);
        byte[] layersCsv = Files.readAllBytes(layers);
        Object[][] cases = {
            {gradients, 1, "epoch", "0", "line 2: epoch 0, step 1, global step 1 is not a step"},
            {gradients, 7, "epoch", "3", "line 8: epoch 3, step 2, global step 2 is not a step after the last one of"
                    + " a run of 2 epochs"},
            {gradients, 7, "global_step", "1", "line 8: epoch 1, step 2, global step 1 is not a step after"},
            {gradients, 8, "step", "5", "line 9 should be step 2's dense.bias"},
            {gradients, 3, "grad_norm", "-5", "line 4: grad_norm is -5.0; a norm is >= 0"},
            {layers, 1, "dead_fraction", "5", "line 2: dead_fraction is 5.0; a fraction is within [0, 1]"},
            {layers, 1, "units", "-3", "line 2: epoch 1, layer_index 0, units -3 are not those of a layer"},
        };
        for (Object[] c : cases) {
            Files.write(gradients, gradientsCsv);
            Files.write(layers, layersCsv);
            setCell((Path) c[0], (Integer) c[1], (String) c[2], (String) c[3]);
            assertContains((String) c[4], () -> RunFiles.read(dir));
        }
        Files.write(layers, layersCsv);
        Files.writeString(gradients, new String(gradientsCsv, java.nio.charset.StandardCharsets.UTF_8) + "\n\n");
        RunFiles.read(dir); // blank lines at the end are no rows
        Files.writeString(gradients, String.join(",", RunReport.GRADIENTS_HEADER) + "\n");
        assertContains("gradients.csv: no steps, only the header", () -> RunFiles.read(dir));
    }

    @Test
    void tablesLeftByAnEarlierRunAreNotTakenForARunWithoutProfile() throws IOException {
        Path dir = written(train("relu"));
        assertTrue(Files.exists(dir.resolve(RunReport.GRADIENTS_FILE)));
        History unprofiled = History.of(Map.of("loss", List.of(1.0)), List.of(2.0), null, null);
        RunReport.write(dir, "test", "test run", unprofiled, Map.of("profile", false));
        assertTrue(!Files.exists(dir.resolve(RunReport.GRADIENTS_FILE))
                && !Files.exists(dir.resolve(RunReport.LAYERS_FILE)), "the report deletes the stale tables");
        Files.writeString(dir.resolve(RunReport.GRADIENTS_FILE), "left over");
        assertNull(RunFiles.read(dir).history().profile(), "and the reader does not read tables of such a run");
    }
}
