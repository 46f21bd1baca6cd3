package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Keras's EarlyStopping rule, in a fit and across a resume. */
class EarlyStoppingTest {
    private static final Dataset TRAIN = MnistSubset.load().train().take(300);

    @TempDir
    Path dir;

    /** The epoch (from 0) after which {@code stopping} stops on {@code values}, or -1. */
    private static int stopsAfter(EarlyStopping stopping, String metric, double... values) {
        History history = new History();
        for (double v : values) {
            history.record(Map.of(metric, v), 0);
        }
        stopping.replay(history);
        return stopping.stoppedEpoch();
    }

    @Test
    void itStopsAfterPatienceEpochsWithoutImprovementAsKerasDoes() {
        assertEquals(3, stopsAfter(new EarlyStopping("val_loss", 2), "val_loss", 1.0, 0.9, 0.95, 0.96, 0.5));
        assertEquals(-1, stopsAfter(new EarlyStopping("val_loss", 2), "val_loss", 1.0, 0.9, 0.95, 0.8, 0.85));
        assertEquals(2, stopsAfter(new EarlyStopping("val_loss", 2, 0.2), "val_loss", 1.0, 0.9, 0.85),
                "0.9 and 0.85 do not beat 1.0 by more than 0.2");
        assertEquals(2, stopsAfter(new EarlyStopping("val_accuracy", 1), "val_accuracy", 0.5, 0.6, 0.55),
                "higher is better for accuracies");
        assertEquals(1, stopsAfter(new EarlyStopping("loss", 0), "loss", 1.0, 1.0), "an equal value is no improvement");
        assertEquals(-1, stopsAfter(new EarlyStopping("loss", 0), "loss", 1.0), "never after the first epoch");
        EarlyStopping nan = new EarlyStopping("loss", 1);
        assertEquals(1, stopsAfter(nan, "loss", 1.0, Double.NaN));
        assertEquals("loss did not improve on epoch 1's 1.0000 for 1 epoch", nan.reason());
        assertThrows(IllegalArgumentException.class, () -> new EarlyStopping("loss", -1));
        assertThrows(IllegalArgumentException.class, () -> new EarlyStopping("loss", 1, Double.NaN));
    }

    private static Sequential model(CpuBackend backend) {
        return Mlp.build(backend, 3, 784, new int[] {16}, 10, Mlp.HiddenUnits.of("relu"), Initializer.glorotUniform())
                .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(784);
    }

    /** Training loss must fall by more than 10 per epoch: the second epoch cannot, so training stops there. */
    private static FitOptions.Builder options(int epochs, EarlyStopping stopping) {
        return FitOptions.builder().batchSize(100).epochs(epochs).verbose(0).callback(stopping);
    }

