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
import dev.gradscope.nn.Sgd;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PyTorch's epoch schedules as Keras's LearningRateScheduler, in a fit and across a resume. */
class LearningRateSchedulerTest {
    private static final Dataset TRAIN = MnistSubset.load().train().take(200);

    @TempDir
    Path dir;

    private static Sequential model(CpuBackend backend, dev.gradscope.nn.Optimizer optimizer) {
        return Mlp.build(backend, 9, 784, new int[] {12}, 10, Mlp.HiddenUnits.of("relu"), Initializer.glorotUniform())
                .compile(optimizer, Loss.CATEGORICAL_CROSSENTROPY).build(784);
    }

    private static FitOptions.Builder options(int epochs, Callback... callbacks) {
        FitOptions.Builder options = FitOptions.builder().batchSize(100).epochs(epochs).verbose(0);
        for (Callback c : callbacks) {
            options.callback(c);
        }
        return options;
    }

    private static List<Double> ratesOf(LearningRateScheduler scheduler, dev.gradscope.nn.Optimizer optimizer,
                                        int epochs) {
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, optimizer)) {
            return model.fit(TRAIN, options(epochs, scheduler).build()).get("learning_rate");
        }
    }

    @Test
    void eachScheduleGivesEveryEpochItsRate() {
        assertEquals(List.of(0.01, 0.01, 0.005, 0.005, 0.0025),
                ratesOf(LearningRateScheduler.step(2, 0.5), new Sgd(0.01, 0, false), 5));
        assertEquals(List.of(0.001, 0.001 * 0.9, 0.001 * 0.9 * 0.9),
                ratesOf(LearningRateScheduler.exponential(0.9), new Adam(), 3));
        // Half a cosine over 4 epochs from 1e-3 to 1e-4: 1e-4 + 9e-4 * (1 + cos(pi e / 4)) / 2.
        List<Double> cosine = ratesOf(LearningRateScheduler.cosine(4, 1e-4), new Adam(), 4);
        double[] expected = {1e-3, 1e-4 + 9e-4 * (1 + Math.sqrt(0.5)) / 2, 1e-4 + 9e-4 / 2,
            1e-4 + 9e-4 * (1 - Math.sqrt(0.5)) / 2};
        for (int e = 0; e < 4; e++) {
            assertEquals(expected[e], cosine.get(e), 1e-18, "epoch " + e);
        }
        LearningRateScheduler past = LearningRateScheduler.cosine(2, 1e-4);
        assertEquals(List.of(1e-3, 5.5e-4, 1e-4, 1e-4), ratesOf(past, new Adam(), 4),
                "past its length the cosine stays at its minimum, as Keras's CosineDecay does");
    }

    @Test
    void aScheduledRunResumedMidwayEqualsTheRunThatNeverStopped() {
        float[] straight;
        List<Double> straightRates;
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, new Adam())) {
            straightRates = model.fit(TRAIN, options(4, LearningRateScheduler.step(1, 0.5)).build())
                    .get("learning_rate");
            straight = model.parameters().toFloatArray();
        }
        Path state = dir.resolve("state.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, new Adam())) {
            model.fit(TRAIN, options(2, LearningRateScheduler.step(1, 0.5),
                    new TrainingStateCheckpoint(state, Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, new Adam())) {
            History resumed = model.fit(TRAIN, options(4, LearningRateScheduler.step(1, 0.5))
                    .resumeFrom(TrainingState.load(state, model)).build());
            assertEquals(straightRates, resumed.get("learning_rate"));
            assertArrayEquals(straight, model.parameters().toFloatArray());
        }
        assertEquals(List.of(0.001, 0.0005, 0.00025, 0.000125), straightRates);
    }

    /** A warm-up, whose first epoch's rate is not the initial rate, goes on at the rates of the straight run. */
    @Test
    void aCustomScheduleResumesFromTheInitialRateNotTheFirstEpochs() {
        LearningRateScheduler.Schedule warmUp = (epoch, initial) -> initial * (epoch + 1) / 4;
        List<Double> straight = ratesOf(new LearningRateScheduler(warmUp), new Adam(), 4);
        assertEquals(List.of(2.5e-4, 5e-4, 7.5e-4, 1e-3), straight);
        Path state = dir.resolve("warm-up.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, new Adam())) {
            model.fit(TRAIN, options(2, new LearningRateScheduler(warmUp), new TrainingStateCheckpoint(state,
                    Map.of())).build());
        }
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, new Adam())) {
            History resumed = model.fit(TRAIN, options(4, new LearningRateScheduler(warmUp))
                    .resumeFrom(TrainingState.load(state, model)).build());
            assertEquals(straight, resumed.get("learning_rate"));
        }
    }

    @Test
    void badSchedulesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> LearningRateScheduler.step(0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> LearningRateScheduler.step(1, 1.5));
        assertThrows(IllegalArgumentException.class, () -> LearningRateScheduler.exponential(0));
        assertThrows(IllegalArgumentException.class, () -> LearningRateScheduler.exponential(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> LearningRateScheduler.cosine(0, 0));
        assertThrows(IllegalArgumentException.class, () -> LearningRateScheduler.cosine(3, -1));
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, new Adam())) {
            float[] before = model.parameters().toFloatArray();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.fit(TRAIN,
                    options(2, new LearningRateScheduler((epoch, initial) -> epoch == 0 ? initial : 0)).build()));
            assertTrue(e.getMessage().contains("gives epoch 2 the learning rate 0.0; a rate must be above 0 and finite"
                    + " as a float"),
                    e.getMessage());
            assertTrue(!java.util.Arrays.equals(before, model.parameters().toFloatArray()), "epoch 1 trained");
        }
    }
}
