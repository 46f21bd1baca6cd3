package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.TensorBoardEventReader;
import dev.gradscope.data.TensorBoardEventReader.Event;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The TensorBoard callback writes what the history and the profile hold, where Keras's would. */
class TensorBoardTest {
    private static final Dataset TRAIN = MnistSubset.load().train().take(300);
    private static final Dataset TEST = MnistSubset.load().test().take(200);
    private static final int BATCH = 100;

    @TempDir
    Path dir;

    private static Sequential model(CpuBackend backend) {
        return Mlp.build(backend, 5, 784, new int[] {16, 8}, 10, Mlp.HiddenUnits.of("tanh"),
                Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(784);
    }

    /** The value of {@code tag} at {@code step}; fails unless there is exactly one. */
    private static float value(List<Event> events, String tag, long step) {
        List<Event> matches = events.stream().filter(e -> tag.equals(e.tag()) && e.step() == step).toList();
        assertEquals(1, matches.size(), tag + " at step " + step);
        return matches.get(0).simpleValue();
    }

    private static List<Event> tagged(List<Event> events, String tag) {
        return events.stream().filter(e -> tag.equals(e.tag())).toList();
    }

    @Test
    void everyEpochLogAndProfiledNumberIsWrittenAsItsSeries() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            TensorBoard board = new TensorBoard(dir, 1);
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(BATCH).epochs(2).validation(TEST)
                    .verbose(0).callback(board).build());
            List<Event> train = TensorBoardEventReader.readDirectory(dir.resolve("train"));
            List<Event> validation = TensorBoardEventReader.readDirectory(dir.resolve("validation"));
            for (int epoch = 0; epoch < 2; epoch++) {
                assertEquals((float) (double) history.get("loss").get(epoch), value(train, "epoch_loss", epoch));
                assertEquals((float) (double) history.get("accuracy").get(epoch), value(train, "epoch_accuracy", epoch));
                assertEquals(0.001f, value(train, "epoch_learning_rate", epoch));
                assertEquals((float) (double) history.get("val_loss").get(epoch), value(validation, "epoch_loss", epoch));
                assertEquals((float) (double) history.get("val_accuracy").get(epoch),
                        value(validation, "epoch_accuracy", epoch));
            }
            assertTrue(tagged(validation, "epoch_learning_rate").isEmpty(), "the rate is a training series");

            Profile profile = history.profile();
            assertEquals(6, profile.steps().size());
            for (Profile.StepStatistics step : profile.steps()) {
                for (int s = 0; s < profile.segments().size(); s++) {
                    Profile.Segment segment = profile.segments().get(s);
                    String tensor = segment.layerName() + "." + segment.parameter();
                    assertEquals((float) step.gradientNorms()[s], value(train, "gradient_norm/" + tensor,
                            step.globalStep()), tensor);
                    assertEquals((float) step.weightNorms()[s], value(train, "weight_norm/" + tensor,
                            step.globalStep()), tensor);
                    assertEquals((float) step.updateRatio(s), value(train, "update_ratio/" + tensor,
                            step.globalStep()), tensor);
                }
            }
            assertEquals(6, tagged(train, "gradient_norm/dense.kernel").size());
            assertEquals(4, profile.units().size(), "two watched layers, two epochs");
            for (Profile.UnitStatistics units : profile.units()) {
                String layer = units.layerName();
                assertEquals((float) units.deadFraction(), value(train, "dead_fraction/" + layer, units.epoch()));
                assertEquals((float) units.inactiveFraction(), value(train, "inactive_fraction/" + layer,
                        units.epoch()));
                assertEquals((float) units.saturatedFraction(), value(train, "saturated_fraction/" + layer,
                        units.epoch()));
                assertEquals((float) units.mean(), value(train, "activation_mean/" + layer, units.epoch()));
                assertEquals((float) units.std(), value(train, "activation_std/" + layer, units.epoch()));
            }

