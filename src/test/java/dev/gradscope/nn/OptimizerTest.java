package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.Tensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** One and two optimizer steps against values worked out by hand from Keras's update rules. */
class OptimizerTest {
    private static final double TOLERANCE = 1e-7;
    private final CpuBackend backend = new CpuBackend();

    private float[] steps(Optimizer optimizer, float[] start, float[]... gradients) {
        try (Tensor p = backend.fromHost(start, start.length);
             Tensor g = backend.fromHost(new float[start.length], start.length)) {
            optimizer.build(backend, start.length);
            for (float[] grad : gradients) {
                backend.copyFromHost(grad, g);
                optimizer.step(p, g);
            }
            optimizer.close();
            return p.toFloatArray();
        }
    }

    @Test
    void adamFirstAndSecondStep() {
        // Keras defaults: lr 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7. p0 = 1, g = 0.5 then g = -0.2.
        // Step 1: m = 0.05, v = 0.00025, step size = 1e-3 sqrt(1 - 0.999) / (1 - 0.9).
        double m1 = 0.1 * 0.5;
        double v1 = 0.001 * 0.25;
        double p1 = 1 - 1e-3 * Math.sqrt(1 - 0.999) / (1 - 0.9) * m1 / (Math.sqrt(v1) + 1e-7);
        // Step 2: m = 0.9 m1 + 0.1 (-0.2), v = 0.999 v1 + 0.001 (0.04).
        double m2 = 0.9 * m1 + 0.1 * -0.2;
        double v2 = 0.999 * v1 + 0.001 * 0.04;
        double p2 = p1 - 1e-3 * Math.sqrt(1 - 0.999 * 0.999) / (1 - 0.9 * 0.9) * m2 / (Math.sqrt(v2) + 1e-7);
        assertEquals(p1, steps(new Adam(), new float[] {1f}, new float[] {0.5f})[0], TOLERANCE);
        assertEquals(p2, steps(new Adam(), new float[] {1f}, new float[] {0.5f}, new float[] {-0.2f})[0], TOLERANCE);
        // Adam's first step moves every parameter by about lr, whatever the gradient's size.
        assertEquals(1 - 1e-3, steps(new Adam(), new float[] {1f}, new float[] {1e4f})[0], 1e-6);
    }

    /**
     * Adam keeps its step count on the device and computes the step size there: the same bits as the
     * host-scalar update with the host's Math.pow formula, and iterations() reads the count.
     */
    @Test
    void adamCountsOnTheDeviceAndStepsAsTheHostScalarUpdate() {
        float[] start = {1f, -2f, 0.5f, 3f, 0f};
        float[][] gradients = {{0.5f, -1f, 2f, 0f, 1e-3f}, {-0.2f, 0.3f, 0f, 5f, -1f}, {1f, 1f, 1f, 1f, 1f}};
        Adam adam = new Adam(2e-3);
        try (Tensor p = backend.fromHost(start, start.length);
             Tensor expected = backend.fromHost(start, start.length);
             Tensor m = backend.allocate(dev.gradscope.tensor.DType.FLOAT32, start.length);
             Tensor v = backend.allocate(dev.gradscope.tensor.DType.FLOAT32, start.length);
             Tensor g = backend.fromHost(new float[start.length], start.length)) {
            adam.build(backend, start.length);
            for (int t = 1; t <= gradients.length; t++) {
                backend.copyFromHost(gradients[t - 1], g);
                adam.step(p, g);
                double stepSize = 2e-3 * Math.sqrt(1 - Math.pow(0.999, t)) / (1 - Math.pow(0.9, t));
                backend.adamUpdate(expected, g, m, v, 0.9f, 0.999f, 1e-7f, (float) stepSize);
                assertEquals(t, adam.iterations());
            }
            assertArrayEquals(expected.toFloatArray(), p.toFloatArray(), "bit for bit");
            adam.close();
            assertEquals(0, adam.iterations(), "closed: no count");
        }
    }

