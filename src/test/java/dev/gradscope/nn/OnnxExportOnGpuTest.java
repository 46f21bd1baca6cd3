package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The export of a model that lives on the GPU. Tagged {@code gpu}: skipped, with the reason, where no CUDA device
 * works (and run on the CUDA emulator by {@code mvn test}).
 */
@Tag("gpu")
class OnnxExportOnGpuTest {
    private static final Optional<String> UNAVAILABLE = CudaBackend.unavailableReason();

    @BeforeEach
    void requireGpu() {
        assumeTrue(UNAVAILABLE.isEmpty(), () -> "no usable CUDA device: " + UNAVAILABLE.orElse(""));
    }

    /**
     * A model trained on the GPU (batch normalization, PReLU: state and learned slopes that only the device holds)
     * exports the same bytes as the same weights loaded on the CPU, and ONNX Runtime predicts the test rows' classes
     * as the GPU model does.
     */
    @Test
    void aModelOnTheGpuExportsTheBytesItsWeightsGiveOnTheCpu() throws Exception {
        Dataset train = MnistSubset.load().train().take(256);
        Dataset test = MnistSubset.load().test().take(64);
        float[] features = test.scaledFeatures();
        float[][] rows = new float[test.rows()][];
        for (int r = 0; r < rows.length; r++) {
            rows[r] = Arrays.copyOfRange(features, r * 784, (r + 1) * 784);
        }
        try (CudaBackend gpu = new CudaBackend();
             CpuBackend cpu = new CpuBackend();
             Sequential onGpu = Mlp.build(gpu, 3, 784, new int[] {16, 8}, 10, Mlp.HiddenUnits.of("prelu"),
                     Initializer.glorotUniform(), 0, true);
             Sequential onCpu = Mlp.build(cpu, 4, 784, new int[] {16, 8}, 10, Mlp.HiddenUnits.of("prelu"),
                     Initializer.glorotUniform(), 0, true)) {
            onGpu.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).fit(train, 64, 1, null);
            WeightsFile.values(onGpu).setInto(onCpu);
            byte[] fromGpu = OnnxExport.encode(onGpu);
            assertArrayEquals(OnnxExport.encode(onCpu), fromGpu);

            float[][] gpuLogits = onGpu.predictLogits(rows, 64);
            OnnxRuntimeModel.Outputs onnx;
            try (OnnxRuntimeModel runtime = OnnxRuntimeModel.of(fromGpu)) {
                onnx = runtime.run(rows);
            }
            for (int r = 0; r < rows.length; r++) {
                for (int c = 0; c < 10; c++) {
                    float expected = gpuLogits[r][c];
                    assertEquals(expected, onnx.logits()[r][c], Tolerances.ONNX_LOGITS_ABS
                            + Tolerances.ONNX_LOGITS_REL * maxAbs(gpuLogits[r]), "row " + r + ", class " + c);
                }
            }
        }
    }

    private static double maxAbs(float[] values) {
        double max = 0;
        for (float v : values) {
            max = Math.max(max, Math.abs(v));
        }
        return max;
    }
}
