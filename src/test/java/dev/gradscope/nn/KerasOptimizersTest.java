package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.Tensor;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * AMSGrad, Nadam, Adamax, Adagrad and AdamW on the CPU, the reference: two or three steps against each rule as its
 * Javadoc states it (Keras 3's), computed here in double, within {@link Tolerances#F32_OPTIMIZER_STEPS_ABS}.
 */
class KerasOptimizersTest {
    private static final double TOLERANCE = Tolerances.F32_OPTIMIZER_STEPS_ABS;
    /** The gradients of the steps, as floats (their double values enter the expected results). */
    private static final float[] GRADIENTS = {0.5f, -0.2f, 0.3f};
    private final CpuBackend backend = new CpuBackend();

    /** p after {@code steps} steps of {@code optimizer} from p = start, with GRADIENTS in turn. */
    private double after(Optimizer optimizer, float start, int steps) {
        try (Tensor p = backend.fromHost(new float[] {start}, 1); Tensor g = backend.fromHost(new float[1], 1)) {
            optimizer.build(backend, 1);
            for (int t = 0; t < steps; t++) {
                backend.copyFromHost(new float[] {GRADIENTS[t]}, g);
                optimizer.step(p, g);
            }
            optimizer.close();
            return p.toFloatArray()[0];
        }
    }

    @Test
    void amsgradDividesByTheLargestSecondMomentSoFar() {
        // lr 1e-3, beta1 0.9, beta2 0.5, p0 = 1, g = 0.5 then 0.01: v halves at step 2, so AMSGrad divides by
        // sqrt(v1) where Adam divides by sqrt(v2), about sqrt(2) less.
        float[] g = {0.5f, 0.01f};
        double m1 = 0.1 * g[0];
        double v1 = 0.5 * g[0] * g[0];
        double p1 = 1 - 1e-3 * Math.sqrt(1 - 0.5) / (1 - 0.9) * m1 / (Math.sqrt(v1) + 1e-7);
        double m2 = 0.9 * m1 + 0.1 * g[1];
        double v2 = 0.5 * v1 + 0.5 * g[1] * g[1];
        assertTrue(v2 < v1);
        double stepSize2 = 1e-3 * Math.sqrt(1 - 0.5 * 0.5) / (1 - 0.9 * 0.9);
        double amsgrad = p1 - stepSize2 * m2 / (Math.sqrt(Math.max(v1, v2)) + 1e-7);
        double adam = p1 - stepSize2 * m2 / (Math.sqrt(v2) + 1e-7);
        assertEquals(amsgrad, twoSteps(new Adam(1e-3, 0.9, 0.5, 1e-7, 0, true), g), TOLERANCE);
        assertEquals(adam, twoSteps(new Adam(1e-3, 0.9, 0.5, 1e-7, 0), g), TOLERANCE);
        assertTrue(Math.abs(amsgrad - adam) > 100 * TOLERANCE, "the maximum matters here: " + amsgrad + " " + adam);
    }

    private double twoSteps(Optimizer optimizer, float[] g) {
        try (Tensor p = backend.fromHost(new float[] {1f}, 1); Tensor grads = backend.fromHost(new float[1], 1)) {
            optimizer.build(backend, 1);
            for (float gradient : g) {
                backend.copyFromHost(new float[] {gradient}, grads);
                optimizer.step(p, grads);
            }
            optimizer.close();
            return p.toFloatArray()[0];
        }
    }

    /** Keras 3's momentum schedule: u_t = beta1 (1 - 0.5 * 0.96^t). */
    private static double nadamU(int t) {
        return 0.9 * (1 - 0.5 * Math.pow(0.96, t));
    }

    @Test
    void nadamFollowsKeras3sRuleAndKeepsTheScheduleProduct() {
        double p = 1;
        double m = 0;
        double v = 0;
        double product = 1;
        for (int t = 1; t <= 3; t++) {
            double g = GRADIENTS[t - 1];
            product *= nadamU(t);
            double productNext = product * nadamU(t + 1);
            m += (g - m) * 0.1;
            v += (g * g - v) * 0.001;
            double mHat = nadamU(t + 1) * m / (1 - productNext) + (1 - nadamU(t)) * g / (1 - product);
            double vHat = v / (1 - Math.pow(0.999, t));
            p -= 1e-3 * mHat / (Math.sqrt(vHat) + 1e-7);
            assertEquals(p, after(new Nadam(), 1f, t), TOLERANCE, "step " + t);
        }
        // Keras 2's (and the paper's) schedule, 0.96^(0.004 t), gives another first step: the test tells them apart.
        double u1 = 0.9 * (1 - 0.5 * Math.pow(0.96, 0.004));
        double u2 = 0.9 * (1 - 0.5 * Math.pow(0.96, 0.008));
        double keras2 = 1 - 1e-3 * (u2 * 0.05 / (1 - u1 * u2) + (1 - u1) * 0.5 / (1 - u1))
                / (Math.sqrt(0.00025 / 0.001) + 1e-7);
        assertTrue(Math.abs(keras2 - after(new Nadam(), 1f, 1)) > 10 * TOLERANCE);
        // The product is state: after three steps, u_1 u_2 u_3 (in float), and the count 3.
        try (Nadam nadam = new Nadam(); Tensor params = backend.fromHost(new float[] {1f}, 1);
             Tensor g = backend.fromHost(new float[] {0.5f}, 1)) {
            nadam.build(backend, 1);
            assertEquals(Map.of(Nadam.U_PRODUCT, 1f), nadam.stateScalars(), "Keras starts the product at 1");
            for (int t = 0; t < 3; t++) {
                nadam.step(params, g);
            }
            assertEquals(product, nadam.stateScalars().get(Nadam.U_PRODUCT), 1e-6 * product);
            assertEquals(3, nadam.iterations());
        }
    }

    /**
     * Nadam resumed from its buffers, its count and its u_product goes on as the run that never stopped, bit for
     * bit; without the product (left at 1) it does not.
     */
    @Test
    void nadamResumedWithItsProductIsTheUninterruptedRun() {
        float[] start = {1f, -2f, 0.5f};
        float[][] g = {{0.5f, -1f, 2f}, {-0.2f, 0.3f, 0f}, {1f, 1f, -1f}, {0.1f, -0.4f, 0.2f}};
        float[] straight = nadamSteps(start, g, null);
        float[] resumed = nadamSteps(start, g, true);
        float[] productLost = nadamSteps(start, g, false);
        assertArrayEquals(straight, resumed, "resumed with the product");
        assertTrue(straight[0] != productLost[0], "the product matters");
    }

    /** Four Nadam steps; after two, when {@code restoreProduct} is not null, a fresh Nadam takes the state over. */
    private float[] nadamSteps(float[] start, float[][] g, Boolean restoreProduct) {
        try (Tensor p = backend.fromHost(start, start.length);
             Tensor grads = backend.fromHost(new float[start.length], start.length)) {
            Nadam nadam = new Nadam(1e-2);
            nadam.build(backend, start.length);
            for (int t = 0; t < g.length; t++) {
                if (t == 2 && restoreProduct != null) {
                    Map<String, float[]> buffers = new LinkedHashMap<>();
                    nadam.stateBuffers().forEach((name, buffer) -> buffers.put(name, buffer.toFloatArray()));
                    Map<String, Float> scalars = nadam.stateScalars();
                    long count = nadam.iterations();
                    nadam.close();
                    nadam = new Nadam(1e-2);
                    nadam.build(backend, start.length);
                    Nadam fresh = nadam;
                    buffers.forEach((name, values) -> backend.copyFromHost(values, fresh.stateBuffers().get(name)));
                    nadam.setIterations(count);
                    if (restoreProduct) {
                        nadam.setStateScalars(scalars);
                    }
                }
                backend.copyFromHost(g[t], grads);
                nadam.step(p, grads);
            }
            nadam.close();
            return p.toFloatArray();
        }
    }

    @Test
    void adamaxFollowsKeras3sRule() {
        double p = 1;
        double m = 0;
        double u = 0;
        for (int t = 1; t <= 3; t++) {
            double g = GRADIENTS[t - 1];
            m += (g - m) * (1 - 0.9);
            u = Math.max(0.999 * u, Math.abs(g));
            p -= 1e-3 * m / ((1 - Math.pow(0.9, t)) * (u + 1e-7));
            assertEquals(p, after(new Adamax(), 1f, t), TOLERANCE, "step " + t);
        }
    }

    @Test
    void adagradFollowsKeras3sRuleFromItsInitialAccumulator() {
        for (double initial : new double[] {0.1, 0, 2}) {
            double p = 1;
            double accumulator = initial;
            for (int t = 1; t <= 3; t++) {
                double g = GRADIENTS[t - 1];
                accumulator += g * g;
                p -= 1e-2 * g / Math.sqrt(accumulator + 1e-7);
                assertEquals(p, after(new Adagrad(1e-2, initial, 1e-7, 0), 1f, t), TOLERANCE,
                        "initial " + initial + ", step " + t);
            }
        }
        // Keras's defaults: lr 1e-3 and the accumulator from 0.1, so the first step is lr g / sqrt(0.1 + g^2).
        assertEquals(1 - 1e-3 * 0.5 / Math.sqrt(0.1 + 0.25 + 1e-7), after(new Adagrad(), 1f, 1), TOLERANCE);
    }

    /**
     * Keras 3 adds Adagrad's epsilon inside the square root. With gradients near 1 (as in
     * adagradFollowsKeras3sRuleFromItsInitialAccumulator) sqrt(a + eps) and sqrt(a) + eps differ by about 1e-11 in p,
     * far below the tolerance; an accumulator from 0 and a gradient of 1e-4 (g^2 = 1e-8 below eps = 1e-7) tell them
     * apart by a factor of three.
     */
    @Test
    void adagradPutsEpsilonInsideTheSquareRoot() {
        double g = 1e-4f;
        double keras = 1 - 1e-2 * g / Math.sqrt(g * g + 1e-7);
        double pytorchStyle = 1 - 1e-2 * g / (Math.sqrt(g * g) + 1e-7);
        assertTrue(Math.abs(keras - pytorchStyle) > 100 * TOLERANCE);
        try (Tensor p = backend.fromHost(new float[] {1f}, 1); Tensor grads = backend.fromHost(new float[] {1e-4f}, 1)) {
            Adagrad adagrad = new Adagrad(1e-2, 0, 1e-7, 0);
            adagrad.build(backend, 1);
            adagrad.step(p, grads);
            adagrad.close();
            assertEquals(keras, p.toFloatArray()[0], TOLERANCE);
        }
    }

    /**
     * Keras 3's Adamax adds epsilon to u after the maximum, {@code (u + eps)}; PyTorch's adds it to
     * |g| inside it, {@code max(beta2 u, |g| + eps)}. With gradients near 1 the two differ by about 1e-10 in p; a
     * gradient below epsilon, then none, leaves u near 0, where the decayed epsilon (0.999 eps against eps) changes
     * the second step by 1e-3 of itself: 4e-6 at lr 0.1.
     */
    @Test
    void adamaxAddsEpsilonToTheNormOutsideTheMaximum() {
        double g1 = 1e-8f;
        double c2 = 1 - 0.9 * 0.9;
        double p1 = 1 - 0.1 * (0.1 * g1) / (0.1 * (g1 + 1e-7));
        double keras = p1 - 0.1 * (0.09 * g1) / (c2 * (0.999 * g1 + 1e-7));
        double pytorchStyle = p1 - 0.1 * (0.09 * g1) / (c2 * (0.999 * (g1 + 1e-7)));
        assertTrue(Math.abs(keras - pytorchStyle) > 10 * TOLERANCE, keras + " " + pytorchStyle);
        try (Tensor p = backend.fromHost(new float[] {1f}, 1); Tensor grads = backend.fromHost(new float[] {1e-8f}, 1)) {
            Adamax adamax = new Adamax(0.1, 0.9, 0.999, 1e-7, 0);
            adamax.build(backend, 1);
            adamax.step(p, grads);
            backend.copyFromHost(new float[] {0f}, grads);
            adamax.step(p, grads);
            adamax.close();
            assertEquals(keras, p.toFloatArray()[0], TOLERANCE);
        }
    }

    /** Keras 3's decoupled weight decay before each new optimizer's own step: p -= p wd lr, lr 1e-2, wd 0.1. */
    @Test
    void weightDecayShrinksTheParametersBeforeEachUpdate() {
        double decay = 1 - 0.1 * 1e-2;
        // Adagrad: two steps.
        double a1 = 0.1 + 0.25;
        double a2 = a1 + 0.04;
        double p1 = 1 * decay - 1e-2 * 0.5 / Math.sqrt(a1 + 1e-7);
        double p2 = p1 * decay - 1e-2 * (double) -0.2f / Math.sqrt(a2 + 1e-7);
        assertEquals(p2, after(new Adagrad(1e-2, 0.1, 1e-7, 0.1), 1f, 2), TOLERANCE);
        // Adamax, Nadam and AMSGrad: one step each, their own step as without the decay.
        double adamax = decay - 1e-2 * 0.05 / ((1 - 0.9) * (0.5 + 1e-7));
        assertEquals(adamax, after(new Adamax(1e-2, 0.9, 0.999, 1e-7, 0.1), 1f, 1), TOLERANCE);
        double u1 = nadamU(1);
        double u2 = nadamU(2);
        double nadam = decay - 1e-2 * (u2 * 0.05 / (1 - u1 * u2) + (1 - u1) * 0.5 / (1 - u1))
                / (Math.sqrt(0.00025 / 0.001) + 1e-7);
        assertEquals(nadam, after(new Nadam(1e-2, 0.9, 0.999, 1e-7, 0.1), 1f, 1), TOLERANCE);
        double adam = decay - 1e-2 * Math.sqrt(1 - 0.999) / (1 - 0.9) * 0.05 / (Math.sqrt(0.00025) + 1e-7);
        assertEquals(adam, after(new Adam(1e-2, 0.9, 0.999, 1e-7, 0.1, true), 1f, 1), TOLERANCE);
        assertEquals(adam, after(Adam.adamW(1e-2, 0.1, false), 1f, 1), TOLERANCE);
        // Decoupled: a zero gradient moves p by exactly p wd lr.
        for (Optimizer optimizer : List.of(new Nadam(1e-2, 0.9, 0.999, 1e-7, 0.1),
                new Adamax(1e-2, 0.9, 0.999, 1e-7, 0.1), new Adagrad(1e-2, 0.1, 1e-7, 0.1))) {
            try (Tensor p = backend.fromHost(new float[] {2f}, 1); Tensor g = backend.fromHost(new float[1], 1)) {
                optimizer.build(backend, 1);
                optimizer.step(p, g);
                optimizer.close();
                assertEquals(2 - 2 * 0.1 * 1e-2, p.toFloatArray()[0], TOLERANCE, optimizer.id());
            }
        }
    }

    /** A weight decay of 0 is none: -0 stays -0 and an infinity stays infinite under a zero gradient. */
    @Test
    void aZeroWeightDecayIsNoDecayAtAll() {
        for (Optimizer optimizer : List.of(new Nadam(), new Adamax(), new Adagrad(),
                new Adam(1e-3, 0.9, 0.999, 1e-7, 0, true))) {
            try (Tensor p = backend.fromHost(new float[] {-0f, Float.POSITIVE_INFINITY, 1.5f}, 3);
                 Tensor g = backend.fromHost(new float[3], 3)) {
                optimizer.build(backend, 3);
                optimizer.step(p, g);
                optimizer.step(p, g);
                optimizer.close();
                float[] after = p.toFloatArray();
                assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(after[0]), optimizer.id() + " -0");
                assertEquals(Float.POSITIVE_INFINITY, after[1], optimizer.id() + " infinity");
                assertEquals(1.5f, after[2], optimizer.id());
            }
        }
    }

    @Test
    void stateAndConfigAreNamedAsKerasNamesThem() {
        try (Adam amsgrad = new Adam(1e-3, 0.9, 0.999, 1e-7, 0, true); Adam adamW = Adam.adamW(2e-3, 0.004, false);
             Nadam nadam = new Nadam(); Adamax adamax = new Adamax(); Adagrad adagrad = new Adagrad()) {
            for (Optimizer o : List.<Optimizer>of(amsgrad, adamW, nadam, adamax, adagrad)) {
                o.build(backend, 3);
            }
            assertEquals(List.of("m", "v", "v_hat"), List.copyOf(amsgrad.stateBuffers().keySet()));
            assertEquals(List.of("m", "v"), List.copyOf(adamW.stateBuffers().keySet()));
            assertEquals(List.of("momentum", "velocity"), List.copyOf(nadam.stateBuffers().keySet()));
            assertEquals(List.of("momentum", "norm"), List.copyOf(adamax.stateBuffers().keySet()));
            assertEquals(List.of("accumulator"), List.copyOf(adagrad.stateBuffers().keySet()));
            assertArrayEquals(new float[] {0.1f, 0.1f, 0.1f}, adagrad.stateBuffers().get("accumulator").toFloatArray());
            assertEquals(Map.of("name", "adam", "learning_rate", 1e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon", 1e-7,
                    "amsgrad", true, "weight_decay", 0.0), amsgrad.config());
            assertEquals(Map.of("name", "adamw", "learning_rate", 2e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon",
                    1e-7, "amsgrad", false, "weight_decay", 0.004), adamW.config());
            assertEquals(Map.of("name", "nadam", "learning_rate", 1e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon",
                    1e-7, "weight_decay", 0.0), nadam.config());
            assertEquals(Map.of("name", "adamax", "learning_rate", 1e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon",
                    1e-7, "weight_decay", 0.0), adamax.config());
            assertEquals(Map.of("name", "adagrad", "learning_rate", 1e-3, "initial_accumulator_value", 0.1,
                    "epsilon", 1e-7, "weight_decay", 0.0), adagrad.config());
            assertEquals(0, adagrad.iterations(), "no update yet");
            adagrad.setIterations(3); // Adagrad counts its updates, as Keras does, for a per-step schedule
            assertEquals(3, adagrad.iterations());
            assertThrows(IllegalArgumentException.class, () -> adagrad.setIterations(-1));
            assertThrows(IllegalArgumentException.class, () -> adagrad.setStateScalars(Map.of("u_product", 1f)));
            assertThrows(IllegalArgumentException.class, () -> nadam.setStateScalars(Map.of()));
            assertThrows(IllegalArgumentException.class, () -> nadam.setStateScalars(Map.of("u_product", 1.5f)));
            assertEquals(Map.of(), adamax.stateScalars());
        }
    }

    @Test
    void rejectsBadHyperParameters() {
        assertThrows(IllegalArgumentException.class, () -> new Nadam(0));
        assertThrows(IllegalArgumentException.class, () -> new Nadam(1e-3, 1.0, 0.999, 1e-7, 0));
        assertThrows(IllegalArgumentException.class, () -> new Nadam(1e-3, 0.9, 0.99999999, 1e-7, 0));
        assertThrows(IllegalArgumentException.class, () -> new Nadam(1e-3, 0.9, 0.999, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new Adamax(1e-3, -0.1, 0.999, 1e-7, 0));
        assertThrows(IllegalArgumentException.class, () -> new Adamax(1e-3, 0.9, 0.999, Double.NaN, 0));
        assertThrows(IllegalArgumentException.class, () -> new Adagrad(1e39));
        assertThrows(IllegalArgumentException.class, () -> new Adagrad(1e-3, -0.1, 1e-7, 0));
        assertThrows(IllegalArgumentException.class, () -> new Adagrad(1e-3, Double.POSITIVE_INFINITY, 1e-7, 0));
        assertThrows(IllegalArgumentException.class, () -> new Adagrad(1e-3, 0.1, 0, 0));
        for (double bad : new double[] {-1e-3, Double.NaN, 1e39}) {
            assertTrue(assertThrows(IllegalArgumentException.class, () -> new Nadam(1e-3, 0.9, 0.999, 1e-7, bad))
                    .getMessage().contains("weight decay"));
            assertThrows(IllegalArgumentException.class, () -> new Adamax(1e-3, 0.9, 0.999, 1e-7, bad));
            assertThrows(IllegalArgumentException.class, () -> new Adagrad(1e-3, 0.1, 1e-7, bad));
            assertThrows(IllegalArgumentException.class, () -> Adam.adamW(1e-3, bad, true));
        }
    }
}