    @Test
    void sgdPlainMomentumAndNesterov() {
        float[] g = {0.5f};
        assertEquals(1 - 0.1 * 0.5, steps(new Sgd(0.1), new float[] {1f}, g)[0], TOLERANCE);
        // Momentum 0.9: v1 = -0.05, p1 = 0.95; v2 = 0.9 v1 - 0.05 = -0.095, p2 = 0.855.
        assertEquals(0.95, steps(new Sgd(0.1, 0.9, false), new float[] {1f}, g)[0], TOLERANCE);
        assertEquals(0.855, steps(new Sgd(0.1, 0.9, false), new float[] {1f}, g, g)[0], TOLERANCE);
        // Nesterov: p += momentum v - lr g. Step 1: 1 + 0.9(-0.05) - 0.05 = 0.905; step 2: v2 = -0.095,
        // p2 = 0.905 + 0.9(-0.095) - 0.05 = 0.7695.
        assertEquals(0.905, steps(new Sgd(0.1, 0.9, true), new float[] {1f}, g)[0], TOLERANCE);
        assertEquals(0.7695, steps(new Sgd(0.1, 0.9, true), new float[] {1f}, g, g)[0], TOLERANCE);
    }

    @Test
    void rmsPropPlainCenteredAndWithMomentum() {
        // Keras's docstring example: lr 0.1, p = 10, loss p^2 / 2 so g = p: velocity 0.1 * 100 = 10, p = 10 -
        // 0.1 * 10 / sqrt(10 + 1e-7) = 9.683772.
        assertEquals(10 - 1 / Math.sqrt(10 + 1e-7), steps(new RmsProp(0.1), new float[] {10f}, new float[] {10f})[0],
                1e-6);
        // Keras defaults: lr 1e-3, rho 0.9, epsilon 1e-7 inside the square root. p0 = 1, g = 0.5 then -0.2.
        double v1 = 0.1 * 0.25;
        double v2 = 0.9 * v1 + 0.1 * 0.04;
        double p1 = 1 - 1e-3 * 0.5 / Math.sqrt(v1 + 1e-7);
        double p2 = p1 - 1e-3 * -0.2 / Math.sqrt(v2 + 1e-7);
        float[] g1 = {0.5f};
        float[] g2 = {-0.2f};
        assertEquals(p1, steps(new RmsProp(), new float[] {1f}, g1)[0], TOLERANCE);
        assertEquals(p2, steps(new RmsProp(), new float[] {1f}, g1, g2)[0], TOLERANCE);
        // Centered: the average gradient a = 0.1 g1, then 0.9 a1 + 0.1 g2; the denominator v - a^2 + epsilon.
        double a1 = 0.1 * 0.5;
        double a2 = 0.9 * a1 + 0.1 * -0.2;
        double c1 = 1 - 1e-3 * 0.5 / Math.sqrt(v1 - a1 * a1 + 1e-7);
        double c2 = c1 - 1e-3 * -0.2 / Math.sqrt(v2 - a2 * a2 + 1e-7);
        assertEquals(c2, steps(new RmsProp(1e-3, 0.9, 0, 1e-7, true, 0), new float[] {1f}, g1, g2)[0], TOLERANCE);
        // Momentum 0.5: the buffer b1 = increment 1, b2 = 0.5 b1 + increment 2; p -= b each step.
        double b1 = 1e-3 * 0.5 / Math.sqrt(v1 + 1e-7);
        double b2 = 0.5 * b1 + 1e-3 * -0.2 / Math.sqrt(v2 + 1e-7);
        assertEquals(1 - b1 - b2, steps(new RmsProp(1e-3, 0.9, 0.5, 1e-7, false, 0), new float[] {1f}, g1, g2)[0],
                TOLERANCE);
        // rho 0.5, all three at once.
        double rv1 = 0.5 * 0.25;
        double ra1 = 0.5 * 0.5;
        double rv2 = 0.5 * rv1 + 0.5 * 0.04;
        double ra2 = 0.5 * ra1 + 0.5 * -0.2;
        double rb1 = 1e-2 * 0.5 / Math.sqrt(rv1 - ra1 * ra1 + 1e-7);
        double rb2 = 0.5 * rb1 + 1e-2 * -0.2 / Math.sqrt(rv2 - ra2 * ra2 + 1e-7);
        assertEquals(1 - rb1 - rb2, steps(new RmsProp(1e-2, 0.5, 0.5, 1e-7, true, 0), new float[] {1f}, g1, g2)[0],
                TOLERANCE);
    }

