package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Early stopping's restore on the GPU: the best copy goes from the device to the host after the epoch that improves
 * and back at the end, and across a resume through the training state; the steps replay as graphs meanwhile.
 * Tagged {@code gpu}: skipped, with the reason, where no CUDA device works (and run on the CUDA emulator by
 * {@code mvn test}).
 */
@Tag("gpu")
class RestoreBestWeightsOnGpuTest {
    private static final Optional<String> UNAVAILABLE = CudaBackend.unavailableReason();
    /** Two full batches of 100 and a last one of 50. */
    private static final Dataset TRAIN = MnistSubset.load().train().take(250);

    @TempDir
    Path dir;

    @BeforeEach
    void requireGpu() {
        assumeTrue(UNAVAILABLE.isEmpty(), () -> "no usable CUDA device: " + UNAVAILABLE.orElse(""));
    }

    /** With batch normalization, so that the moving statistics (kept outside the parameters) are restored too. */
    private static Sequential model(CudaBackend gpu) {
        return Mlp.build(gpu, 5, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("relu"), Initializer.glorotUniform(),
                0, true).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(784);
    }

    /** No later loss beats epoch 0's by 10, and patience 5 does not stop 3 epochs: epoch 0 is restored. */
    private static FitOptions.Builder options(int epochs) {
        return FitOptions.builder().batchSize(100).epochs(epochs).verbose(0).stepsPerGraph(2)
                .callback(new EarlyStopping("loss", 5, 10, true));
    }

    /** The parameters and moving statistics after every epoch. */
    private static final class Snapshots implements Callback {
        final List<float[]> parameters = new ArrayList<>();
        final List<float[]> state = new ArrayList<>();
        private TrainingRun run;

        @Override
        public void onTrainBegin(TrainingRun run) {
            this.run = run;
        }

        @Override
        public void onEpochEnd(int epoch, Map<String, Double> logs) {
            parameters.add(run.model().parameters().toFloatArray());
            state.add(run.model().state().toFloatArray());
        }
    }

    @Test
    void aRunResumedAfterItsBestEpochRestoresItBitForBitOnTheGpu() {
        Snapshots snapshots = new Snapshots();
        try (CudaBackend gpu = new CudaBackend(); Sequential model = model(gpu)) {
            History history = model.fit(TRAIN, options(3).callback(snapshots).build());
            assertTrue(history.graphs(), "the steps ran as graphs");
            assertArrayEquals(snapshots.parameters.get(0), model.parameters().toFloatArray());
            assertArrayEquals(snapshots.state.get(0), model.state().toFloatArray());
            assertTrue(!Arrays.equals(snapshots.parameters.get(0), snapshots.parameters.get(2)));
        }
        Path file = dir.resolve("state.safetensors");
        try (CudaBackend gpu = new CudaBackend(); Sequential model = model(gpu)) {
            model.fit(TRAIN, options(1).callback(new TrainingStateCheckpoint(file, Map.of())).build());
        }
        try (CudaBackend gpu = new CudaBackend(); Sequential model = model(gpu)) {
            TrainingState state = TrainingState.load(file, model);
            assertEquals(0, state.bestWeights().orElseThrow().epoch());
            EarlyStopping stopping = new EarlyStopping("loss", 5, 10, true);
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(3).verbose(0)
                    .stepsPerGraph(2).callback(stopping).resumeFrom(state).build());
            assertTrue(history.graphs(), "the resumed steps ran as graphs");
            assertEquals(0, stopping.restoredEpoch());
            assertArrayEquals(snapshots.parameters.get(0), model.parameters().toFloatArray(), "parameters");
            assertArrayEquals(snapshots.state.get(0), model.state().toFloatArray(), "moving statistics");
        }
    }
}
