package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.Tensor;
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
    void rejectsBadHyperParameters() {
        assertThrows(IllegalArgumentException.class, () -> new Adam(0));
        assertThrows(IllegalArgumentException.class, () -> new Adam(1e-3, 1.0, 0.999, 1e-7));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(0.1, 1.0, false));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(-1));
    }
}
