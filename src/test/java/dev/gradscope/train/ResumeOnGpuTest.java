package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.RmsProp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.StepSchedule;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Training states saved and resumed on the GPU, where the optimizer's moments and step count live on the
 * device and the steps replay as CUDA graphs. Tagged {@code gpu}: skipped, with the reason, where no CUDA
 * device works (and run on the CUDA emulator by {@code mvn test}).
 */
@Tag("gpu")
class ResumeOnGpuTest {
    private static final Optional<String> UNAVAILABLE = CudaBackend.unavailableReason();
    /** Four full batches of 100 and a last one of 50: both step graphs run every epoch. */
    private static final Dataset TRAIN = MnistSubset.load().train().take(450);
    private static final Dataset TEST = MnistSubset.load().test().take(200);

    @TempDir
    Path dir;

    @BeforeEach
    void requireGpu() {
        assumeTrue(UNAVAILABLE.isEmpty(), () -> "no usable CUDA device: " + UNAVAILABLE.orElse(""));
    }

    private static Sequential model(Backend backend) {
        return model(backend, "adam", 0);
    }

    /**
     * Adam, or RMSprop with all its buffers (centered, momentum) and a weight decay; a Dropout of {@code dropout};
     * "rmsprop+batch_norm": RMSprop as that, and a BatchNormalization before each hidden PReLU; "sgd-warmup": SGD
     * with Nesterov momentum and a weight decay under a per-step warmup and cosine decay.
     */
    private static Sequential model(Backend backend, String optimizer, double dropout) {
        boolean batchNorm = optimizer.endsWith("+batch_norm");
        Optimizer chosen = switch (optimizer) {
            case "adam" -> new Adam();
            case "sgd-warmup" -> new Sgd(0.05, 0.9, true, 0.01);
            default -> new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0.01);
        };
        if (optimizer.equals("sgd-warmup")) {
            // a warmup over 12 of the 15 steps, then a cosine over 2: the run stops after 10, mid-warmup
            chosen.setStepSchedule(StepSchedule.cosineDecay(1e-3, 12, 2, 0.1));
        }
        return Mlp.build(backend, 5, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("prelu"),
                Initializer.glorotUniform(), dropout, batchNorm).compile(chosen, Loss.CATEGORICAL_CROSSENTROPY)
                .build(784);
    }

    private static FitOptions.Builder options(int epochs) {
        return FitOptions.builder().batchSize(100).epochs(epochs).validation(TEST).verbose(0)
                .profiler(new GradientProfiler()).stepsPerGraph(2);
    }

    /** With dropout, the replayed graphs of the resumed epochs draw the masks of the uninterrupted run's. */
    @ParameterizedTest(name = "{0}, dropout {1}")
    @CsvSource({"adam, 0", "adam, 0.3", "rmsprop, 0", "rmsprop+batch_norm, 0", "sgd-warmup, 0"})
    void aRunResumedOnTheGpuIsTheUninterruptedRunBitForBit(String optimizer, double dropout) {
        float[] parameters;
        float[] movingStatistics;
        Map<String, float[]> state = new LinkedHashMap<>();
        History straight;
        try (CudaBackend gpu = new CudaBackend(); Sequential model = model(gpu, optimizer, dropout)) {
            straight = model.fit(TRAIN, options(3).build());
            assertTrue(straight.graphs(), "the steps ran as graphs");
            parameters = model.parameters().toFloatArray();
            movingStatistics = model.state() == null ? new float[0] : model.state().toFloatArray();
            model.optimizer().stateBuffers().forEach((name, buffer) -> state.put(name, buffer.toFloatArray()));
        }
        Path file = dir.resolve("state.safetensors");
        try (CudaBackend gpu = new CudaBackend(); Sequential model = model(gpu, optimizer, dropout)) {
            model.fit(TRAIN, options(2).callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CudaBackend gpu = new CudaBackend(); Sequential model = model(gpu, optimizer, dropout)) {
            History resumed = model.fit(TRAIN, options(3).resumeFrom(TrainingState.load(file, model)).build());
            assertArrayEquals(parameters, model.parameters().toFloatArray(), "parameters, bit for bit");
            assertArrayEquals(movingStatistics, model.state() == null ? new float[0] : model.state().toFloatArray(),
                    "moving statistics, bit for bit");
            assertEquals(state.keySet(), model.optimizer().stateBuffers().keySet());
            state.forEach((name, values) -> assertArrayEquals(values,
                    model.optimizer().stateBuffers().get(name).toFloatArray(), optimizer + "'s " + name));
            assertEquals(15, model.optimizer().iterations(), "3 epochs of 5 steps, counted by every optimizer");
            assertEquals(straight.metrics(), resumed.metrics());
            assertEquals(straight.operationsPerStep(), resumed.operationsPerStep(), "counted on the first new step");
            assertTrue(resumed.operationsPerStep() > 0);
            assertEquals(straight.profile().steps().size(), resumed.profile().steps().size());
            for (int s = 0; s < straight.profile().steps().size(); s++) {
                assertArrayEquals(straight.profile().steps().get(s).gradientNorms(),
                        resumed.profile().steps().get(s).gradientNorms(), "gradient norms of step " + s);
            }
            assertEquals(straight.profile().units(), resumed.profile().units());
        }
    }

    @Test
    void aStateSavedOnTheCpuGoesOnOnTheGpuWithTheSameNumbers() {
        Path file = dir.resolve("state.safetensors");
        float[] parameters;
        float[] firstMoments;
        try (CpuBackend cpu = new CpuBackend(); Sequential model = model(cpu)) {
            model.fit(TRAIN, options(1).callback(new TrainingStateCheckpoint(file, Map.of())).build());
            parameters = model.parameters().toFloatArray();
            firstMoments = model.optimizer().stateBuffers().get("m").toFloatArray();
        }
        try (CudaBackend gpu = new CudaBackend(); Sequential model = model(gpu)) {
            TrainingState state = TrainingState.load(file, model);
            assertArrayEquals(parameters, model.parameters().toFloatArray());
            assertArrayEquals(firstMoments, model.optimizer().stateBuffers().get("m").toFloatArray());
            assertEquals(5, model.optimizer().iterations());
            History history = model.fit(TRAIN, options(2).resumeFrom(state).build());
            assertEquals(2, history.epochs());
            assertEquals(List.of(0, 1), history.profile().steps().stream().map(Profile.StepStatistics::epoch)
                    .distinct().toList());
            assertEquals(10, model.optimizer().iterations(), "the GPU's Adam went on counting from 5");
        }
    }

    /**
     * A callback that changes the learning rate between epochs: the replayed graphs hold the rate they were
     * captured with, so the trainer captures them again, and graph mode gives the eager numbers. For SGD and for
     * RMSprop with a weight decay (whose decay also uses the rate).
     */
    @ParameterizedTest
    @ValueSource(strings = {"sgd", "rmsprop"})
    void aLearningRateChangedBetweenEpochsReachesTheReplayedGraphs(String optimizer) {
        float[][] parameters = new float[2][];
        History[] histories = new History[2];
        double rate = optimizer.equals("sgd") ? 0.1 : 0.004;
        for (int way = 0; way < 2; way++) {
            try (CudaBackend gpu = new CudaBackend();
                 Sequential model = Mlp.build(gpu, 5, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("relu"),
                         Initializer.glorotUniform()).compile(optimizer.equals("sgd") ? new dev.gradscope.nn.Sgd(rate)
                                 : new RmsProp(rate, 0.9, 0, 1e-7, false, 0.05),
                         Loss.CATEGORICAL_CROSSENTROPY).build(784)) {
                // Loss must fall by more than 10 per epoch: it never does, so the rate halves after every epoch.
                histories[way] = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(4).verbose(0)
                        .stepsPerGraph(2).graph(way == 1)
                        .callback(new ReduceLROnPlateau("loss", 0.5, 0, 10, 0, 0)).build());
                parameters[way] = model.parameters().toFloatArray();
            }
        }
        assertTrue(histories[1].graphs(), "the second way replayed graphs");
        assertEquals(List.of(rate, rate, rate / 2, rate / 4), histories[1].get("learning_rate"));
        assertEquals(histories[0].metrics(), histories[1].metrics());
        assertArrayEquals(parameters[0], parameters[1], "graphs and eager steps, bit for bit");
    }

    /** The same for a schedule, which sets the rate before each epoch rather than after one. */
    @Test
    void aScheduledRateReachesTheReplayedGraphs() {
        float[][] parameters = new float[2][];
        History[] histories = new History[2];
        for (int way = 0; way < 2; way++) {
            try (CudaBackend gpu = new CudaBackend();
                 Sequential model = Mlp.build(gpu, 5, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("relu"),
                         Initializer.glorotUniform()).compile(new dev.gradscope.nn.Adam(),
                         Loss.CATEGORICAL_CROSSENTROPY).build(784)) {
                histories[way] = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(3).verbose(0)
                        .graph(way == 1).callback(LearningRateScheduler.cosine(3, 1e-4)).build());
                parameters[way] = model.parameters().toFloatArray();
            }
        }
        assertTrue(histories[1].graphs(), "the second way replayed graphs");
        assertEquals(3, histories[1].get("learning_rate").stream().distinct().count());
        assertEquals(histories[0].metrics(), histories[1].metrics());
        assertArrayEquals(parameters[0], parameters[1], "graphs and eager steps, bit for bit");
    }
}