            // One histogram per parameter tensor and epoch; the last epoch's are the final weights'.
            for (Sequential.ParameterGroup group : model.parameterGroups()) {
                String tag = "weights/" + group.layer().name() + "." + group.slot().name();
                List<Event> histograms = tagged(train, tag);
                assertEquals(List.of(0L, 1L), histograms.stream().map(Event::step).toList(), tag);
                float[] weights = group.value().toFloatArray();
                double sum = 0;
                for (float w : weights) {
                    sum += w;
                }
                TensorBoardEventReader.Histogram last = histograms.get(1).histogram();
                assertEquals(weights.length, last.count(), tag);
                assertEquals(sum, last.sum(), tag);
            }
        }
    }

    @Test
    void histogramsComeEveryKEpochsAndNotAtAllByDefault() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            model.fit(TRAIN, FitOptions.builder().batchSize(BATCH).epochs(3).verbose(0)
                    .callback(new TensorBoard(dir.resolve("every2"), 2))
                    .callback(new TensorBoard(dir.resolve("none"))).build());
        }
        List<Event> every2 = TensorBoardEventReader.readDirectory(dir.resolve("every2").resolve("train"));
        assertEquals(List.of(0L, 2L), tagged(every2, "weights/dense.kernel").stream().map(Event::step).toList());
        assertTrue(TensorBoardEventReader.readDirectory(dir.resolve("none").resolve("train")).stream()
                .noneMatch(e -> e.histogram() != null));
        assertTrue(Files.notExists(dir.resolve("none").resolve("validation")), "no validation data, no folder");
        assertThrows(IllegalArgumentException.class, () -> new TensorBoard(dir, -1));
    }

    @Test
    void aTensorBoardThatCannotWriteSaysSoOnceAndTrainingGoesOn() throws Exception {
        Path blocker = Files.writeString(dir.resolve("not-a-folder"), "");
        TensorBoard board = new TensorBoard(blocker);
        java.io.PrintStream savedErr = System.err;
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(printed, true, java.nio.charset.StandardCharsets.UTF_8));
        History history;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            history = model.fit(TRAIN, FitOptions.builder().batchSize(BATCH).epochs(2).verbose(0).callback(board)
                    .build());
        } finally {
            System.setErr(savedErr);
        }
        assertEquals(2, history.epochs(), "both epochs trained");
        assertTrue(board.failure().contains("Not a directory"), board.failure());
        String warning = printed.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(1, warning.lines().filter(l -> l.contains("training goes on without TensorBoard events")).count(),
                warning);
        assertNull(board.trainFile());
    }

    @Test
    void aResumedRunAddsItsNewEpochsInAFileOfItsOwn() throws Exception {
        Path state = dir.resolve("state.safetensors");
        Path logs = dir.resolve("logs");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            model.fit(TRAIN, FitOptions.builder().batchSize(BATCH).epochs(1).verbose(0)
                    .callback(new TrainingStateCheckpoint(state, Map.of())).callback(new TensorBoard(logs)).build());
        }
        History resumed;
        TensorBoard board = new TensorBoard(logs);
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            resumed = model.fit(TRAIN, FitOptions.builder().batchSize(BATCH).epochs(2).verbose(0)
                    .resumeFrom(TrainingState.load(state, model)).callback(board).build());
        }
        try (Stream<Path> files = Files.list(logs.resolve("train"))) {
            assertEquals(2, files.count());
        }
        List<Event> second = TensorBoardEventReader.read(board.trainFile());
        assertEquals(List.of(1L), tagged(second, "epoch_loss").stream().map(Event::step).toList(),
                "only the epoch the resumed run trained");
        assertEquals(List.of(3L, 4L, 5L), tagged(second, "gradient_norm/dense.kernel").stream().map(Event::step)
                .toList(), "global steps go on from the first run's");
        List<Event> all = TensorBoardEventReader.readDirectory(logs.resolve("train"));
        assertEquals((float) (double) resumed.get("loss").get(0), value(all, "epoch_loss", 0));
        assertEquals((float) (double) resumed.get("loss").get(1), value(all, "epoch_loss", 1));
        assertNull(board.validationFile());
    }
}
