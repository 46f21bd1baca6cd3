package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuActivations;
import dev.gradscope.tensor.ActivationKind;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class DenseTest {
    private static final int IN = 5;
    private static final int OUT = 4;
    private static final int BATCH = 3;

    static Stream<ActivationKind> denseActivations() {
        return Arrays.stream(ActivationKind.values())
                .filter(k -> k.isElementWise() && k != ActivationKind.PRELU);
    }

    /** A harness whose pre-activations all sit away from every kink (tries seeds until one does). */
    private static LayerHarness harnessAwayFromKinks(ActivationKind kind) {
        for (long seed = 1; seed < 1000; seed++) {
            LayerHarness h = new LayerHarness(new Dense(OUT, kind), IN, BATCH, seed, LayerHarness.uniform(1.0));
            if (!Kinks.anyNear(h.hostPreActivations(OUT))) {
                return h;
            }
            h.close();
        }
        throw new AssertionError("no seed keeps " + kind + "'s pre-activations away from its kinks");
    }

    @Test
    void forwardIsAffineThenActivation() {
        try (LayerHarness h = new LayerHarness(new Dense(OUT, ActivationKind.TANH), IN, BATCH, 7,
                LayerHarness.uniform(1.0))) {
            float[] y = h.forward();
            double[] z = h.hostPreActivations(OUT);
            for (int b = 0; b < BATCH; b++) {
                for (int j = 0; j < OUT; j++) {
                    assertEquals(Math.tanh(z[b * OUT + j]), y[b * OUT + j], Tolerances.F32_FORWARD_ABS,
                            "y[" + b + "][" + j + "]");
                }
            }
        }
    }

    @Test
    void kerasDefaultsAreGlorotUniformKernelAndZeroBias() {
        try (LayerHarness h = new LayerHarness(new Dense(300), 200, 1, 3, LayerHarness.uniform(1.0))) {
            double limit = Math.sqrt(6.0 / (200 + 300));
            float[] p = h.parameterValues;
            double maxAbs = 0;
            for (int i = 0; i < 200 * 300; i++) {
                maxAbs = Math.max(maxAbs, Math.abs(p[i]));
            }
            assertTrue(maxAbs <= limit && maxAbs > 0.95 * limit, "kernel within the Glorot limit " + limit
                    + " and filling it, max |w| = " + maxAbs);
            assertArrayEquals(new float[300], Arrays.copyOfRange(p, 200 * 300, p.length), "bias starts at zero");
        }
    }

    @ParameterizedTest
    @MethodSource("denseActivations")
    void gradientCheckOfKernelBiasAndInput(ActivationKind kind) {
        try (LayerHarness h = harnessAwayFromKinks(kind)) {
            float[] dx = h.backward();
            GradientCheck.check("Dense(" + kind.id() + ") kernel and bias", h.parameterNudger(),
                    h.parameterGradients(), h::loss, Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL,
                    Tolerances.F32_GRADCHECK_ABS);
            GradientCheck.check("Dense(" + kind.id() + ") input", h.inputNudger(), dx, h::loss,
                    Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
        }
    }

    @Test
    void activationParameterReachesTheMath() {
        // ELU with alpha 0.5 at a negative pre-activation: alpha (e^z - 1).
        Dense dense = new Dense(1, ActivationKind.ELU, 0.5).kernelInitializer(Initializer.constant(1.0));
        try (LayerHarness h = new LayerHarness(dense, 1, 1, 1, r -> -2f)) {
            assertEquals(CpuActivations.forward(ActivationKind.ELU, -2.0, 0.5), h.forward()[0],
                    Tolerances.F32_FORWARD_ABS);
            assertEquals(0.5 * (Math.exp(-2) - 1), h.forward()[0], Tolerances.F32_FORWARD_ABS);
        }
    }

    @Test
    void rejectsPreluAndBadWidths() {
        assertThrows(IllegalArgumentException.class, () -> new Dense(4, ActivationKind.PRELU));
        assertThrows(IllegalArgumentException.class, () -> new Dense(0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Dense(3, "rellu"));
        assertTrue(e.getMessage().contains("rellu") && e.getMessage().contains("relu"), e.getMessage());
    }
}
