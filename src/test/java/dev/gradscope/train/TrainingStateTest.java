package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Adagrad;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.RmsProp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import dev.gradscope.nn.WeightsFile;
import dev.gradscope.tensor.Backend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Saving a run's state and resuming from it: the same run as the one never interrupted, bit for bit. */
class TrainingStateTest {
    /** 450 rows in batches of 100: four full batches and a last one of 50 every epoch. */
    private static final Dataset TRAIN = MnistSubset.load().train().take(450);
    private static final Dataset TEST = MnistSubset.load().test().take(200);

    @TempDir
    Path dir;

    private static Sequential model(Backend backend, String activation, Supplier<Optimizer> optimizer) {
        return model(backend, activation, optimizer, 0);
    }

    /** After an activation id: hidden layers of Dense (linear) -> BatchNormalization -> that activation. */
    private static final String BATCH_NORM = "+batch_norm";

    private static Sequential model(Backend backend, String activation, Supplier<Optimizer> optimizer, double dropout) {
        return model(backend, activation, optimizer, dropout, 0);
    }

    private static Sequential model(Backend backend, String activation, Supplier<Optimizer> optimizer, double dropout,
                                    double labelSmoothing) {
        boolean batchNorm = activation.endsWith(BATCH_NORM);
        String id = batchNorm ? activation.substring(0, activation.length() - BATCH_NORM.length()) : activation;
        return Mlp.build(backend, 11, 784, new int[] {24, 12}, 10, Mlp.HiddenUnits.of(id),
                Initializer.glorotUniform(), dropout, batchNorm).compile(optimizer.get(), Loss.CATEGORICAL_CROSSENTROPY,
                labelSmoothing).build(784);
    }

    private static FitOptions.Builder options(int epochs) {
        return FitOptions.builder().batchSize(100).epochs(epochs).validation(TEST).verbose(0)
                .profiler(new GradientProfiler());
    }

