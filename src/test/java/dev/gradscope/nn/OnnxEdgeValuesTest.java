package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.ActivationKind;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Each activation kind on edge values (0, +-1e-7, the kinks, +-20, +-100, +-1e20, NaN), one value
 * per row through Activation -> Dense(1, linear) with kernel 1 and bias 0, so the logit is f(x) itself; ONNX Runtime
 * against GradScope's CPU, |a - b| <= 1e-6 + 1e-5 |b|, NaN only where the other is NaN. Written in review: it found
 * step(NaN) exported as 0 and bent_identity(+-1e20) as NaN.
 */
class OnnxEdgeValuesTest {
    private static final CpuBackend CPU = new CpuBackend();
    private static final float[] EDGES = {0f, -0f, 1e-7f, -1e-7f, 1e-3f, -1e-3f, 1f, -1f, 3f, -3f, 6f, -6f, 20f, -20f,
        88f, 89f, 100f, -100f, 1e5f, -1e5f, 1e20f, -1e20f, Float.NaN};

    @AfterAll
    static void close() {
        CPU.close();
    }

    static List<String> mismatches(ActivationKind kind, double parameter, boolean learnable) throws Exception {
        List<String> bad = new ArrayList<>();
        Sequential model = new Sequential(CPU, 1).input(1);
        model.add(new ActivationLayer(kind, parameter, learnable, false));
        model.add(new Dense(1, ActivationKind.LINEAR));
        try (Sequential built = model.build(1)) {
            float[] p = built.parameters().toFloatArray();
            for (Sequential.ParameterGroup g : built.parameterGroups()) {
                for (int i = g.offset(); i < g.offset() + g.slot().size(); i++) {
                    p[i] = switch (g.slot().name()) {
                        case "kernel" -> 1f;
                        case "bias" -> 0f;
                        default -> (float) parameter;
                    };
                }
            }
            CPU.copyFromHost(p, built.parameters());
            float[][] x = new float[EDGES.length][];
            for (int i = 0; i < EDGES.length; i++) {
                x[i] = new float[] {EDGES[i]};
            }
            float[][] mine = built.predictLogits(x, 64);
            float[][] theirs;
            try (OnnxRuntimeModel ort = OnnxRuntimeModel.of(OnnxExport.encode(built))) {
                theirs = ort.run(x).logits();
            }
            for (int i = 0; i < EDGES.length; i++) {
                float a = theirs[i][0];
                float b = mine[i][0];
                boolean same = Float.isNaN(a) || Float.isNaN(b) ? Float.isNaN(a) && Float.isNaN(b)
                        : a == b || Math.abs(a - b) <= 1e-6 + 1e-5 * Math.abs(b);
                if (!same) {
                    bad.add(String.format("%s%s f(%s): ONNX Runtime %s, GradScope %s", kind.id(),
                            learnable ? " (learned " + parameter + ")" : "", EDGES[i], a, b));
                }
            }
        }
        return bad;
    }

    @ParameterizedTest
    @EnumSource(value = ActivationKind.class, names = "SOFTMAX", mode = EnumSource.Mode.EXCLUDE)
    void edgeValuesAgree(ActivationKind kind) throws Exception {
        List<String> bad = new ArrayList<>(mismatches(kind, kind.hasParameter() ? kind.defaultParameter() : 0, false));
        if (kind.hasParameter()) {
            bad.addAll(mismatches(kind, kind.defaultParameter(), true));
        }
        assertTrue(bad.isEmpty(), String.join("\n", bad));
    }
}