    /**
     * Keras 3's decoupled weight decay, before each update: p -= p wd lr, then the optimizer's own rule on the
     * decayed p (the moments never see it).
     */
    @Test
    void weightDecayShrinksTheParametersBeforeEachUpdate() {
        float[] g1 = {0.5f};
        float[] g2 = {-0.2f};
        // RMSprop, lr 1e-2, wd 0.1: each step first multiplies p by 1 - 0.1 * 0.01.
        double v1 = 0.1 * 0.25;
        double v2 = 0.9 * v1 + 0.1 * 0.04;
        double p1 = 1 * (1 - 1e-3) - 1e-2 * 0.5 / Math.sqrt(v1 + 1e-7);
        double p2 = p1 * (1 - 1e-3) - 1e-2 * -0.2 / Math.sqrt(v2 + 1e-7);
        assertEquals(p2, steps(new RmsProp(1e-2, 0.9, 0, 1e-7, false, 0.1), new float[] {1f}, g1, g2)[0], TOLERANCE);
        // SGD, lr 0.1, wd 0.5: p1 = 1 - 0.05 - 0.05 = 0.9. Momentum 0.9: v1 = -0.05, p1 = 0.95 - 0.05 = 0.9;
        // v2 = -0.095, p2 = 0.9 (1 - 0.05) - 0.095 = 0.76. Nesterov: p1 = 0.95 + 0.9 (-0.05) - 0.05 = 0.855.
        assertEquals(0.9, steps(new Sgd(0.1, 0, false, 0.5), new float[] {1f}, g1)[0], TOLERANCE);
        assertEquals(0.76, steps(new Sgd(0.1, 0.9, false, 0.5), new float[] {1f}, g1, g1)[0], TOLERANCE);
        assertEquals(0.855, steps(new Sgd(0.1, 0.9, true, 0.5), new float[] {1f}, g1)[0], TOLERANCE);
        // AdamW, lr 1e-2, wd 0.1: the decay is p wd lr whatever the moments; Adam's own step as without it.
        double m1 = 0.1 * 0.5;
        double am1 = 0.001 * 0.25;
        double adamW = 1 * (1 - 1e-3) - 1e-2 * Math.sqrt(1 - 0.999) / (1 - 0.9) * m1 / (Math.sqrt(am1) + 1e-7);
        assertEquals(adamW, steps(new Adam(1e-2, 0.9, 0.999, 1e-7, 0.1), new float[] {1f}, g1)[0], TOLERANCE);
        // Decoupled, not L2: with a zero gradient the moments stay 0 and p moves by exactly p wd lr (an L2 term
        // in the gradient would go through Adam's normalisation and move p by about lr).
        assertEquals(2 - 2 * 0.1 * 1e-2, steps(new Adam(1e-2, 0.9, 0.999, 1e-7, 0.1), new float[] {2f},
                new float[] {0f})[0], TOLERANCE);
    }

