package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.DropoutMask;
import dev.gradscope.tensor.Tensor;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Dropout layer and its ops on the CPU, the reference: Keras's inverted dropout in training, else identity. */
class DropoutTest {
    private static final int ROWS = 256;
    private static final int UNITS = 512;

    private final CpuBackend backend = new CpuBackend();

    @AfterEach
    void close() {
        backend.close();
    }

    private Dropout layer(double rate, long seed, int index) {
        Dropout d = new Dropout(rate);
        d.setName("dropout");
        d.build(UNITS);
        d.place(seed, index);
        d.allocate(backend, ROWS);
        return d;
    }

    private Tensor step(int epoch, int step) {
        return backend.fromHost(new int[] {epoch, step}, 2);
    }

    private static float[] normals(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
            if (x[i] == 0f) {
                x[i] = 1f; // a zero would hide whether it was kept
            }
        }
        return x;
    }

    /** {@code |kept - n keep|} within {@link Tolerances#DROPOUT_BINOMIAL_SIGMAS} deviations of Binomial(n, keep). */
    private static void assertBinomial(String what, long kept, long n, double keep) {
        double mean = n * keep;
        double sd = Math.sqrt(n * keep * (1 - keep));
        double sigmas = Tolerances.DROPOUT_BINOMIAL_SIGMAS;
        assertTrue(Math.abs(kept - mean) <= sigmas * sd, what + ": kept " + kept + " of " + n + ", expected " + mean
                + " +- " + sigmas + " x " + sd);
    }

    @ParameterizedTest(name = "rate {0}")
    @ValueSource(doubles = {0.1, 0.2, 0.5, 0.9})
    void keptFractionIsBinomialAndKeptUnitsAreScaledExactly(double rate) {
        float[] x = normals(ROWS * UNITS, 1);
        float scale = (float) (1 / (1 - rate));
        try (Dropout d = layer(rate, 42, 1); Tensor input = backend.fromHost(x, ROWS, UNITS)) {
            boolean[] firstMask = null;
            long keptInBoth = 0;
            for (int s = 0; s < 3; s++) {
                try (Tensor st = step(0, s)) {
                    float[] y = d.forwardTraining(input, st).toFloatArray();
                    boolean[] mask = new boolean[y.length];
                    long kept = 0;
                    for (int i = 0; i < y.length; i++) {
                        mask[i] = y[i] != 0f;
                        if (mask[i]) {
                            kept++;
                            assertEquals(Float.floatToIntBits(x[i] * scale), Float.floatToIntBits(y[i]),
                                    "element " + i + " is x * 1/(1-rate), bit for bit");
                        }
                    }
                    assertBinomial("rate " + rate + ", step " + s, kept, y.length, 1 - rate);
                    // Columns are units: each keeps about 1 - rate of its examples too (a per-unit bias would not
                    // show in the total).
                    for (int j = 0; j < UNITS; j += 97) {
                        long keptInColumn = 0;
                        for (int r = 0; r < ROWS; r++) {
                            keptInColumn += mask[r * UNITS + j] ? 1 : 0;
                        }
                        assertBinomial("unit " + j + ", step " + s, keptInColumn, ROWS, 1 - rate);
                    }
                    if (firstMask == null) {
                        firstMask = mask;
                    } else if (s == 1) {
                        for (int i = 0; i < mask.length; i++) {
                            keptInBoth += mask[i] && firstMask[i] ? 1 : 0;
                        }
                    }
                }
            }
            // Independent masks from step to step: kept in steps 0 and 1 with probability (1 - rate)^2.
            assertBinomial("rate " + rate + ", kept in two steps", keptInBoth, (long) ROWS * UNITS,
                    (1 - rate) * (1 - rate));
        }
    }

    @Test
    void everyStepLayerAndSeedDrawsItsOwnMaskAndTheSameStepTheSameMask() {
        float[] x = normals(ROWS * UNITS, 2);
        try (Tensor input = backend.fromHost(x, ROWS, UNITS);
             Dropout d = layer(0.5, 42, 1); Dropout otherLayer = layer(0.5, 42, 3);
             Dropout otherSeed = layer(0.5, 43, 1);
             Tensor s00 = step(0, 0); Tensor s01 = step(0, 1); Tensor s10 = step(1, 0)) {
            float[] a = d.forwardTraining(input, s00).toFloatArray();
            assertArrayEquals(a, d.forwardTraining(input, s00).toFloatArray(), "the same step, the same mask");
            for (float[] other : new float[][] {d.forwardTraining(input, s01).toFloatArray(),
                    d.forwardTraining(input, s10).toFloatArray(), otherLayer.forwardTraining(input, s00).toFloatArray(),
                    otherSeed.forwardTraining(input, s00).toFloatArray()}) {
                assertBinomial("agreeing elements", agreeing(a, other), a.length, 0.5);
            }
        }
    }

    /** Elements kept in both or dropped in both. */
    private static long agreeing(float[] a, float[] b) {
        long same = 0;
        for (int i = 0; i < a.length; i++) {
            same += (a[i] != 0f) == (b[i] != 0f) ? 1 : 0;
        }
        return same;
    }

    @Test
    void theMaskIsTheHashAndADroppedNaNIsZero() {
        float[] x = normals(ROWS * UNITS, 3);
        x[5] = Float.NaN;
        x[6] = Float.POSITIVE_INFINITY;
        long key = DropoutMask.streamKey(42, 1);
        long stepKey = DropoutMask.stepKey(key, 2, 7);
        int threshold = DropoutMask.threshold(0.3);
        try (Dropout d = layer(0.3, 42, 1); Tensor input = backend.fromHost(x, ROWS, UNITS); Tensor st = step(2, 7)) {
            assertEquals(key, d.streamKey());
            float[] y = d.forwardTraining(input, st).toFloatArray();
            for (int i = 0; i < y.length; i++) {
                boolean kept = DropoutMask.bits(stepKey, i) >= threshold;
                assertEquals(kept ? x[i] * (float) (1 / (1 - 0.3)) : 0f, y[i], "element " + i);
            }
        }
    }

    @Test
    void backwardPassesTheGradientThroughTheForwardPassesMask() {
        float[] x = normals(ROWS * UNITS, 4);
        float[] dy = normals(ROWS * UNITS, 5);
        try (Dropout d = layer(0.25, 9, 3); Tensor input = backend.fromHost(x, ROWS, UNITS);
             Tensor gradient = backend.fromHost(dy, ROWS, UNITS); Tensor st = step(4, 11)) {
            float[] y = d.forwardTraining(input, st).toFloatArray();
            float[] dx = d.backward(gradient, true).toFloatArray();
            for (int i = 0; i < y.length; i++) {
                assertEquals(y[i] == 0f ? 0f : dy[i] * (4f / 3f), dx[i], "element " + i);
            }
            assertNull(d.backward(gradient, false), "the first layer's input gradient is not needed");
        }
    }

    @Test
    void inferenceAndRateZeroAreTheIdentity() {
        float[] x = normals(ROWS * UNITS, 6);
        try (Dropout d = layer(0.5, 1, 1); Dropout none = layer(0, 1, 1);
             Tensor input = backend.fromHost(x, ROWS, UNITS);
             Tensor st = step(0, 0)) {
            assertSame(input, d.forward(input), "inference: the input itself, no op");
            assertArrayEquals(x, input.toFloatArray());
            assertSame(input, none.forwardTraining(input, st), "rate 0 in training: the input itself");
            assertSame(input, none.backward(input, true));
            try (Tensor out = backend.allocate(DType.FLOAT32, ROWS, UNITS)) {
                backend.dropoutForward(input, 0, 5, st, out);
                assertArrayEquals(x, out.toFloatArray(), "the op at rate 0 keeps every element, unscaled");
            }
        }
    }

    @Test
    void ratesOfOneNanOrBelowZeroAreRefused() {
        for (double rate : new double[] {1, Double.NaN, -0.1, 1.5, Math.nextDown(1.0)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Dropout(rate));
            assertEquals("Dropout: rate must be in [0, 1) (1 would drop every unit), got " + rate, e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Mlp.build(backend, 1, 4,
                new int[] {3}, 2, Mlp.HiddenUnits.of("relu"), Initializer.glorotUniform(), Double.NaN));
        assertTrue(e.getMessage().contains("got NaN"), e.getMessage());
        try (Tensor in = backend.allocate(DType.FLOAT32, 2, 2); Tensor bad = backend.allocate(DType.FLOAT32, 2)) {
            assertEquals("dropoutForward: rate must be in [0, 1), got 1.0", assertThrows(IllegalArgumentException.class,
                    () -> backend.dropoutForward(in, 1, 0, bad, in)).getMessage());
            assertEquals("dropoutBackward: step must be INT32, got FLOAT32", assertThrows(
                    IllegalArgumentException.class, () -> backend.dropoutBackward(in, 0.5, 0, bad, in)).getMessage());
        }
    }

    /** The layer's input gradient against central differences of {@code sum(w * dropout(x))}, the mask fixed. */
    @Test
    void gradientCheckWithTheMaskFixed() {
        int rows = 4;
        int units = 7;
        float[] x = normals(rows * units, 7);
        float[] w = normals(rows * units, 8);
        Dropout d = new Dropout(0.4);
        d.setName("dropout");
        d.build(units);
        d.place(3, 2);
        d.allocate(backend, rows);
        try (d; Tensor input = backend.fromHost(x, rows, units); Tensor weights = backend.fromHost(w, rows, units);
             Tensor st = step(1, 2)) {
            d.forwardTraining(input, st);
            float[] analytic = d.backward(weights, true).toFloatArray();
            GradientCheck.check("dropout input", GradientCheck.hostMirror(x, () -> backend.copyFromHost(x, input)),
                    analytic, () -> {
                        float[] y = d.forwardTraining(input, st).toFloatArray();
                        double sum = 0;
                        for (int i = 0; i < y.length; i++) {
                            sum += (double) w[i] * y[i];
                        }
                        return sum;
                    }, Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
            long dropped = 0;
            for (float g : analytic) {
                dropped += g == 0f ? 1 : 0;
            }
            assertTrue(dropped > 0 && dropped < analytic.length, "the check saw kept and dropped units: " + dropped);
        }
    }

    /**
     * Every parameter of an MLP with dropout: the training loss of {@link Sequential#computeGradients} (the masks of
     * its fixed first step) against central differences.
     */
    @Test
    void everyParameterOfAnMlpWithDropout() {
        int features = 6;
        int classes = 3;
        int batch = 8;
        float[] x = normals(batch * features, 10);
        float[] y = new float[batch * classes];
        for (int b = 0; b < batch; b++) {
            y[b * classes + b % classes] = 1f;
        }
        try (Sequential model = Mlp.build(backend, 3, features, new int[] {5, 4}, classes, Mlp.HiddenUnits.of("tanh"),
                Initializer.parse("glorot_uniform:1.5"), 0.3).compile(new Sgd(0.1), Loss.CATEGORICAL_CROSSENTROPY);
             Tensor xs = backend.fromHost(x, batch, features); Tensor ys = backend.fromHost(y, batch, classes);
             Tensor totals = backend.allocate(DType.FLOAT32, 2);
             Tensor step = backend.fromHost(new int[] {2, 5}, 2)) { // one step's masks, the same in every pass
            model.computeGradients(xs, ys, totals, step);
            float[] analytic = model.gradients().toFloatArray();
            float[] parameters = model.parameters().toFloatArray();
            GradientCheck.check("tanh MLP with dropout 0.3",
                    GradientCheck.hostMirror(parameters, () -> backend.copyFromHost(parameters, model.parameters())),
                    analytic, () -> {
                        backend.fill(totals, 0f);
                        model.computeGradients(xs, ys, totals, step);
                        return totals.toFloatArray()[0] / (double) batch;
                    }, Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
        }
    }

    @Test
    void summaryShowsDropoutWithNoParametersAndTheWeightsAreTheModelsWithout() {
        try (Sequential with = Mlp.build(backend, 5, 784, new int[] {512, 512}, 10, Mlp.HiddenUnits.of("relu"),
                Initializer.glorotUniform(), 0.2);
             Sequential without = Mlp.build(backend, 5, 784, new int[] {512, 512}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform())) {
            String summary = with.summary();
            assertTrue(summary.contains(String.format("%-32s%-24s%16d%n", "dropout (Dropout)", "(None, 512)", 0)),
                    summary);
            assertTrue(summary.contains("dropout_1 (Dropout)"), summary);
            assertTrue(summary.contains(" Total params: 669,706"), "Keras's count for its MNIST MLP: " + summary);
            assertEquals(5, with.layers().size());
            assertEquals(without.parameterCount(), with.parameterCount());
            assertArrayEquals(without.parameters().toFloatArray(), with.parameters().toFloatArray(),
                    "Dropout draws nothing from the model's random stream");
            assertEquals(WeightsFile.architecture(without), WeightsFile.architecture(with), "the same tensor names");
        }
    }

    /** Evaluation and prediction never drop: the same numbers twice, and those of the model without dropout. */
    @Test
    void evaluateAndPredictAreDeterministicAndDropNothing() {
        Dataset test = MnistSubset.load().test().take(300);
        float[] pixels = test.scaledFeatures();
        float[][] rows = new float[50][];
        for (int r = 0; r < rows.length; r++) {
            rows[r] = java.util.Arrays.copyOfRange(pixels, r * 784, (r + 1) * 784);
        }
        try (Sequential with = Mlp.build(backend, 5, 784, new int[] {64, 32}, 10, Mlp.HiddenUnits.of("relu"),
                Initializer.glorotUniform(), 0.5).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY);
             Sequential without = Mlp.build(backend, 5, 784, new int[] {64, 32}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            assertEquals(with.evaluate(test, 128), with.evaluate(test, 128));
            assertEquals(without.evaluate(test, 128), with.evaluate(test, 128));
            float[][] first = with.predict(rows, 16);
            assertArrayEquals(first, with.predict(rows, 16));
            assertArrayEquals(without.predict(rows, 16), first);
            // A training step does drop: its loss differs from the evaluation's on the same batch.
            try (Tensor x = backend.fromHost(flat(rows), rows.length, 784);
                 Tensor t = backend.fromHost(java.util.Arrays.copyOf(test.oneHotLabels(), rows.length * 10),
                         rows.length, 10);
                 Tensor trained = backend.allocate(DType.FLOAT32, 2);
                 Tensor evaluated = backend.allocate(DType.FLOAT32, 2);
                 Tensor step = backend.fromHost(new int[] {0, 0}, 2)) {
                IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                        () -> with.computeGradients(x, t, trained));
                assertTrue(e.getMessage().contains("dropout draws its mask from the training step"), e.getMessage());
                with.computeGradients(x, t, trained, step);
                with.accumulateLoss(x, t, evaluated);
                assertFalse(trained.toFloatArray()[0] == evaluated.toFloatArray()[0]);
            }
        }
    }

    private static float[] flat(float[][] rows) {
        float[] flat = new float[rows.length * rows[0].length];
        for (int r = 0; r < rows.length; r++) {
            System.arraycopy(rows[r], 0, flat, r * rows[r].length, rows[r].length);
        }
        return flat;
    }
}