    private static Supplier<Optimizer> optimizer(String id) {
        return switch (id) {
            case "adam" -> Adam::new;
            case "adamw" -> () -> new Adam(1e-3, 0.9, 0.999, 1e-7, 0.004);
            case "sgd_momentum" -> () -> new Sgd(0.05, 0.9, true);
            case "rmsprop" -> RmsProp::new;
            case "rmsprop_centered_momentum_decay" -> () -> new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0.01);
            case "adagrad" -> () -> new Adagrad(1e-2, 0.1, 1e-7, 0.004);
            default -> () -> new Sgd(0.05);
        };
    }

    /** Everything a run ends with that a resumed run must reproduce. */
    private record Outcome(float[] parameters, Map<String, float[]> optimizerState, long iterations,
                           Map<String, List<Double>> metrics, Profile profile, float[] layerState) {
    }

    private static Outcome outcome(Sequential model, History history) {
        Map<String, float[]> state = new LinkedHashMap<>();
        model.optimizer().stateBuffers().forEach((name, buffer) -> state.put(name, buffer.toFloatArray()));
        return new Outcome(model.parameters().toFloatArray(), state, model.optimizer().iterations(),
                history.metrics(), history.profile(),
                model.state() == null ? new float[0] : model.state().toFloatArray());
    }

    private static void assertSameOutcome(Outcome expected, Outcome actual) {
        assertArrayEquals(expected.parameters(), actual.parameters(), "parameters, bit for bit");
        assertArrayEquals(expected.layerState(), actual.layerState(), "moving statistics, bit for bit");
        assertEquals(expected.optimizerState().keySet(), actual.optimizerState().keySet());
        expected.optimizerState().forEach((name, values) ->
                assertArrayEquals(values, actual.optimizerState().get(name), "optimizer buffer " + name));
        assertEquals(expected.iterations(), actual.iterations(), "optimizer iterations");
        assertEquals(expected.metrics(), actual.metrics(), "every epoch's logs");
        assertSameProfile(expected.profile(), actual.profile());
    }

    private static void assertSameProfile(Profile expected, Profile actual) {
        assertEquals(expected.segments(), actual.segments());
        assertEquals(expected.saturationThreshold(), actual.saturationThreshold());
        assertEquals(expected.steps().size(), actual.steps().size(), "profiled steps");
        for (int i = 0; i < expected.steps().size(); i++) {
            Profile.StepStatistics e = expected.steps().get(i);
            Profile.StepStatistics a = actual.steps().get(i);
            String where = "step " + i + " (epoch " + e.epoch() + ", step " + e.step() + ")";
            assertEquals(List.of(e.epoch(), e.step(), e.globalStep()), List.of(a.epoch(), a.step(), a.globalStep()),
                    where);
            assertArrayEquals(e.gradientNorms(), a.gradientNorms(), where + ": gradient norms");
            assertArrayEquals(e.weightNorms(), a.weightNorms(), where + ": weight norms");
            assertArrayEquals(e.updateNorms(), a.updateNorms(), where + ": update norms");
        }
        assertEquals(expected.units(), actual.units(), "unit statistics");
    }

    /** Trains {@code epochs} epochs straight, then the same run stopped after {@code stopAfter} and resumed. */
    private void assertResumesExactly(String activation, String optimizerId, int stopAfter, int epochs,
                                      boolean emulateGraphsWhenResumed, double dropout) {
        assertResumesExactly(activation, optimizerId, stopAfter, epochs, emulateGraphsWhenResumed, dropout, 0);
    }

    private void assertResumesExactly(String activation, String optimizerId, int stopAfter, int epochs,
                                      boolean emulateGraphsWhenResumed, double dropout, double labelSmoothing) {
        Supplier<Optimizer> optimizer = optimizer(optimizerId);
        Outcome straight;
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, activation, optimizer, dropout)) {
            straight = outcome(model, model.fit(TRAIN, options(epochs).build()));
        }
        Path file = dir.resolve(activation + "-" + optimizerId + ".safetensors");
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, activation, optimizer, dropout)) {
            model.fit(TRAIN, options(stopAfter).callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, activation, optimizer, dropout)) {
            TrainingState state = TrainingState.load(file, model);
            assertEquals(stopAfter, state.epochs());
            History resumed = Trainer.fit(model, TRAIN, options(epochs).resumeFrom(state).stepsPerGraph(2).build(),
                    emulateGraphsWhenResumed);
            assertEquals(epochs, resumed.epochs(), "the history counts the earlier epochs too");
            assertEquals(epochs, resumed.epochSeconds().size());
            assertSameOutcome(straight, outcome(model, resumed));
        }
    }

    /**
     * A run whose loss smooths its labels resumes with them smoothed (its val_loss and loss are logged alike), in
     * eager steps and in replayed graphs.
     */
    @ParameterizedTest(name = "graphs when resumed: {0}")
    @ValueSource(booleans = {false, true})
    void aRunWithLabelSmoothingResumesBitForBit(boolean graphs) {
        assertResumesExactly("relu", "adam", 1, 3, graphs, 0, 0.1);
    }

    /**
     * A state from a run whose loss smoothed its labels otherwise is refused, naming both smoothings; one without
     * the key (saved before label smoothing existed) is a run without it.
     */
    @Test
    void aStateFitsOnlyAModelWithTheSameLabelSmoothing() {
        Path smoothed = dir.resolve("smoothed.safetensors");
        try (CpuBackend backend = new CpuBackend()) {
            try (Sequential model = model(backend, "relu", Adam::new, 0, 0.1)) {
                TrainingState.save(smoothed, model, model.fit(TRAIN, options(1).build()), Map.of());
            }
            for (double other : new double[] {0, 0.2}) {
                try (Sequential model = model(backend, "relu", Adam::new, 0, other)) {
                    float[] before = model.parameters().toFloatArray();
                    String message = assertThrows(InvalidDataException.class,
                            () -> TrainingState.load(smoothed, model)).getMessage();
                    assertContains("trained with label smoothing 0.1, the model's loss has " + other, message);
                    assertArrayEquals(before, model.parameters().toFloatArray(), "a refused state changes nothing");
                }
            }
            try (Sequential model = model(backend, "relu", Adam::new, 0, 0.1)) {
                assertEquals(1, TrainingState.load(smoothed, model).epochs());
            }
            // A state saved before label smoothing existed has no key: it had none.
            SafeTensors.Contents older = metadata("label_smoothing", null).apply(SafeTensors.read(smoothed));
            SafeTensors.write(smoothed, older.metadata(), new ArrayList<>(older.tensors().values()));
            try (Sequential model = model(backend, "relu", Adam::new, 0, 0)) {
                assertEquals(1, TrainingState.load(smoothed, model).epochs());
            }
            try (Sequential model = model(backend, "relu", Adam::new, 0, 0.1)) {
                assertContains("trained with label smoothing 0.0, the model's loss has 0.1", assertThrows(
                        InvalidDataException.class, () -> TrainingState.load(smoothed, model)).getMessage());
            }
        }
    }

    /** With dropout, the resumed epochs draw the masks of the uninterrupted run's (they depend on the epoch). */
    @ParameterizedTest(name = "{0}, dropout {1}")
    @CsvSource({"adam, 0", "adamw, 0", "sgd, 0", "sgd_momentum, 0", "rmsprop, 0", "rmsprop_centered_momentum_decay, 0",
        "adam, 0.3"})
    void aResumedRunIsTheUninterruptedRunBitForBit(String optimizerId, double dropout) {
        assertResumesExactly("relu", optimizerId, 1, 3, false, dropout);
    }

    /**
     * SGD, RMSprop and Adagrad count their updates (Keras's iterations, the step of a per-step schedule) and their
     * states record the count; a state saved before they counted records 0. Such a state still resumes as the
     * uninterrupted run, bit for bit (their rule needs no count and such a run has no per-step schedule), its count
     * going on from 0.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"sgd", "sgd_momentum", "rmsprop_centered_momentum_decay", "adagrad"})
    void aStateSavedBeforeSgdRmspropAndAdagradCountedResumesAsBefore(String optimizerId) {
        Supplier<Optimizer> optimizer = optimizer(optimizerId);
        Outcome straight;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", optimizer)) {
            straight = outcome(model, model.fit(TRAIN, options(3).build()));
        }
        assertEquals(15, straight.iterations(), "3 epochs of 5 steps, counted");
        Path file = dir.resolve(optimizerId + ".safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", optimizer)) {
            TrainingState.save(file, model, model.fit(TRAIN, options(1).build()), Map.of());
        }
        SafeTensors.Contents saved = SafeTensors.read(file);
        assertEquals("5", saved.metadata().get("iterations"), "the count a state saves now");
        SafeTensors.Contents before = metadata("iterations", "0").apply(saved);
        SafeTensors.write(file, before.metadata(), new ArrayList<>(before.tensors().values()));
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", optimizer)) {
            TrainingState state = TrainingState.load(file, model);
            assertEquals(0, model.optimizer().iterations(), "the saved count");
            Outcome resumed = outcome(model, model.fit(TRAIN, options(3).resumeFrom(state).build()));
            assertSameOutcome(new Outcome(straight.parameters(), straight.optimizerState(), 10, straight.metrics(),
                    straight.profile(), straight.layerState()), resumed);
        }
    }

    /**
     * A state saved before SGD counted records iterations 0 after its epochs. Loaded into an SGD that
     * now has a per-step schedule (Java: the schedule is not part of the saved settings), the schedule silently
     * starts again from step 0 (a fresh warmup after 5 updates) instead of being refused: the count is unknown, not 0.
     */
    @Test
    void aStateWithCountZeroAfterItsEpochsIsRefusedUnderAPerStepSchedule() {
        Path file = dir.resolve("old-sgd.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", () -> new Sgd(0.05))) {
            TrainingState.save(file, model, model.fit(TRAIN, options(1).build()), Map.of());
        }
        SafeTensors.Contents before = metadata("iterations", "0").apply(SafeTensors.read(file));
        SafeTensors.write(file, before.metadata(), new ArrayList<>(before.tensors().values()));
        Supplier<Optimizer> scheduled = () -> {
            Sgd sgd = new Sgd(0.05);
            sgd.setStepSchedule(dev.gradscope.tensor.StepSchedule.cosineDecay(0, 10, 0, 0));
            return sgd;
        };
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", scheduled)) {
            assertThrows(InvalidDataException.class, () -> TrainingState.load(file, model),
                    "1 epoch of 5 updates saved with count 0, resumed under a warmup that would restart at step 0");
        }
    }

    /**
     * Batch normalization's moving statistics are saved in the state and go on where they stopped, eagerly and
     * in replayed graphs; AdamW's weight decay leaves them alone.
     */
    @ParameterizedTest(name = "graphs when resumed: {0}")
    @ValueSource(booleans = {false, true})
    void batchNormalizationResumesWithItsMovingStatistics(boolean graphs) {
        assertResumesExactly("sigmoid" + BATCH_NORM, "adamw", 1, 3, graphs, 0);
    }

    @Test
    void learnedActivationParametersAndTheirMomentsResumeToo() {
        assertResumesExactly("prelu", "adam", 2, 3, false, 0);
    }

    @ParameterizedTest(name = "dropout {0}")
    @ValueSource(doubles = {0, 0.3})
    void aResumedRunMayReplayItsStepsAsGraphs(double dropout) {
        assertResumesExactly("tanh", "adam", 1, 2, true, dropout);
    }

    @Test
    void resumingTwiceIsStillTheSameRun() {
        Outcome straight;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "elu", Adam::new)) {
            straight = outcome(model, model.fit(TRAIN, options(3).build()));
        }
        Path file = dir.resolve("state.safetensors");
        Outcome last = null;
        for (int reached = 1; reached <= 3; reached++) {
            try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "elu", Adam::new)) {
                FitOptions.Builder fit = options(reached).callback(new TrainingStateCheckpoint(file, Map.of()));
                if (reached > 1) {
                    fit.resumeFrom(TrainingState.load(file, model));
                }
                last = outcome(model, model.fit(TRAIN, fit.build()));
            }
        }
        assertSameOutcome(straight, last);
    }

    @Test
    void theFileNamesEveryPartAndNumPyCanReadIt() {
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            History history = model.fit(TRAIN, options(2).build());
            TrainingState.save(file, model, history, Map.of("run", "test"));
            SafeTensors.Contents contents = SafeTensors.read(file);
            assertEquals(TrainingState.FORMAT, contents.metadata().get("format"));
            assertEquals("2", contents.metadata().get("epochs"));
            assertEquals("10", contents.metadata().get("iterations"), "5 steps per epoch, 2 epochs");
            assertEquals("test", contents.metadata().get("run"));
            assertTrue(contents.metadata().get("optimizer").contains("\"name\":\"adam\""));
            List<String> names = new ArrayList<>(contents.tensors().keySet());
            assertTrue(names.containsAll(List.of("dense.kernel", "dense_2.bias", "optimizer/m/dense.kernel",
                    "optimizer/v/dense_2.bias", "profile/squared_gradient_norms")), names.toString());
            int segments = history.profile().segments().size();
            assertArrayEquals(new int[] {10, segments},
                    contents.tensors().get("profile/squared_update_norms").shape());
            float[] m = model.optimizer().stateBuffers().get("m").toFloatArray();
            float[] kernelMoments = contents.tensors().get("optimizer/m/dense.kernel").values();
            assertArrayEquals(Arrays.copyOf(m, kernelMoments.length), kernelMoments,
                    "the first kernel's moments are the first of the flat buffer");
        }
    }

    @Test
    void squaredNormsRoundTripToTheSameNorms() {
        SplittableRandom random = new SplittableRandom(3);
        List<Float> squares = new ArrayList<>(List.of(0f, Float.MIN_VALUE, Float.MIN_NORMAL, Float.MAX_VALUE,
                1f, Float.POSITIVE_INFINITY, Float.NaN, 3e-39f));
        for (int i = 0; i < 100_000; i++) {
            squares.add(Float.intBitsToFloat(random.nextInt(0, 0x7f800000))); // every finite float >= 0
        }
        for (float square : squares) {
            double norm = Math.sqrt(square); // as the profiler takes it
            float stored = (float) (norm * norm); // as the state stores it
            assertEquals(Double.doubleToLongBits(norm), Double.doubleToLongBits(Math.sqrt(stored)),
                    () -> "square " + square);
        }
    }

    @Test
    void savingRefusesANonFiniteState() {
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            History history = model.fit(TRAIN, options(1).build());
            float[] m = model.optimizer().stateBuffers().get("v").toFloatArray();
            m[5] = Float.NaN;
            backend.copyFromHost(m, model.optimizer().stateBuffers().get("v"));
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> TrainingState.save(file, model, history, Map.of()));
            assertTrue(e.getMessage().contains("optimizer/v/dense.kernel[0, 5] = NaN"), e.getMessage());
            assertFalse(Files.exists(file), "nothing written");
        }
    }

    /** Saves a one-epoch Adam run's state, rewrites it with {@code edit}, and loads it into a fresh model. */
    private String loadEdited(UnaryOperator<SafeTensors.Contents> edit, String activation,
                              Supplier<Optimizer> loadInto) {
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            TrainingState.save(file, model, model.fit(TRAIN, options(1).build()), Map.of());
        }
        SafeTensors.Contents edited = edit.apply(SafeTensors.read(file));
        SafeTensors.write(file, edited.metadata(), new ArrayList<>(edited.tensors().values()));
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, activation, loadInto)) {
            float[] before = model.parameters().toFloatArray();
            long iterations = model.optimizer().iterations();
            InvalidDataException e = assertThrows(InvalidDataException.class, () -> TrainingState.load(file, model));
            assertArrayEquals(before, model.parameters().toFloatArray(), "a refused state changes nothing");
            assertEquals(iterations, model.optimizer().iterations(), "nor the optimizer's step count");
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
            return e.getMessage();
        }
    }

    /**
     * The best weights early stopping keeps go into the state under best_weights/ and come back as saved; a state
     * whose copy does not fit the model, or names an epoch it did not finish, is refused and changes nothing.
     */
    @Test
    void theBestWeightsRoundTripAndABadCopyIsRefused() {
        Path file = dir.resolve("state.safetensors");
        WeightsFile.Values best;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu" + BATCH_NORM, Adam::new)) {
            model.fit(TRAIN, options(1).build());
            best = WeightsFile.values(model);
            // A second fit trains on: the state's parameters are not the copy's.
            History history = model.fit(TRAIN, options(1).build());
            TrainingState.save(file, model, history, new TrainingState.BestWeights("val_loss", 0, best), Map.of());
            assertTrue(!Arrays.equals(best.parameters(), model.parameters().toFloatArray()));
        }
        Map<String, int[]> shapes;
        try (SafeTensors.Reader reader = SafeTensors.open(file)) {
            shapes = reader.shapes();
        }
        assertTrue(shapes.containsKey("best_weights/dense.kernel"), shapes.keySet().toString());
        assertTrue(shapes.containsKey("best_weights/batch_normalization.moving_variance"), shapes.keySet().toString());
        assertEquals("{\"monitor\":\"val_loss\",\"epoch\":0}",
                SafeTensors.readMetadata(file).get(TrainingState.BEST_WEIGHTS_KEY));
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu" + BATCH_NORM, Adam::new)) {
            TrainingState.BestWeights loaded = TrainingState.load(file, model).bestWeights().orElseThrow();
            assertEquals(List.of("val_loss", 0), List.of(loaded.monitor(), loaded.epoch()));
            assertArrayEquals(best.parameters(), loaded.values().parameters());
            assertArrayEquals(best.state(), loaded.values().state());
        }
        SafeTensors.Contents saved = SafeTensors.read(file);
        assertContains("no tensor best_weights/dense_1.bias", loadEditedBest(saved,
                tensor("best_weights/dense_1.bias", e -> null)));
        assertContains("best_weights/dense.bias is [3] in the file, [24] in the model", loadEditedBest(saved,
                tensor("best_weights/dense.bias", e -> new SafeTensors.Entry(e.name(), new int[] {3},
                        Arrays.copyOf(e.values(), 3)))));
        // A copy of another layer (renamed as best_weights/dense_9.kernel) is not the model's.
        String renamed = loadEditedBest(saved, tensor("best_weights/dense.kernel",
                e -> new SafeTensors.Entry("best_weights/dense_9.kernel", e.shape(), e.values())));
        assertContains("the weights under best_weights/ do not fit the model", renamed);
        assertContains(": no tensor best_weights/dense.kernel ", renamed);
        assertContains("; the model has no tensor dense_9.kernel", renamed);
        // Without any best_weights/ tensor each of the model's is missing: six are listed, the others counted.
        int modelTensors = (int) shapes.keySet().stream().filter(n -> n.startsWith("best_weights/")).count();
        assertContains("; and " + (modelTensors - 6) + " more", loadEditedBest(saved, c -> {
            Map<String, SafeTensors.Entry> tensors = new LinkedHashMap<>(c.tensors());
            tensors.keySet().removeIf(n -> n.startsWith("best_weights/"));
            return new SafeTensors.Contents(c.metadata(), tensors);
        }));
        assertContains("best_weights/dense.bias[2] = NaN", loadEditedBest(saved,
                tensor("best_weights/dense.bias", e -> {
                    float[] v = e.values();
                    v[2] = Float.NaN;
                    return new SafeTensors.Entry(e.name(), e.shape(), v);
                })));
        assertContains("metadata 'best_weights' must be a monitor and an epoch from 0 below the state's 1",
                loadEditedBest(saved, metadata(TrainingState.BEST_WEIGHTS_KEY,
                        "{\"monitor\":\"val_loss\",\"epoch\":1}")));
        assertContains("it has best weights (best_weights/", loadEditedBest(saved,
                metadata(TrainingState.BEST_WEIGHTS_KEY, null)));
    }

    /** Writes {@code saved}, edited, and returns why loading it into a fresh model fails (which changes nothing). */
    private String loadEditedBest(SafeTensors.Contents saved, UnaryOperator<SafeTensors.Contents> edit) {
        Path file = dir.resolve("edited.safetensors");
        SafeTensors.Contents edited = edit.apply(saved);
        SafeTensors.write(file, edited.metadata(), new ArrayList<>(edited.tensors().values()));
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu" + BATCH_NORM, Adam::new)) {
            float[] before = model.parameters().toFloatArray();
            InvalidDataException e = assertThrows(InvalidDataException.class, () -> TrainingState.load(file, model));
            assertArrayEquals(before, model.parameters().toFloatArray(), "a refused state changes nothing");
            return e.getMessage();
        }
    }

    private static void assertContains(String expected, String message) {
        assertTrue(message.contains(expected), () -> "expected '" + expected + "' in: " + message);
    }

    private static UnaryOperator<SafeTensors.Contents> metadata(String key, String value) {
        return c -> {
            Map<String, String> meta = new LinkedHashMap<>(c.metadata());
            if (value == null) {
                meta.remove(key);
            } else {
                meta.put(key, value);
            }
            return new SafeTensors.Contents(meta, c.tensors());
        };
    }

    private static UnaryOperator<SafeTensors.Contents> tensor(String name, UnaryOperator<SafeTensors.Entry> edit) {
        return c -> {
            Map<String, SafeTensors.Entry> tensors = new LinkedHashMap<>();
            c.tensors().forEach((key, entry) -> {
                SafeTensors.Entry edited = key.equals(name) ? edit.apply(entry) : entry;
                if (edited != null) {
                    tensors.put(edited.name(), edited);
                }
            });
            return new SafeTensors.Contents(c.metadata(), tensors);
        };
    }

    /**
     * A state saved by a centered RMSprop with momentum and a weight decay does not fit an RMSprop with other
     * settings, nor the other way round, nor Adam: its buffers and its settings are the run's. Each is refused,
     * naming what does not fit.
     */
    @Test
    void anRmsPropStateFitsOnlyAnRmsPropWithTheSameBuffers() {
        Path file = dir.resolve("rmsprop.safetensors");
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, "relu", optimizer("rmsprop_centered_momentum_decay"))) {
            TrainingState.save(file, model, model.fit(TRAIN, options(1).build()), Map.of());
        }
        Map<Supplier<Optimizer>, String> refusals = new LinkedHashMap<>();
        refusals.put(RmsProp::new, "the state's rmsprop has other settings: momentum 0.5 in the state, 0.0 in the"
                + " model; centered true in the state, false in the model; weight_decay 0.01 in the state, 0.0 in the"
                + " model");
        refusals.put(() -> new RmsProp(1e-3, 0.9, 0.5, 1e-7, false, 0.01),
                "the state's rmsprop has other settings: centered true in the state, false in the model");
        refusals.put(() -> new RmsProp(1e-3, 0.8, 0.5, 1e-7, true, 0.01),
                "the state's rmsprop has other settings: rho 0.9 in the state, 0.8 in the model");
        refusals.put(Adam::new, "saved by optimizer 'rmsprop', the model's is 'adam'");
        refusals.forEach((loadInto, expected) -> {
            try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", loadInto)) {
                float[] before = model.parameters().toFloatArray();
                InvalidDataException e = assertThrows(InvalidDataException.class,
                        () -> TrainingState.load(file, model));
                assertContains(expected, e.getMessage());
                assertArrayEquals(before, model.parameters().toFloatArray(), "a refused state changes nothing");
            }
        });
        Path plain = dir.resolve("plain.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", RmsProp::new)) {
            TrainingState.save(plain, model, model.fit(TRAIN, options(1).build()), Map.of());
        }
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, "relu", optimizer("rmsprop_centered_momentum_decay"))) {
            assertContains("momentum 0.0 in the state, 0.5 in the model", assertThrows(InvalidDataException.class,
                    () -> TrainingState.load(plain, model)).getMessage());
        }
    }

    /**
     * What the tensors do not show must match (a dropout rate, a fixed activation parameter); what loading replaces
     * need not (a kernel's initializer, a learned parameter's starting value).
     */
    @Test
    void aStateFitsAModelThatComputesWhatItsRunComputed() {
        Path dropout = dir.resolve("dropout.safetensors");
        Path prelu = dir.resolve("prelu.safetensors");
        try (CpuBackend backend = new CpuBackend()) {
            try (Sequential model = model(backend, "relu", Adam::new, 0.3)) {
                TrainingState.save(dropout, model, model.fit(TRAIN, options(1).build()), Map.of());
            }
            try (Sequential model = model(backend, "prelu", Adam::new)) {
                TrainingState.save(prelu, model, model.fit(TRAIN, options(1).build()), Map.of());
            }
            try (Sequential model = model(backend, "relu", Adam::new, 0.5)) {
                float[] before = model.parameters().toFloatArray();
                assertContains("dropout Dropout rate=0.3", assertThrows(InvalidDataException.class,
                        () -> TrainingState.load(dropout, model)).getMessage());
                assertArrayEquals(before, model.parameters().toFloatArray(), "a refused state changes nothing");
            }
            try (Sequential model = Mlp.build(backend, 11, 784, new int[] {24, 12}, 10, Mlp.HiddenUnits.of("relu"),
                    Initializer.parse("he_normal"), 0.3).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(784)) {
                assertEquals(1, TrainingState.load(dropout, model).epochs(), "another initializer: the state's weights");
            }
            try (Sequential model = Mlp.build(backend, 11, 784, new int[] {24, 12}, 10,
                    new Mlp.HiddenUnits("prelu", 0.1, true, 2), Initializer.glorotUniform())
                    .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(784)) {
                assertEquals(1, TrainingState.load(prelu, model).epochs(), "another starting alpha: the state's");
            }
            try (Sequential model = model(backend, "elu", Adam::new);
                 Sequential other = Mlp.build(backend, 11, 784, new int[] {24, 12}, 10,
                         new Mlp.HiddenUnits("elu", 0.5, false, 2), Initializer.glorotUniform())
                         .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(784)) {
                Path elu = dir.resolve("elu.safetensors");
                TrainingState.save(elu, model, model.fit(TRAIN, options(1).build()), Map.of());
                assertContains("the state's layers are", assertThrows(InvalidDataException.class,
                        () -> TrainingState.load(elu, other)).getMessage());
            }
        }
    }

    /**
     * Batch normalization's momentum and epsilon are not in its tensors, but going on with others would not be the
     * run that stopped: a model whose normalisations differ in either is refused, the error naming the layers and
     * their settings on both sides, and nothing changes.
     */
    @Test
    void aStateFitsOnlyAModelWithItsBatchNormSettings() {
        Path file = dir.resolve("batch-norm.safetensors");
        try (CpuBackend backend = new CpuBackend()) {
            try (Sequential model = batchNormalized(backend, 0.9, 1e-2f)) {
                TrainingState.save(file, model, model.fit(TRAIN, options(1).build()), Map.of());
            }
            for (double[] other : new double[][] {{0.99, 1e-2}, {0.9, 1e-3}}) {
                try (Sequential model = batchNormalized(backend, other[0], (float) other[1])) {
                    float[] before = model.state().toFloatArray();
                    String message = assertThrows(InvalidDataException.class, () -> TrainingState.load(file, model))
                            .getMessage();
                    assertContains("they differ in batch_normalization BatchNormalization momentum=0.9,"
                            + " epsilon=0.01 in the state, batch_normalization BatchNormalization momentum="
                            + other[0] + ", epsilon=" + (float) other[1] + " in the model", message);
                    assertContains("batch_normalization_1 BatchNormalization momentum=0.9", message);
                    assertArrayEquals(before, model.state().toFloatArray(), "a refused state changes nothing");
                }
            }
            try (Sequential model = batchNormalized(backend, 0.9, 1e-2f)) {
                assertEquals(1, TrainingState.load(file, model).epochs(), "the same settings fit");
            }
        }
    }

    private static Sequential batchNormalized(Backend backend, double momentum, float epsilon) {
        return Mlp.build(backend, 11, 784, new int[] {24, 12}, 10, Mlp.HiddenUnits.of("relu"),
                Initializer.glorotUniform(), 0, true, momentum, epsilon)
                .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(784);
    }

    @Test
    void aStateThatDoesNotFitChangesNothingAndSaysWhy() {
        assertContains("not a training state",
                loadEdited(metadata("format", "gradscope.weights.v1"), "relu", Adam::new));
        assertContains("saved by optimizer 'adam', the model's is 'sgd'",
                loadEdited(c -> c, "relu", () -> new Sgd(0.1, 0.9, false)));
        assertContains("the state's layers are [dense Dense units=24, activation=relu, dense_1 Dense",
                loadEdited(c -> c, "prelu", Adam::new));
        assertContains("the state's adam has other settings: weight_decay 0.0 in the state, 0.004 in the model",
                loadEdited(c -> c, "relu", () -> new Adam(1e-3, 0.9, 0.999, 1e-7, 0.004)));
        assertContains("the state's run trained with label smoothing 0.2, the model's loss has 0.0",
                loadEdited(metadata("label_smoothing", "0.2"), "relu", Adam::new));
        assertContains("metadata 'label_smoothing' is not a number: some",
                loadEdited(metadata("label_smoothing", "some"), "relu", Adam::new));
        assertContains("1 epoch_seconds for 2 epochs", loadEdited(metadata("epochs", "2"), "relu", Adam::new));
        assertContains("'iterations' must be a count",
                loadEdited(metadata("iterations", "-1"), "relu", Adam::new));
        assertContains("'history' is not a JSON object",
                loadEdited(metadata("history", "[1, 2]"), "relu", Adam::new));
        assertContains("'segments' is not an array",
                loadEdited(metadata("profile", "{\"segments\": 3}"), "relu", Adam::new));
        assertContains("no tensor optimizer/m/dense_1.bias",
                loadEdited(tensor("optimizer/m/dense_1.bias", e -> null), "relu", Adam::new));
        assertContains("has no tensor optimizer/momentum/dense_1.bias", loadEdited(tensor("optimizer/m/dense_1.bias",
                e -> new SafeTensors.Entry("optimizer/momentum/dense_1.bias", e.shape(), e.values())), "relu",
                Adam::new));
        assertContains("optimizer/v/dense.bias[3] = Infinity", loadEdited(tensor("optimizer/v/dense.bias", e -> {
            float[] v = e.values();
            v[3] = Float.POSITIVE_INFINITY;
            return new SafeTensors.Entry(e.name(), e.shape(), v);
        }), "relu", Adam::new));
        assertContains("profile/squared_weight_norms is [1, 30], the profile needs [5, 6]",
                loadEdited(tensor("profile/squared_weight_norms",
                        e -> new SafeTensors.Entry(e.name(), new int[] {1, e.values().length}, e.values())), "relu",
                        Adam::new));
    }

    @Test
    void aRunResumedWithTheProfilerOffKeepsTheEarlierProfile() {
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            model.fit(TRAIN, options(1).callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            History history = model.fit(TRAIN, options(2).profiler(null)
                    .resumeFrom(TrainingState.load(file, model)).build());
            assertNotNull(history.profile());
            assertEquals(1, history.profile().epochs(), "the first epoch's steps only");
            assertEquals(2, history.epochs());
        }
    }

    @Test
    void aFinishedStateTrainsNoFurtherWithoutMoreEpochs() {
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            model.fit(TRAIN, options(2).callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            TrainingState state = TrainingState.load(file, model);
            float[] before = model.parameters().toFloatArray();
            History history = model.fit(TRAIN, options(2).resumeFrom(state).build());
            assertEquals(2, history.epochs());
            assertArrayEquals(before, model.parameters().toFloatArray(), "no step taken");
        }
    }

    @Test
    void aResumedRunMustLogWhatTheSavedRunLogged() {
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            model.fit(TRAIN, options(1).callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            TrainingState state = TrainingState.load(file, model);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.fit(TRAIN, options(2).validation(null).resumeFrom(state).build()));
            assertContains("the resumed run logged [loss, accuracy, val_loss, val_accuracy, learning_rate], this fit"
                    + " logs [loss, accuracy, learning_rate] (it has no validation data)", e.getMessage());
        }
        History ragged = new History();
        ragged.record(Map.of("loss", 1.0, "val_loss", 1.0), 1);
        ragged.record(Map.of("loss", 0.9), 1);
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> TrainingState.save(file, model, ragged, Map.of()));
            assertContains("the history has 1 values of val_loss for 2 epochs", e.getMessage());
        }
    }

    @Test
    void aProfileResumedAfterEpochsWithoutItNumbersItsStepsFromTheRunsStart() {
        Path file = dir.resolve("state.safetensors");
        for (int reached = 1; reached <= 3; reached++) {
            try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, "relu", Adam::new)) {
                FitOptions.Builder fit = options(reached).callback(new TrainingStateCheckpoint(file, Map.of()));
                if (reached == 2) {
                    fit.profiler(null);
                }
                if (reached > 1) {
                    fit.resumeFrom(TrainingState.load(file, model));
                }
                History history = model.fit(TRAIN, fit.build());
                if (reached == 3) {
                    List<Integer> epochs = history.profile().steps().stream().map(Profile.StepStatistics::epoch)
                            .toList();
                    List<Integer> globalSteps = history.profile().steps().stream()
                            .map(Profile.StepStatistics::globalStep).toList();
                    assertEquals(List.of(0, 0, 0, 0, 0, 2, 2, 2, 2, 2), epochs, "epoch 2 (from 1) was not profiled");
                    assertEquals(List.of(0, 1, 2, 3, 4, 10, 11, 12, 13, 14), globalSteps);
                }
            }
        }
    }

    @Test
    void aProfileWithImpossibleNumbersIsRefused() {
        assertContains("a squared norm of a state is finite and >= 0", loadEdited(tensor("profile/squared_gradient_norms",
                e -> {
                    float[] v = e.values();
                    v[7] = -1f;
                    return new SafeTensors.Entry(e.name(), e.shape(), v);
                }), "relu", Adam::new));
        assertContains("unit statistics that no run of this model measures", loadEdited(c -> {
            Map<String, String> meta = new LinkedHashMap<>(c.metadata());
            meta.put("profile", meta.get("profile").replaceFirst("\"dead_fraction\":[^,]*", "\"dead_fraction\":1.5"));
            return new SafeTensors.Contents(meta, c.tensors());
        }, "relu", Adam::new));
        assertContains("the state's model takes 783 input features, this one 784",
                loadEdited(metadata("input_units", "783"), "relu", Adam::new));
    }
}
