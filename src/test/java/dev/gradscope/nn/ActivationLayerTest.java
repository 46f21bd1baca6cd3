package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuActivations;
import dev.gradscope.tensor.ActivationKind;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class ActivationLayerTest {
    private static final int UNITS = 6;
    private static final int BATCH = 4;

    static Stream<ActivationKind> elementWiseKinds() {
        return Arrays.stream(ActivationKind.values()).filter(ActivationKind::isElementWise);
    }

    @ParameterizedTest
    @MethodSource("elementWiseKinds")
    void forwardAppliesTheFunctionElementWise(ActivationKind kind) {
        try (LayerHarness h = new LayerHarness(new ActivationLayer(kind), UNITS, BATCH, 11, Kinks.awayFromKinks())) {
            float[] y = h.forward();
            for (int i = 0; i < y.length; i++) {
                double expected = CpuActivations.forward(kind, h.input[i], kind.defaultParameter());
                assertEquals(expected, y[i], Tolerances.F32_FORWARD_ABS + 1e-6 * Math.abs(expected),
                        kind.id() + " at " + h.input[i]);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("elementWiseKinds")
    void inputGradientCheck(ActivationKind kind) {
        try (LayerHarness h = new LayerHarness(new ActivationLayer(kind), UNITS, BATCH, 12, Kinks.awayFromKinks())) {
            float[] dx = h.backward();
            GradientCheck.check(kind.id() + " input", h.inputNudger(), dx, h::loss, Tolerances.F32_GRADCHECK_STEP,
                    Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
        }
    }

    @Test
    void preluPerUnitAlphaGradientCheck() {
        checkLearnedParameter(new PReLU(true), UNITS);
    }

    @Test
    void preluSharedAlphaGradientCheck() {
        checkLearnedParameter(new PReLU(false), 1);
    }

    @Test
    void swishLearnedBetaGradientCheck() {
        checkLearnedParameter(new Swish(1.5, true), 1);
    }

    @Test
    void eluPerUnitLearnedAlphaGradientCheck() {
        checkLearnedParameter(new ActivationLayer(ActivationKind.ELU, 0.7, true, true), UNITS);
    }

    private static void checkLearnedParameter(ActivationLayer layer, int expectedParameters) {
        try (LayerHarness h = new LayerHarness(layer, UNITS, BATCH, 13, Kinks.awayFromKinks())) {
            assertEquals(expectedParameters, layer.parameterCount());
            float[] dx = h.backward();
            GradientCheck.check(layer.describe() + " parameter", h.parameterNudger(), h.parameterGradients(),
                    h::loss, Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
            GradientCheck.check(layer.describe() + " input", h.inputNudger(), dx, h::loss,
                    Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
        }
    }

    @Test
    void preluStartsAtAQuarterAndLearnsPerUnitByDefault() {
        try (LayerHarness h = new LayerHarness(new PReLU(), UNITS, 1, 1, r -> -1f)) {
            assertEquals(UNITS, h.layer.parameterCount());
            for (float alpha : h.parameterValues) {
                assertEquals(0.25f, alpha);
            }
            for (float y : h.forward()) {
                assertEquals(-0.25f, y);
            }
        }
    }

    @Test
    void refusesSoftmaxAndLearningAMissingParameter() {
        assertThrows(IllegalArgumentException.class, () -> new ActivationLayer(ActivationKind.SOFTMAX));
        assertThrows(IllegalArgumentException.class,
                () -> new ActivationLayer(ActivationKind.RELU, 0, true, false));
    }
}
