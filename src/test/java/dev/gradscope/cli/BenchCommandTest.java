package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code gradscope bench} on the CPU: the epoch time, TF32's record, and the GEMMs of one step. */
class BenchCommandTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    @Test
    @SuppressWarnings("unchecked")
    void reportsTheEpochAndTheGemmsOfOneStep() {
        Path out = tmp.resolve("bench.json");
        Path data = MnistSubset.dir();
        assertEquals(0, GradScope.run(new PrintWriter(err, true), "bench", "--device", "cpu", "--data-dir",
                data.toString(), "--train-limit", "512", "--epochs", "2", "--no-profile", "--out", out.toString()),
                err.toString());
        Map<String, Object> json = HistoryJson.read(out);
        assertEquals(false, json.get("tf32"));
        assertEquals(2, json.get("steps_per_epoch"));
        assertNull(json.get("kernels_per_step"), "launches are counted on the GPU only");
        assertTrue(((Number) json.get("median_epoch_seconds")).doubleValue() > 0);

        Map<String, Object> gemm = (Map<String, Object>) json.get("gemm");
        // The chapter's MLP: five weight matrices, each x W and xᵀ dz, and dz Wᵀ but for the first layer.
        assertEquals(14, gemm.get("gemms_per_step"));
        long flop = 2L * 256 * (2L * 784 * 512 + 3L * (512 * 256 + 256 * 128 + 128 * 64 + 64 * 10));
        assertEquals(flop, ((Number) gemm.get("flop_per_step")).longValue());
        List<Map<String, Object>> shapes = (List<Map<String, Object>>) gemm.get("shapes");
        assertEquals(14, shapes.size());
        Map<String, Object> first = shapes.get(0); // the first layer's forward product, batch 256
        assertEquals(List.of(256, 784, 512), List.of(first.get("m"), first.get("k"), first.get("n")));
        double rate = ((Number) gemm.get("device_gflop_per_s")).doubleValue();
        assertTrue(rate > 0 && rate == ((Number) gemm.get("launched_gflop_per_s")).doubleValue(),
                "one figure on the CPU: " + gemm);
        assertTrue(((Number) gemm.get("share_of_step")).doubleValue() > 0, gemm.toString());
    }

    @Test
    void opTimesOnTheCpuIsAUsageError() {
        Path data = MnistSubset.dir();
        assertEquals(2, GradScope.run(new PrintWriter(err, true), "bench", "--device", "cpu", "--data-dir",
                data.toString(), "--train-limit", "512", "--epochs", "2", "--op-times"), err.toString());
        assertTrue(err.toString().contains("--op-times times ops with CUDA events: it needs the GPU"), err.toString());
    }

    /** The weights the bench starts from, for compare-peers.py: the model as built, before any step. */
    @Test
    void saveInitialWeightsWritesTheWeightsTheBenchStartsFrom() {
        Path data = MnistSubset.dir();
        Path initial = tmp.resolve("initial.safetensors");
        assertEquals(0, GradScope.run(new PrintWriter(err, true), "bench", "--device", "cpu", "--data-dir",
                data.toString(), "--train-limit", "256", "--hidden", "16", "--epochs", "2", "--seed", "7",
                "--save-initial-weights", initial.toString()), err.toString());
        try (CpuBackend backend = new CpuBackend();
             Sequential built = Mlp.build(backend, 7, 784, new int[] {16}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform());
             Sequential loaded = Mlp.build(backend, 8, 784, new int[] {16}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform())) {
            loaded.loadWeights(initial);
            assertArrayEquals(built.parameters().toFloatArray(), loaded.parameters().toFloatArray());
        }
    }
}
