package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.gradscope.Tolerances;
import org.junit.jupiter.api.Test;

class MaxoutTest {
    private static final int IN = 4;
    private static final int UNITS = 3;
    private static final int PIECES = 3;
    private static final int BATCH = 3;

    /** Smallest gap between a unit's winning piece and its runner-up: a nudge must not change winners. */
    private static double smallestWinningGap(LayerHarness h) {
        double[] z = h.hostPreActivations(UNITS * PIECES);
        double gap = Double.MAX_VALUE;
        for (int u = 0; u < BATCH * UNITS; u++) {
            double best = Double.NEGATIVE_INFINITY;
            double second = Double.NEGATIVE_INFINITY;
            for (int p = 0; p < PIECES; p++) {
                double v = z[u * PIECES + p];
                if (v > best) {
                    second = best;
                    best = v;
                } else if (v > second) {
                    second = v;
                }
            }
            gap = Math.min(gap, best - second);
        }
        return gap;
    }

    private static LayerHarness harnessWithClearWinners() {
        for (long seed = 1; seed < 1000; seed++) {
            Maxout layer = new Maxout(UNITS, PIECES).kernelInitializer(Initializer.parse("random_uniform:1.0"));
            LayerHarness h = new LayerHarness(layer, IN, BATCH, seed, LayerHarness.uniform(1.0));
            if (smallestWinningGap(h) > Kinks.MARGIN) {
                return h;
            }
            h.close();
        }
        throw new AssertionError("no seed gives maxout units a clear winner");
    }

    @Test
    void forwardTakesTheLargestPiece() {
        try (LayerHarness h = harnessWithClearWinners()) {
            double[] z = h.hostPreActivations(UNITS * PIECES);
            float[] y = h.forward();
            for (int u = 0; u < BATCH * UNITS; u++) {
                double best = Double.NEGATIVE_INFINITY;
                for (int p = 0; p < PIECES; p++) {
                    best = Math.max(best, z[u * PIECES + p]);
                }
                assertEquals(best, y[u], Tolerances.F32_FORWARD_ABS, "unit " + u);
            }
        }
    }

    @Test
    void gradientCheckOfEveryParameterAndInput() {
        try (LayerHarness h = harnessWithClearWinners()) {
            assertEquals(IN * UNITS * PIECES + UNITS * PIECES, h.layer.parameterCount());
            float[] dx = h.backward();
            GradientCheck.check("Maxout parameters", h.parameterNudger(), h.parameterGradients(), h::loss,
                    Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
            GradientCheck.check("Maxout input", h.inputNudger(), dx, h::loss, Tolerances.F32_GRADCHECK_STEP,
                    Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
        }
    }

    @Test
    void moreThanAnIntOfPreActivationsIsRefused() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new Maxout(3, 1_000_000_000));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("3 units of 1000000000 pieces"),
                e.getMessage());
    }
}
