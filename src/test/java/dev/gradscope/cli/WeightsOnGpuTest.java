package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.tensor.Backend;
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
 * Weights files written and read on the GPU. Tagged {@code gpu}: skipped, with the reason, where no CUDA
 * device works (and run on the CUDA emulator by {@code mvn test}).
 */
@Tag("gpu")
class WeightsOnGpuTest {
    private static final Optional<String> UNAVAILABLE = CudaBackend.unavailableReason();
    private static final Dataset TRAIN = MnistSubset.load().train().take(512);

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    @BeforeEach
    void requireGpu() {
        assumeTrue(UNAVAILABLE.isEmpty(), () -> "no usable CUDA device: " + UNAVAILABLE.orElse(""));
    }

    private static Sequential model(Backend backend, long seed) {
        return Mlp.build(backend, seed, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("prelu"),
                Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY);
    }

    @Test
    void weightsTravelBetweenTheGpuAndTheCpuBitForBit() {
        Path fromGpu = tmp.resolve("gpu.safetensors");
        Path fromCpu = tmp.resolve("cpu.safetensors");
        try (CudaBackend gpu = new CudaBackend();
             CpuBackend cpu = new CpuBackend();
             Sequential onGpu = model(gpu, 1);
             Sequential onCpu = model(cpu, 2)) {
            onGpu.fit(TRAIN, 128, 1, null); // weights no CPU would compute bit for bit
            onGpu.saveWeights(fromGpu);
            onCpu.loadWeights(fromGpu);
            assertArrayEquals(onGpu.parameters().toFloatArray(), onCpu.parameters().toFloatArray());

            onCpu.fit(TRAIN, 128, 1, null);
            onCpu.saveWeights(fromCpu);
            onGpu.loadWeights(fromCpu);
            assertArrayEquals(onCpu.parameters().toFloatArray(), onGpu.parameters().toFloatArray());
        }
    }

    /** A small run (32-16 hidden units, 512 subset images) trained on the GPU for {@code epochs}; its --out folder. */
    private Path trainOnTheGpu(int epochs) {
        Path out = tmp.resolve("run");
        assertEquals(0, GradScope.run(new PrintWriter(err, true), "train", "--device", "cuda", "--data-dir",
                MnistSubset.dir().toString(), "--hidden", "32,16", "--train-limit", "512", "--epochs",
                Integer.toString(epochs), "--quiet", "--out", out.toString()), err.toString());
        return out;
    }

    /** Evaluating on the device that trained repeats the run's last validation exactly; on the CPU, closely. */
    @Test
    @SuppressWarnings("unchecked")
    void evaluateRepeatsTheRunsLastValidation() {
        Path data = MnistSubset.dir();
        Path out = trainOnTheGpu(2);
        List<Number> valLoss = (List<Number>) HistoryJson.read(out.resolve("history.json")).get("val_loss");
        List<Number> valAccuracy = (List<Number>) HistoryJson.read(out.resolve("history.json")).get("val_accuracy");
        for (String device : List.of("cuda", "cpu")) {
            Path result = tmp.resolve(device + ".json");
            assertEquals(0, GradScope.run(new PrintWriter(err, true), "evaluate", out.resolve("model.safetensors")
                    .toString(), "--device", device, "--data-dir", data.toString(), "--out", result.toString()),
                    err.toString());
            Map<String, Object> evaluation = HistoryJson.read(result);
            double loss = ((Number) evaluation.get("loss")).doubleValue();
            double accuracy = ((Number) evaluation.get("accuracy")).doubleValue();
            if (device.equals("cuda")) {
                assertEquals(valLoss.get(1).doubleValue(), loss);
                assertEquals(valAccuracy.get(1).doubleValue(), accuracy);
            } else {
                double expectedLoss = valLoss.get(1).doubleValue();
                assertEquals(expectedLoss, loss, Tolerances.GPU_LOSS_TOTAL_REL * expectedLoss);
                assertEquals(valAccuracy.get(1).doubleValue(), accuracy, Tolerances.GPU_EVALUATION_ACCURACY_ABS);
            }
        }
    }

    @Test
    void aCpuRunResumedOnTheGpuGoesOnAndSaysItsNumbersDiffer() {
        Path data = MnistSubset.dir();
        Path out = tmp.resolve("run");
        assertEquals(0, GradScope.run(new PrintWriter(err, true), "train", "--device", "cpu", "--data-dir",
                data.toString(), "--hidden", "32,16", "--train-limit", "512", "--epochs", "1", "--quiet", "--out",
                out.toString()), err.toString());
        java.io.ByteArrayOutputStream notes = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stderr = System.err;
        System.setErr(new java.io.PrintStream(notes, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            assertEquals(0, GradScope.run(new PrintWriter(err, true), "train", "--resume", out.toString(), "--device",
                    "cuda", "--epochs", "2", "--quiet"), err.toString());
        } finally {
            System.setErr(stderr);
        }
        String printed = notes.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(printed.contains("the run trained on cpu and goes on on cuda"), printed);
        Map<String, Object> history = HistoryJson.read(out.resolve("history.json"));
        assertEquals(2, ((List<?>) history.get("val_loss")).size());
        assertEquals("cuda", ((Map<?, ?>) history.get("config")).get("backend"));
    }

    /**
     * predict on the GPU gives the CPU's probabilities up to float noise, and so the same classes but for a near
     * tie of the two best.
     */
    @Test
    @SuppressWarnings("unchecked")
    void predictOnTheGpuGivesTheCpusProbabilities() {
        Path data = MnistSubset.dir();
        Path out = trainOnTheGpu(1);
        Map<String, List<Map<String, Object>>> predictions = new java.util.HashMap<>();
        for (String device : List.of("cuda", "cpu")) {
            Path result = tmp.resolve("predict-" + device + ".json");
            assertEquals(0, GradScope.run(new PrintWriter(err, true), "predict", out.resolve("model.safetensors")
                    .toString(), "--device", device, "--data-dir", data.toString(), "--test-index",
                    "0,1,2,3,4,5,6,7,8,9,999", "--out", result.toString()), err.toString());
            predictions.put(device, (List<Map<String, Object>>) HistoryJson.read(result).get("predictions"));
        }
        for (int i = 0; i < 11; i++) {
            List<Number> gpu = (List<Number>) predictions.get("cuda").get(i).get("probabilities");
            List<Number> cpu = (List<Number>) predictions.get("cpu").get(i).get("probabilities");
            for (int c = 0; c < 10; c++) {
                assertEquals(cpu.get(c).doubleValue(), gpu.get(c).doubleValue(),
                        Tolerances.GPU_PREDICT_PROBABILITY_ABS, "image " + i + ", class " + c);
            }
            List<Map<String, Object>> top = (List<Map<String, Object>>) predictions.get("cpu").get(i).get("top");
            double gap = ((Number) top.get(0).get("probability")).doubleValue()
                    - ((Number) top.get(1).get("probability")).doubleValue();
            if (gap > 2 * Tolerances.GPU_PREDICT_PROBABILITY_ABS) {
                assertEquals(predictions.get("cpu").get(i).get("class"), predictions.get("cuda").get(i).get("class"));
            }
        }
    }
}