    /**
     * A weight decay of 0 leaves the parameter to the update alone, as before weight decay existed: -0 stays -0
     * and an infinity stays infinite under a zero gradient (p - p * 0 * lr would make them +0 and NaN). (SGD
     * with momentum is left out: its own rule, p += velocity with a velocity of +0, makes -0 into +0.)
     */
    @Test
    void aZeroWeightDecayIsNoDecayAtAll() {
        float[] start = {-0f, Float.POSITIVE_INFINITY, 1.5f};
        float[] zero = {0f, 0f, 0f};
        for (Optimizer optimizer : new Optimizer[] {new Adam(), new Sgd(0.1), new RmsProp(),
            new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0)}) {
            float[] after = steps(optimizer, start, zero, zero);
            assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(after[0]), optimizer.id() + " -0");
            assertEquals(Float.POSITIVE_INFINITY, after[1], optimizer.id() + " infinity");
            assertEquals(1.5f, after[2], optimizer.id());
        }
    }

    @Test
    void rmsPropStateIsNamedAsKerasNamesIt() {
        try (RmsProp plain = new RmsProp(); RmsProp full = new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0.004)) {
            plain.build(backend, 3);
            full.build(backend, 3);
            assertEquals(List.of("velocity"), List.copyOf(plain.stateBuffers().keySet()));
            assertEquals(List.of("velocity", "momentum", "average_gradient"), List.copyOf(full.stateBuffers().keySet()));
            assertEquals(Map.of("name", "rmsprop", "learning_rate", 1e-3, "rho", 0.9, "momentum", 0.5, "epsilon", 1e-7,
                    "centered", true, "weight_decay", 0.004), full.config());
            assertEquals(0, full.iterations(), "no update yet");
        }
    }

    /** As Keras's optimizer with a LearningRateSchedule: a scheduled rate is not settable, so no callback moves its peak. */
    @Test
    void aScheduledLearningRateCannotAlsoBeSet() {
        try (Adam adam = new Adam(1e-3)) {
            adam.setLearningRate(2e-3); // without a schedule, as before
            adam.setStepSchedule(StepSchedule.cosineDecay(0, 10, 100, 0));
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> adam.setLearningRate(1e-4));
            assertTrue(e.getMessage().contains("follows its per-step schedule"), e.getMessage());
            assertEquals(2e-3, adam.learningRate(), "the schedule's peak stays");
        }
    }

    /**
     * SGD now counts its updates in an INT32 on the device. At 2^31 - 1 updates the next one wraps the count to
     * -2^31: a warmup then extrapolates to a hugely negative rate (the update climbs the gradient), and the state
     * saves a count that TrainingState.load refuses. Before the count, SGD had no such limit.
     */
    @Test
    void sgdCountDoesNotWrapPast2To31() {
        try (Sgd sgd = new Sgd(0.1);
             Tensor p = backend.fromHost(new float[] {1f}, 1);
             Tensor g = backend.fromHost(new float[] {1f}, 1)) {
            sgd.setStepSchedule(StepSchedule.cosineDecay(0, 10, 0, 0)); // a warmup alone, then 0.1 for ever
            sgd.build(backend, 1);
            sgd.setIterations(Integer.MAX_VALUE);
            sgd.step(p, g); // at 0.1: p = 0.9
            sgd.step(p, g);
            assertTrue(p.toFloatArray()[0] <= 0.9f, "an SGD step went up the gradient: p = " + p.toFloatArray()[0]);
            assertTrue(sgd.iterations() >= 0, "the count after 2^31 updates: " + sgd.iterations());
        }
    }

    @Test
    void rejectsBadHyperParameters() {
        assertThrows(IllegalArgumentException.class, () -> new Adam(0));
        assertThrows(IllegalArgumentException.class, () -> new Adam(1e-3, 1.0, 0.999, 1e-7));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(0.1, 1.0, false));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(-1));
        assertThrows(IllegalArgumentException.class, () -> new RmsProp(0));
        assertThrows(IllegalArgumentException.class, () -> new RmsProp(1e-3, 1.0, 0, 1e-7, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new RmsProp(1e-3, -0.1, 0, 1e-7, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new RmsProp(1e-3, 0.9, 1.0, 1e-7, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new RmsProp(1e-3, 0.9, 0, 0, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new RmsProp(1e-3, 0.9, 0, Double.NaN, false, 0));
        // Values the kernels would see as other floats: 0.99999999 is 1f, 1e39 is infinite, 1e-50 is 0.
        assertThrows(IllegalArgumentException.class, () -> new RmsProp(1e-3, 0.99999999, 0, 1e-7, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new RmsProp(1e-3, 0.9, 0.99999999, 1e-7, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new Adam(1e-3, 0.9, 0.99999999, 1e-7));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(0.1, 0.99999999, false));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(1e39));
        assertThrows(IllegalArgumentException.class, () -> new Adam(1e-50));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(0.1, 0, false, 1e39));
        assertThrows(IllegalArgumentException.class, () -> new Adam(1e-3).setLearningRate(1e39));
        for (double bad : new double[] {-1e-3, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new RmsProp(1e-3, 0.9, 0, 1e-7, false, bad));
            assertTrue(e.getMessage().contains("weight decay"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new Adam(1e-3, 0.9, 0.999, 1e-7, bad));
            assertThrows(IllegalArgumentException.class, () -> new Sgd(0.1, 0, false, bad));
        }
    }
}
