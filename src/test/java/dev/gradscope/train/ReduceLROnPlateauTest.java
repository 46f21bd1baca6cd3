package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Keras's ReduceLROnPlateau rule, in a fit and across a resume. */
class ReduceLROnPlateauTest {
    private static final Dataset TRAIN = MnistSubset.load().train().take(300);

    @TempDir
    Path dir;

    private static Sequential model(CpuBackend backend, double learningRate) {
        return Mlp.build(backend, 3, 784, new int[] {16}, 10, Mlp.HiddenUnits.of("relu"), Initializer.glorotUniform())
                .compile(new Sgd(learningRate), Loss.CATEGORICAL_CROSSENTROPY).build(784);
    }

    /**
     * Replays {@code values} (one per epoch, trained at {@code rates}) through {@code plateau}, as a resumed run
     * does, and returns the rate it sets for the next epoch.
     */
    private static double replay(ReduceLROnPlateau plateau, double[] values, double[] rates) {
        History history = new History();
        for (int e = 0; e < values.length; e++) {
            Map<String, Double> logs = new LinkedHashMap<>();
            logs.put("val_loss", values[e]);
            logs.put("learning_rate", rates[e]);
            history.record(logs, 0);
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, rates[0])) {
            plateau.onTrainBegin(new TrainingRun(model, values.length + 1, values.length, history,
                    List.of("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"), 1, List.of(), null, null,
                    null));
            return model.optimizer().learningRate();
        }
    }

    @Test
    void itReducesTheRateAfterPatienceEpochsWithoutImprovementAsKerasDoes() {
        double[] values = {1.0, 0.9, 0.95, 0.96, 0.97, 0.98};
        ReduceLROnPlateau plain = new ReduceLROnPlateau("val_loss", 0.5, 2, 0, 0, 0);
        assertEquals(0.25, replay(plain, values, new double[] {1, 1, 1, 1, 0.5, 0.5}));
        assertEquals(List.of(3, 5), plain.reducedAfter());

        // Keras decrements the cooldown before it looks at the epoch: a cooldown of 2 skips one epoch.
        ReduceLROnPlateau cooldown = new ReduceLROnPlateau("val_loss", 0.5, 2, 0, 2, 0);
        assertEquals(0.5, replay(cooldown, values, new double[] {1, 1, 1, 1, 0.5, 0.5}));
        assertEquals(List.of(3), cooldown.reducedAfter());

        ReduceLROnPlateau floor = new ReduceLROnPlateau("val_loss", 0.1, 1, 0, 0, 0.5);
        assertEquals(0.5, replay(floor, new double[] {1.0, 1.0, 1.0, 1.0}, new double[] {1, 1, 0.5, 0.5}));
        assertEquals(List.of(1), floor.reducedAfter(), "not below min_lr, and not again once there");

        ReduceLROnPlateau delta = new ReduceLROnPlateau("val_loss", 0.5, 1, 0.2, 0, 0);
        assertEquals(0.5, replay(delta, new double[] {1.0, 0.85}, new double[] {1, 1}),
                "0.85 does not beat 1.0 by more than 0.2");

        ReduceLROnPlateau infinite = new ReduceLROnPlateau("val_loss", 0.5, 2, 0, 0, 0);
        assertEquals(0.5, replay(infinite, new double[] {Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, 5, 5},
                new double[] {1, 1, 0.5, 0.5}));
        assertEquals(List.of(1), infinite.reducedAfter(), "the best starts at infinity, which infinity does not beat");

        assertThrows(IllegalArgumentException.class, () -> new ReduceLROnPlateau("val_loss", 1.0, 1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new ReduceLROnPlateau("val_loss", 0.5, -1, 0, 0, 0));
    }

    /** Loss must fall by more than 10 per epoch: none does, so the rate halves after every epoch but the first. */
    private static ReduceLROnPlateau halving() {
        return new ReduceLROnPlateau("loss", 0.5, 0, 10, 0, 0);
    }

    @Test
    void aFitTrainsEachEpochAtTheRateTheEpochBeforeLeft() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, 0.1)) {
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(4).verbose(0)
                    .callback(halving()).build());
            assertEquals(List.of(0.1, 0.1, 0.05, 0.025), history.get("learning_rate"));
            assertEquals(0.0125, model.optimizer().learningRate());
        }
    }

    /**
     * A rate a float holds as 0 is never set: from 1e-30, a factor of 1e-10 reduces once, after epoch 2 (the first
     * epoch is always the best so far), to 1e-40, a float's subnormal, and then stops, where it would have gone to
     * 1e-50, the float 0.
     */
    @Test
    void noRateIsReducedToOneAFloatHoldsAsZero() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, 1e-30)) {
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(4).verbose(0)
                    .callback(new ReduceLROnPlateau("loss", 1e-10, 0, 10, 0, 0)).build());
            assertEquals(List.of(1e-30, 1e-30, 1e-30 * 1e-10, 1e-30 * 1e-10), history.get("learning_rate"));
        }
    }

    /** A Keras-style scheduler that sets 0.1 / (epoch + 1) at each epoch's start. */
    private static final class Schedule implements Callback {
        private TrainingRun run;

        @Override
        public void onTrainBegin(TrainingRun run) {
            this.run = run;
        }

        @Override
        public void onEpochBegin(int epoch) {
            run.model().optimizer().setLearningRate(0.1 / (epoch + 1));
        }
    }

    @Test
    void theHistoryLogsTheRateASchedulerSetAndThePlateauLeavesItAlone() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, 0.1)) {
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(4).verbose(0)
                    .callback(new Schedule()).callback(new ReduceLROnPlateau("loss", 0.5, 100, 0, 0, 0)).build());
            assertEquals(List.of(0.1, 0.1 / 2, 0.1 / 3, 0.1 / 4), history.get("learning_rate"));
            assertEquals(0.1 / 4, model.optimizer().learningRate());
        }
    }

    @Test
    void aResumedRunGoesOnAtTheReducedRateAndEndsAsTheUninterruptedOne() {
        float[] straight;
        List<Double> straightRates;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, 0.1)) {
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(4).verbose(0)
                    .callback(halving()).build());
            straight = model.parameters().toFloatArray();
            straightRates = history.get("learning_rate");
        }
        Path file = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, 0.1)) {
            model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(2).verbose(0).callback(halving())
                    .callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, 0.1)) {
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(4).verbose(0)
                    .callback(halving()).resumeFrom(TrainingState.load(file, model)).build());
            assertEquals(straightRates, history.get("learning_rate"));
            assertArrayEquals(straight, model.parameters().toFloatArray());
        }
    }

    @Test
    void aMetricTheFitDoesNotLogIsRefusedBeforeTraining() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, 0.1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.fit(TRAIN,
                    FitOptions.builder().batchSize(100).epochs(2).verbose(0)
                            .callback(new ReduceLROnPlateau("val_loss")).build()));
            assertTrue(e.getMessage().contains("ReduceLROnPlateau watches val_loss, which is not a metric of this fit"),
                    e.getMessage());
            IllegalArgumentException rate = assertThrows(IllegalArgumentException.class, () -> model.fit(TRAIN,
                    FitOptions.builder().batchSize(100).epochs(2).verbose(0)
                            .callback(new EarlyStopping("learning_rate", 1)).build()));
            assertTrue(rate.getMessage().contains("watches learning_rate, which is not a metric of this fit; it can"
                    + " watch [loss, accuracy]"), rate.getMessage());
        }
    }
}
