package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.report.HistoryJson;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code gradscope bench --device cuda}: the figures only the GPU gives. Tagged {@code gpu}: skipped, with
 * the reason, where no CUDA device works (and run on the CUDA emulator by {@code mvn test}).
 */
@Tag("gpu")
class BenchOnGpuTest {
    private static final Optional<String> UNAVAILABLE = CudaBackend.unavailableReason();

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    @BeforeEach
    void requireGpu() {
        assumeTrue(UNAVAILABLE.isEmpty(), () -> "no usable CUDA device: " + UNAVAILABLE.orElse(""));
    }

    @Test
    @SuppressWarnings("unchecked")
    void opTimesListEveryOpOfAStepInQueueOrder() {
        Path out = tmp.resolve("bench.json");
        Path data = MnistSubset.dir();
        int batch = 32;
        int examples = batch * (StepFigures.OP_TIMING_WARMUP_STEPS + StepFigures.OP_TIMING_STEPS);
        assertEquals(0, GradScope.run(new PrintWriter(err, true), "bench", "--device", "cuda", "--data-dir",
                data.toString(), "--train-limit", Integer.toString(examples), "--batch-size", Integer.toString(batch),
                "--epochs", "2", "--op-times", "--out", out.toString()), err.toString());
        Map<String, Object> json = HistoryJson.read(out);
        Map<String, Object> opTimes = (Map<String, Object>) json.get("op_times");
        List<Map<String, Object>> ops = (List<Map<String, Object>>) opTimes.get("ops");
        assertEquals(StepFigures.OP_TIMING_STEPS, opTimes.get("steps_timed"));
        // Every op the step queues, kernels and cuBLAS calls alike, and nothing else.
        assertEquals(((Number) json.get("kernels_per_step")).intValue(), ops.size(), ops.toString());
        assertEquals(25, ops.size(), "the chapter MLP's 25 ops per step (OpsPerStepTest): " + ops);
        assertTrue(ops.get(0).get("op").toString().startsWith("gemm "), "the step starts with its first GEMM, its"
                + " batch fetched by the step before: " + ops);
        assertEquals(14, ops.stream().filter(op -> op.get("op").toString().startsWith("gemm ")).count(),
                "the chapter MLP's 14 GEMMs: " + ops);
        assertEquals(Map.of("op", "gather_next_batch", "aside", true),
                Map.of("op", ops.get(ops.size() - 2).get("op"), "aside", ops.get(ops.size() - 2).get("aside")),
                "the next batch is fetched aside, beside the optimizer that ends the step: " + ops);
        // The weight-gradient GEMMs go aside, one per layer, and the next batch's fetch; the sums keep the two
        // streams apart.
        assertEquals(6, ops.stream().filter(op -> Boolean.TRUE.equals(op.get("aside"))).count(), ops.toString());
        double[] sums = new double[2];
        for (Map<String, Object> op : ops) {
            double ms = ((Number) op.get("median_ms")).doubleValue();
            assertTrue(ms >= 0, op.toString());
            sums[Boolean.TRUE.equals(op.get("aside")) ? 1 : 0] += ms;
        }
        assertEquals(sums[0], ((Number) opTimes.get("sum_ms")).doubleValue(), 1e-9 * Math.max(1, sums[0]));
        assertEquals(sums[1], ((Number) opTimes.get("aside_ms")).doubleValue(), 1e-9 * Math.max(1, sums[1]));
    }

    /**
     * bench kernels' batch-normalization entry on the GPU (the whole command, with its 4096^3 SGEMM, is too slow for
     * the emulator): forward and backward check out against the host. 1000 x 512 floats + 3: the bench's tall batch
     * in small, two kernels each way (32 slices of 32 rows, the last block adding them), and the rest of the N floats
     * is left out of the batch.
     */
    @Test
    void kernelsTimesBatchNormWithCheckedResults() {
        try (CudaBackend cuda = new CudaBackend()) {
            Map<String, Object> json = Map.of("batch_norm",
                    BenchKernelsCommand.batchNormEntry(cuda, 1000 * 512 + 3, 2));
            BenchKernelsCommandTest.assertBatchNormRow(json, 1000, 512);
        }
    }

    /** --steps-per-graph reaches the trainer: bench records the steps each launch ran, at most the full batches. */
    @Test
    void stepsPerGraphAreRecorded() {
        Path data = MnistSubset.dir();
        for (int[] asked : new int[][] {{4, 4}, {1000, 5}}) { // 160 examples in batches of 32: 5 full batches
            Path out = tmp.resolve("bench-" + asked[0] + ".json");
            assertEquals(0, GradScope.run(new PrintWriter(err, true), "bench", "--device", "cuda", "--data-dir",
                    data.toString(), "--train-limit", "160", "--batch-size", "32", "--hidden", "16", "--epochs", "2",
                    "--steps-per-graph", Integer.toString(asked[0]), "--out", out.toString()), err.toString());
            Map<String, Object> json = HistoryJson.read(out);
            assertEquals(true, json.get("graph"));
            assertEquals(asked[1], json.get("steps_per_graph"), json.toString());
        }
    }
}
