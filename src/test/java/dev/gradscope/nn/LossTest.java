package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class LossTest {
    private static final int BATCH = 4;
    private static final int CLASSES = 5;
    private final CpuBackend backend = new CpuBackend();

    /** Runs the loss and returns {summed loss, correct count}; writes dLogits into {@code gradient}. */
    private float[] run(Loss loss, float[] logits, float[] targets, int rows, int cols, float scale, float[] gradient) {
        try (Tensor z = backend.fromHost(logits, rows, cols);
             Tensor t = backend.fromHost(targets, rows, cols);
             Tensor d = backend.allocate(DType.FLOAT32, rows, cols);
             Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
            loss.apply(backend, z, t, scale, d, totals);
            if (gradient != null) {
                System.arraycopy(d.toFloatArray(), 0, gradient, 0, gradient.length);
            }
            return totals.toFloatArray();
        }
    }

    private static float[] oneHot(int rows, int cols, int... labels) {
        float[] t = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            t[r * cols + labels[r]] = 1f;
        }
        return t;
    }

    @Test
    void crossEntropyMatchesHandComputedValues() {
        // Row 0: logits (0, ln 3) -> p = (1/4, 3/4); label 1 -> loss -ln(3/4), correct.
        // Row 1: logits (2, 2)    -> p = (1/2, 1/2); label 1 -> loss ln 2, arg-max 0 (first) is wrong.
        float[] logits = {0f, (float) Math.log(3), 2f, 2f};
        float[] grad = new float[4];
        float[] totals = run(Loss.CATEGORICAL_CROSSENTROPY, logits, oneHot(2, 2, 1, 1), 2, 2, 0.5f, grad);
        assertEquals(-Math.log(0.75) + Math.log(2), totals[0], 1e-6);
        assertEquals(1f, totals[1]);
        // dL/dz = (p - t) * scale.
        float[] expected = {0.25f * 0.5f, -0.25f * 0.5f, 0.5f * 0.5f, -0.5f * 0.5f};
        for (int i = 0; i < 4; i++) {
            assertEquals(expected[i], grad[i], 1e-7, "dLogits[" + i + "]");
        }
    }

    /**
     * Label smoothing 0.2 over 2 classes: the targets Dataset builds for label 1 are (0.1, 0.9). Row 0: logits
     * (0, ln 3) -> p = (1/4, 3/4): loss -(0.1 ln(1/4) + 0.9 ln(3/4)), gradient p - t = (0.15, -0.15). Row 1: logits
     * (ln 4, 0) -> p = (4/5, 1/5): loss -(0.1 ln(4/5) + 0.9 ln(1/5)), gradient (0.7, -0.7), arg-max 0 is wrong.
     */
    @Test
    void crossEntropyOfSmoothedTargetsMatchesHandComputedValues() {
        float[] targets = labels(2, 1, 1).oneHotLabels(0.2);
        assertArrayEquals(new float[] {0.1f, 0.9f, 0.1f, 0.9f}, targets);
        float[] logits = {0f, (float) Math.log(3), (float) Math.log(4), 0f};
        float[] grad = new float[4];
        float[] totals = run(Loss.CATEGORICAL_CROSSENTROPY, logits, targets, 2, 2, 0.5f, grad);
        double row0 = -(0.1 * Math.log(0.25) + 0.9 * Math.log(0.75));
        double row1 = -(0.1 * Math.log(0.8) + 0.9 * Math.log(0.2));
        assertEquals(row0 + row1, totals[0], 1e-6);
        assertEquals(1f, totals[1], "row 0 right, row 1 wrong: smoothing keeps the label the targets' arg-max");
        float[] expected = {0.15f * 0.5f, -0.15f * 0.5f, 0.7f * 0.5f, -0.7f * 0.5f};
        for (int i = 0; i < 4; i++) {
            assertEquals(expected[i], grad[i], 1e-7, "dLogits[" + i + "]");
        }
    }

    /** The gradient of the loss of smoothed targets (0.1 over 5 classes) against central differences. */
    @Test
    void gradientCheckOfLogitsWithSmoothedTargets() {
        SplittableRandom random = new SplittableRandom(11);
        float[] logits = new float[BATCH * CLASSES];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) random.nextDouble(-3, 3);
        }
        float[] targets = labels(CLASSES, 0, 3, 4, 1).oneHotLabels(0.1);
        float scale = 1f / BATCH;
        float[] grad = new float[logits.length];
        run(Loss.CATEGORICAL_CROSSENTROPY, logits, targets, BATCH, CLASSES, scale, grad);
        GradientCheck.check("smoothed crossentropy logits", GradientCheck.hostMirror(logits, () -> { }), grad,
                () -> run(Loss.CATEGORICAL_CROSSENTROPY, logits, targets, BATCH, CLASSES, scale, null)[0]
                        * (double) scale,
                Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
    }

    @Test
    void labelSmoothingIsCheckedForTheLoss() {
        Loss.CATEGORICAL_CROSSENTROPY.requireLabelSmoothing(0);
        Loss.CATEGORICAL_CROSSENTROPY.requireLabelSmoothing(0.999);
        Loss.MEAN_SQUARED_ERROR.requireLabelSmoothing(0);
        for (double bad : new double[] {-0.1, 1, 0.99999999, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Loss.CATEGORICAL_CROSSENTROPY.requireLabelSmoothing(bad));
            assertTrue(e.getMessage().contains("[0, 1)") && e.getMessage().contains(String.valueOf(bad)),
                    e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Loss.MEAN_SQUARED_ERROR.requireLabelSmoothing(0.1));
        assertTrue(e.getMessage().contains("categorical_crossentropy") && e.getMessage().contains("mse"),
                e.getMessage());
    }

    /** A dataset of one pixel per row and these labels, for its targets. */
    private static Dataset labels(int classes, int... labels) {
        return new Dataset("labels", new byte[labels.length], labels, 1, classes, 1f);
    }

    @Test
    void meanSquaredErrorMatchesHandComputedValues() {
        // logits (0, ln 3): p = (1/4, 3/4), target (0, 1): loss = ((1/4)^2 + (1/4)^2) / 2 = 1/16.
        float[] grad = new float[2];
        float[] totals = run(Loss.MEAN_SQUARED_ERROR, new float[] {0f, (float) Math.log(3)}, new float[] {0f, 1f}, 1,
                2, 1f, grad);
        assertEquals(1.0 / 16, totals[0], 1e-7);
        // dL/dp = 2(p - t)/C = (1/4, -1/4); dL/dz_c = p_c (g_c - sum_j g_j p_j), sum = 1/16 - 3/16 = -1/8.
        assertEquals(0.25 * (0.25 + 0.125), grad[0], 1e-7);
        assertEquals(0.75 * (-0.25 + 0.125), grad[1], 1e-7);
    }

    @ParameterizedTest
    @EnumSource(Loss.class)
    void gradientCheckOfLogits(Loss loss) {
        SplittableRandom random = new SplittableRandom(5);
        float[] logits = new float[BATCH * CLASSES];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) random.nextDouble(-3, 3);
        }
        float[] targets = oneHot(BATCH, CLASSES, 0, 3, 4, 1);
        targets[0] = 0.7f; // a soft target row too: (0.7, 0.3, 0, 0, 0)
        targets[1] = 0.3f;
        float scale = 1f / BATCH;
        float[] grad = new float[logits.length];
        run(loss, logits, targets, BATCH, CLASSES, scale, grad);
        GradientCheck.check(loss.id() + " logits", GradientCheck.hostMirror(logits, () -> { }), grad,
                () -> run(loss, logits, targets, BATCH, CLASSES, scale, null)[0] * (double) scale,
                Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
    }

    @ParameterizedTest
    @EnumSource(Loss.class)
    void extremeLogitsStayFinite(Loss loss) {
        float[] logits = {1000f, -1000f, 0f, -1000f, 1000f, 0f};
        float[] grad = new float[6];
        float[] totals = run(loss, logits, oneHot(2, 3, 1, 1), 2, 3, 0.5f, grad);
        assertTrue(Float.isFinite(totals[0]), "loss " + totals[0]);
        for (float g : grad) {
            assertTrue(Float.isFinite(g), "gradient " + g);
        }
        if (loss == Loss.CATEGORICAL_CROSSENTROPY) {
            assertEquals(2000.0, totals[0], 1e-3, "row 0 puts all mass on the wrong class: loss 2000");
        }
    }

    @Test
    void lossesAccumulateAcrossCalls() {
        float[] logits = {1f, 2f};
        float[] target = {0f, 1f};
        try (Tensor z = backend.fromHost(logits, 1, 2);
             Tensor t = backend.fromHost(target, 1, 2);
             Tensor d = backend.allocate(DType.FLOAT32, 1, 2);
             Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
            Loss.CATEGORICAL_CROSSENTROPY.apply(backend, z, t, 1f, d, totals);
            float once = totals.toFloatArray()[0];
            Loss.CATEGORICAL_CROSSENTROPY.apply(backend, z, t, 1f, d, totals);
            assertEquals(2 * once, totals.toFloatArray()[0], 1e-6);
            assertEquals(2f, totals.toFloatArray()[1]);
        }
    }

    @Test
    void lookupByIdAndAlias() {
        assertEquals(Loss.CATEGORICAL_CROSSENTROPY, Loss.fromId("categorical_crossentropy"));
        assertEquals(Loss.MEAN_SQUARED_ERROR, Loss.fromId("MSE"));
        assertEquals(Loss.MEAN_SQUARED_ERROR, Loss.fromId("mean_squared_error"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Loss.fromId("hinge"));
        assertTrue(e.getMessage().contains("hinge") && e.getMessage().contains("mse"), e.getMessage());
    }
}