    @Test
    void aFitStopsAfterTheEpochThatRunsOutOfPatienceAndAResumedOneStopsThereToo() {
        float[] straight;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            EarlyStopping stopping = new EarlyStopping("loss", 1, 10);
            History history = model.fit(TRAIN, options(5, stopping).build());
            assertEquals(2, history.epochs());
            assertEquals(1, stopping.stoppedEpoch());
            straight = model.parameters().toFloatArray();
        }
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            model.fit(TRAIN, options(1, new EarlyStopping("loss", 1, 10))
                    .callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            EarlyStopping stopping = new EarlyStopping("loss", 1, 10);
            History history = model.fit(TRAIN, options(5, stopping).resumeFrom(TrainingState.load(file, model))
                    .callback(new TrainingStateCheckpoint(file, Map.of())).build());
            assertEquals(2, history.epochs());
            assertEquals(1, stopping.stoppedEpoch());
            assertArrayEquals(straight, model.parameters().toFloatArray());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            TrainingState state = TrainingState.load(file, model);
            float[] saved = model.parameters().toFloatArray();
            EarlyStopping stopping = new EarlyStopping("loss", 1, 10);
            History history = model.fit(TRAIN, options(5, stopping).resumeFrom(state).build());
            assertEquals(List.of(2, 1), List.of(history.epochs(), stopping.stoppedEpoch()),
                    "a run that had stopped trains no further");
            assertArrayEquals(saved, model.parameters().toFloatArray());
        }
    }

    /** The parameters (and the non-trainable state, when the model has some) after every epoch. */
    private static final class Snapshots implements Callback {
        final List<float[]> parameters = new java.util.ArrayList<>();
        final List<float[]> state = new java.util.ArrayList<>();
        private TrainingRun run;

        @Override
        public void onTrainBegin(TrainingRun run) {
            this.run = run;
        }

        @Override
        public void onEpochEnd(int epoch, Map<String, Double> logs) {
            parameters.add(run.model().parameters().toFloatArray());
            if (run.model().state() != null) {
                state.add(run.model().state().toFloatArray());
            }
        }
    }

    @Test
    void restoreBestWeightsPutsTheBestEpochsParametersBackWhenTrainingEnds() {
        // No later epoch beats the first's loss by 10: epoch 0 is the best, and patience 1 stops after epoch 1.
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            Snapshots snapshots = new Snapshots();
            EarlyStopping stopping = new EarlyStopping("loss", 1, 10, true);
            model.fit(TRAIN, options(5, stopping).callback(snapshots).build());
            assertEquals(List.of(1, 0, 0), List.of(stopping.stoppedEpoch(), stopping.bestEpoch(),
                    stopping.restoredEpoch()));
            assertArrayEquals(snapshots.parameters.get(0), model.parameters().toFloatArray());
            assertTrue(!java.util.Arrays.equals(snapshots.parameters.get(0), snapshots.parameters.get(1)));
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            Snapshots snapshots = new Snapshots();
            EarlyStopping stopping = new EarlyStopping("loss", 1, 10);
            model.fit(TRAIN, options(5, stopping).callback(snapshots).build());
            assertEquals(-1, stopping.restoredEpoch());
            assertArrayEquals(snapshots.parameters.get(1), model.parameters().toFloatArray(), "the last epoch's");
        }
        // As Keras 3: a run that did not stop early is restored too.
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            Snapshots snapshots = new Snapshots();
            EarlyStopping stopping = new EarlyStopping("loss", 5, 10, true);
            model.fit(TRAIN, options(3, stopping).callback(snapshots).build());
            assertEquals(List.of(-1, 0), List.of(stopping.stoppedEpoch(), stopping.restoredEpoch()));
            assertArrayEquals(snapshots.parameters.get(0), model.parameters().toFloatArray());
        }
    }

    /** An improvement in the middle of a run, not its first or last epoch, is the one restored. */
    @Test
    void theBestEpochRestoredMayBeAMiddleOne() {
        // Scripted losses through a callback that runs before the stopper and rewrites the logged loss: the
        // best is epoch 1 (0.5) of 0..3, and patience 2 stops after epoch 3.
        double[] scripted = {1.0, 0.5, 0.7, 0.6};
        Callback script = new Callback() {
            @Override
            public void onEpochEnd(int epoch, Map<String, Double> logs) {
                logs.put("loss", scripted[epoch]);
            }
        };
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            Snapshots snapshots = new Snapshots();
            EarlyStopping stopping = new EarlyStopping("loss", 2, 0, true);
            model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(6).verbose(0).callback(script)
                    .callback(snapshots).callback(stopping).build());
            assertEquals(List.of(3, 1, 1), List.of(stopping.stoppedEpoch(), stopping.bestEpoch(),
                    stopping.restoredEpoch()));
            assertArrayEquals(snapshots.parameters.get(1), model.parameters().toFloatArray());
            for (int other : new int[] {0, 2, 3}) {
                assertTrue(!java.util.Arrays.equals(snapshots.parameters.get(other), model.parameters().toFloatArray()),
                        "not epoch " + other + "'s");
            }
        }
    }

    /** Keras restores every weight, the non-trainable ones too: batch normalization's moving statistics. */
    @Test
    void restoreBestWeightsPutsTheBestEpochsMovingStatisticsBackToo() {
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, 3, 784, new int[] {16}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform(), 0, true).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            Snapshots snapshots = new Snapshots();
            EarlyStopping stopping = new EarlyStopping("loss", 1, 10, true);
            model.fit(TRAIN, options(5, stopping).callback(snapshots).build());
            assertEquals(List.of(1, 0), List.of(stopping.stoppedEpoch(), stopping.restoredEpoch()));
            assertArrayEquals(snapshots.parameters.get(0), model.parameters().toFloatArray());
            assertArrayEquals(snapshots.state.get(0), model.state().toFloatArray());
            assertTrue(!java.util.Arrays.equals(snapshots.state.get(0), snapshots.state.get(1)));
        }
    }

    /**
     * Epoch 0 is the best (no later loss beats it by 10) and patience 5 never stops 3 epochs: the uninterrupted run
     * ends with epoch 0's weights. A run interrupted after epoch 0 and again after epoch 1 must end with them too, bit
     * for bit: the states carry the best copy, while their parameters stay the last epoch's.
     */
    @Test
    void aRunResumedAfterItsBestEpochRestoresWhatTheUninterruptedRunRestores() {
        float[] restored;
        List<float[]> epochs;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            Snapshots snapshots = new Snapshots();
            EarlyStopping stopping = new EarlyStopping("loss", 5, 10, true);
            model.fit(TRAIN, options(3, stopping).callback(snapshots).build());
            assertEquals(List.of(-1, 0, 0), List.of(stopping.stoppedEpoch(), stopping.bestEpoch(),
                    stopping.restoredEpoch()));
            restored = model.parameters().toFloatArray();
            epochs = snapshots.parameters;
            assertArrayEquals(epochs.get(0), restored);
        }
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            model.fit(TRAIN, options(1, new EarlyStopping("loss", 5, 10, true))
                    .callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        for (int total : new int[] {2, 3}) {
            try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
                TrainingState state = TrainingState.load(file, model);
                assertEquals(0, state.bestWeights().orElseThrow().epoch());
                assertEquals("loss", state.bestWeights().orElseThrow().monitor());
                assertArrayEquals(epochs.get(0), state.bestWeights().orElseThrow().values().parameters());
                assertArrayEquals(epochs.get(total - 2), model.parameters().toFloatArray(),
                        "the state's parameters are its last epoch's");
                EarlyStopping stopping = new EarlyStopping("loss", 5, 10, true);
                model.fit(TRAIN, options(total, stopping).resumeFrom(state)
                        .callback(new TrainingStateCheckpoint(file, Map.of())).build());
                assertEquals(List.of(0, 0), List.of(stopping.bestEpoch(), stopping.restoredEpoch()));
                assertArrayEquals(epochs.get(0), model.parameters().toFloatArray(), "resumed to " + total);
            }
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            TrainingState.load(file, model);
            assertArrayEquals(epochs.get(2), model.parameters().toFloatArray(),
                    "the last state holds the last epoch's parameters, not the restored ones");
        }
    }

    /**
     * A state saved without the best copy (a run that did not restore, or one from before states kept it) resumes
     * as before: its run restores only a best epoch it trains itself.
     */
    @Test
    void aStateWithoutTheBestWeightsRestoresOnlyABestEpochTheResumedRunTrained() {
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            model.fit(TRAIN, options(1, new EarlyStopping("loss", 5, 10))
                    .callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            Snapshots snapshots = new Snapshots();
            EarlyStopping stopping = new EarlyStopping("loss", 5, 10, true);
            TrainingState state = TrainingState.load(file, model);
            assertTrue(state.bestWeights().isEmpty());
            model.fit(TRAIN, options(3, stopping).resumeFrom(state).callback(snapshots).build());
            assertEquals(List.of(0, -1), List.of(stopping.bestEpoch(), stopping.restoredEpoch()),
                    "the best epoch came before the resume: its weights are not in the state");
            assertArrayEquals(snapshots.parameters.get(1), model.parameters().toFloatArray());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            Snapshots snapshots = new Snapshots();
            EarlyStopping stopping = new EarlyStopping("loss", 5, 0, true);
            model.fit(TRAIN, options(3, stopping).resumeFrom(TrainingState.load(file, model)).callback(snapshots)
                    .build());
            assertEquals(2, stopping.bestEpoch(), "the loss falls every epoch");
            assertEquals(2, stopping.restoredEpoch());
            assertArrayEquals(snapshots.parameters.get(1), model.parameters().toFloatArray());
        }
    }

    /**
     * A state's copy is the best by its stopper's metric: a resumed run that watches another (whose best is the same
     * epoch here) does not take it, and restores only a best epoch it trains.
     */
    @Test
    void aStatesBestCopyIsTakenOnlyForTheSameMetricAndEpoch() {
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            model.fit(TRAIN, options(1, new EarlyStopping("accuracy", 5, 0, true))
                    .callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            TrainingState state = TrainingState.load(file, model);
            assertEquals("accuracy", state.bestWeights().orElseThrow().monitor());
            EarlyStopping stopping = new EarlyStopping("loss", 5, 10, true);
            model.fit(TRAIN, options(2, stopping).resumeFrom(state).build());
            assertEquals(List.of(0, -1), List.of(stopping.bestEpoch(), stopping.restoredEpoch()));
        }
    }

    /** The state saves the epoch's best even when its checkpoint is called before the stopper. */
    @Test
    void theStateHoldsTheEpochsBestWhateverTheCallbacksOrder() {
        Path file = dir.resolve("state.safetensors");
        float[] last;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            EarlyStopping stopping = new EarlyStopping("loss", 5, 0, true);
            model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(2).verbose(0)
                    .callback(new TrainingStateCheckpoint(file, Map.of())).callback(stopping).build());
            assertEquals(1, stopping.restoredEpoch(), "the loss falls every epoch");
            last = model.parameters().toFloatArray();
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            TrainingState state = TrainingState.load(file, model);
            assertEquals(1, state.bestWeights().orElseThrow().epoch());
            assertArrayEquals(last, state.bestWeights().orElseThrow().values().parameters());
            assertArrayEquals(last, model.parameters().toFloatArray());
        }
    }

    @Test
    void aMetricTheLogsLackIsAnError() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend)) {
            float[] before = model.parameters().toFloatArray();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.fit(TRAIN, options(2, new EarlyStopping("val_loss", 1)).build()));
            assertTrue(e.getMessage().contains("early stopping watches val_loss, which is not a metric of this fit; it"
                    + " can watch [loss, accuracy] (no validation data)"), e.getMessage());
            assertArrayEquals(before, model.parameters().toFloatArray(), "refused before any step");
        }
    }
}
