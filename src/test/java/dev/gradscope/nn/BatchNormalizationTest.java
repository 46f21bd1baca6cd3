package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The BatchNormalization layer and its ops on the CPU, the reference: Keras's training and inference formulas
 * against closed forms in double, the moving statistics against hand-computed averages, float32 gradient checks,
 * and what a model does with it (summary, weights files, the optimizer, training, the vanishing gradient).
 */
class BatchNormalizationTest {
    private final CpuBackend backend = new CpuBackend();

    @AfterEach
    void close() {
        backend.close();
    }

    /**
     * Columns of different offsets and spreads: {@code x[i][j] = offset_j + spread_j * u} with u uniform in
     * [-1, 1), offsets within +-3 and spreads from 1 to 4 (so a column's std is at least 0.5 for a batch of
     * a few rows and more).
     */
    private static float[] columns(int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[rows * cols];
        for (int j = 0; j < cols; j++) {
            double offset = r.nextDouble(-3, 3);
            double spread = r.nextDouble(1, 4);
            for (int i = 0; i < rows; i++) {
                x[i * cols + j] = (float) (offset + spread * r.nextDouble(-1, 1));
            }
        }
        return x;
    }

    /** Column j's mean and biased variance, in double. */
    private static double[] moments(float[] x, int rows, int cols, int j) {
        double sum = 0;
        for (int i = 0; i < rows; i++) {
            sum += x[i * cols + j];
        }
        double mean = sum / rows;
        double squares = 0;
        for (int i = 0; i < rows; i++) {
            squares += (x[i * cols + j] - mean) * (x[i * cols + j] - mean);
        }
        return new double[] {mean, squares / rows};
    }

    private LayerHarness harness(int units, int rows) {
        LayerHarness h = new LayerHarness(new BatchNormalization(), units, rows, 3, LayerHarness.uniform(1));
        h.training = true;
        return h;
    }

    private void setInput(LayerHarness h, float[] x) {
        System.arraycopy(x, 0, h.input, 0, x.length);
        h.uploadInput();
    }

    /** gamma 1, beta 0: every column of the output is (x - mean) / sqrt(var + 1e-3), so of mean 0 and std ~1. */
    @Test
    void trainingNormalisesEveryColumnWithTheBatchStatistics() {
        int rows = 37;
        int cols = 45;
        try (LayerHarness h = harness(cols, rows)) {
            float[] x = columns(rows, cols, 11);
            setInput(h, x);
            float[] y = h.forward();
            for (int j = 0; j < cols; j++) {
                double[] m = moments(x, rows, cols, j);
                double invStd = 1 / Math.sqrt(m[1] + 1e-3);
                double[] column = new double[rows];
                for (int i = 0; i < rows; i++) {
                    double expected = (x[i * cols + j] - m[0]) * invStd;
                    assertEquals(expected, y[i * cols + j], Tolerances.BATCH_NORM_F32_ABS, "y[" + i + "][" + j + "]");
                    column[i] = y[i * cols + j];
                }
                float[] asFloats = new float[rows];
                for (int i = 0; i < rows; i++) {
                    asFloats[i] = (float) column[i];
                }
                double[] out = moments(asFloats, rows, 1, 0);
                assertEquals(0, out[0], Tolerances.BATCH_NORM_F32_ABS, "column " + j + "'s mean");
                // The biased variance of xhat is var / (var + epsilon): 1 up to epsilon's share.
                assertEquals(m[1] / (m[1] + 1e-3), out[1], 2 * Tolerances.BATCH_NORM_F32_ABS, "column " + j
                        + "'s variance");
            }
        }
    }

    /** gamma and beta scale and shift the normalised columns; the batch's statistics are kept for backward. */
    @Test
    void gammaAndBetaScaleAndShift() {
        int rows = 9;
        int cols = 4;
        try (LayerHarness h = harness(cols, rows)) {
            float[] gamma = {2f, -0.5f, 1.25f, 0f};
            float[] beta = {0.5f, -1f, 0f, 3f};
            System.arraycopy(gamma, 0, h.parameterValues, 0, cols);
            System.arraycopy(beta, 0, h.parameterValues, cols, cols);
            h.uploadParameters();
            float[] x = columns(rows, cols, 12);
            setInput(h, x);
            float[] y = h.forward();
            for (int j = 0; j < cols; j++) {
                double[] m = moments(x, rows, cols, j);
                for (int i = 0; i < rows; i++) {
                    double expected = gamma[j] * (x[i * cols + j] - m[0]) / Math.sqrt(m[1] + 1e-3) + beta[j];
                    assertEquals(expected, y[i * cols + j], 2 * Tolerances.BATCH_NORM_F32_ABS);
                }
            }
        }
    }

    /** Three training batches: moving = moving * 0.99 + batch * 0.01 each time, from 0 and 1, biased variance. */
    @Test
    void movingStatisticsFollowKerasAverageOverSteps() {
        int rows = 16;
        int cols = 7;
        try (LayerHarness h = harness(cols, rows)) {
            double[] mean = new double[cols];
            double[] variance = new double[cols];
            Arrays.fill(variance, 1);
            for (int k = 0; k < 3; k++) {
                float[] x = columns(rows, cols, 20 + k);
                setInput(h, x);
                h.forward();
                for (int j = 0; j < cols; j++) {
                    double[] m = moments(x, rows, cols, j);
                    mean[j] = mean[j] * 0.99 + m[0] * 0.01;
                    variance[j] = variance[j] * 0.99 + m[1] * 0.01;
                }
            }
            float[] state = h.state.toFloatArray();
            for (int j = 0; j < cols; j++) {
                assertEquals(mean[j], state[j], 1e-6, "moving_mean[" + j + "]");
                assertEquals(variance[j], state[cols + j], 1e-6 * variance[j], "moving_variance[" + j + "]");
            }
            // Inference reads the moving statistics and changes nothing.
            h.training = false;
            h.forward();
            assertArrayEquals(state, h.state.toFloatArray());
        }
    }

    /** Inference normalises with the moving statistics, not the batch's: another output than training's. */
    @Test
    void inferenceUsesTheMovingStatistics() {
        int rows = 12;
        int cols = 5;
        try (LayerHarness h = harness(cols, rows)) {
            float[] movingMean = {0.5f, -1f, 2f, 0f, 1.5f};
            float[] movingVariance = {1f, 4f, 0.25f, 2f, 9f};
            float[] state = new float[2 * cols];
            System.arraycopy(movingMean, 0, state, 0, cols);
            System.arraycopy(movingVariance, 0, state, cols, cols);
            h.backend.copyFromHost(state, h.state);
            float[] x = columns(rows, cols, 13);
            setInput(h, x);
            h.training = false;
            float[] inference = h.forward();
            for (int j = 0; j < cols; j++) {
                for (int i = 0; i < rows; i++) {
                    double expected = (x[i * cols + j] - movingMean[j]) / Math.sqrt(movingVariance[j] + 1e-3);
                    assertEquals(expected, inference[i * cols + j], 2 * Tolerances.BATCH_NORM_F32_ABS);
                }
            }
            h.training = true;
            float[] training = h.forward();
            assertFalse(Arrays.equals(inference, training), "training normalises with the batch's statistics");
        }
    }

    /** A batch of one row has variance 0: the output is beta, the input gradient 0, and nothing is NaN. */
    @Test
    void aBatchOfOneRowGivesBetaAndNoNaN() {
        int cols = 6;
        try (LayerHarness h = harness(cols, 1)) {
            for (int j = 0; j < cols; j++) {
                h.parameterValues[j] = 1.5f;              // gamma
                h.parameterValues[cols + j] = j - 2.5f;   // beta
            }
            h.uploadParameters();
            float[] y = h.forward();
            for (int j = 0; j < cols; j++) {
                assertEquals(j - 2.5f, y[j], 0f, "y = beta");
            }
            float[] dx = h.backward();
            for (float v : dx) {
                assertEquals(0f, v, 0f);
            }
            float[] dParams = h.parameterGradients();
            for (int j = 0; j < cols; j++) {
                assertEquals(0f, dParams[j], 0f, "dgamma: xhat is 0");
                assertEquals(h.outputWeights[j], dParams[cols + j], 0f, "dbeta = dy");
            }
            for (float v : h.state.toFloatArray()) {
                assertTrue(Float.isFinite(v));
            }
        }
    }

    /** Central differences of the training pass agree with dx, dgamma and dbeta (the batch statistics' part too). */
    @Test
    void gradientCheckOfTheTrainingPass() {
        int rows = 7;
        int cols = 3;
        try (LayerHarness h = harness(cols, rows)) {
            SplittableRandom r = new SplittableRandom(5);
            for (int j = 0; j < 2 * cols; j++) {
                h.parameterValues[j] = (float) r.nextDouble(-1.5, 1.5);
            }
            h.uploadParameters();
            setInput(h, columns(rows, cols, 14));
            float[] dx = h.backward();
            float[] dParams = h.parameterGradients();
            GradientCheck.check("BatchNormalization dx", h.inputNudger(), dx, h::loss, Tolerances.F32_GRADCHECK_STEP,
                    Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
            GradientCheck.check("BatchNormalization dgamma, dbeta", h.parameterNudger(), dParams, h::loss,
                    Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
        }
    }

    /** The input gradient of every column sums to 0: the batch mean's gradient takes dy's mean away. */
    @Test
    void inputGradientHasZeroColumnSums() {
        int rows = 33;
        int cols = 10;
        try (LayerHarness h = harness(cols, rows)) {
            setInput(h, columns(rows, cols, 15));
            float[] dx = h.backward();
            for (int j = 0; j < cols; j++) {
                double sum = 0;
                double magnitude = 0;
                for (int i = 0; i < rows; i++) {
                    sum += dx[i * cols + j];
                    magnitude += Math.abs(dx[i * cols + j]);
                }
                assertEquals(0, sum, 1e-6 * magnitude, "column " + j);
            }
        }
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new BatchNormalization(1.5, 1e-3f));
        assertThrows(IllegalArgumentException.class, () -> new BatchNormalization(Double.NaN, 1e-3f));
        assertThrows(IllegalArgumentException.class, () -> new BatchNormalization(0.99, 0f));
        IllegalArgumentException maxout = assertThrows(IllegalArgumentException.class,
                () -> Mlp.build(backend, 1, 784, new int[] {8}, 10, Mlp.HiddenUnits.of("maxout"),
                        Initializer.glorotUniform(), 0, true));
        assertTrue(maxout.getMessage().contains("maxout"), maxout.getMessage());
    }

    private Sequential normalized(long seed, int[] hidden, String activation, Optimizer optimizer) {
        return Mlp.build(backend, seed, 784, hidden, 10, Mlp.HiddenUnits.of(activation), Initializer.glorotUniform(),
                0, true).compile(optimizer, Loss.CATEGORICAL_CROSSENTROPY);
    }

    /** Dense (linear) -> BatchNormalization -> Activation per hidden layer; Keras's counts in the summary. */
    @Test
    void layersAndSummaryCountTheMovingStatisticsAsNonTrainable() {
        try (Sequential model = normalized(1, new int[] {64, 32}, "relu", new Adam())) {
            assertEquals(List.of("dense", "batch_normalization", "activation", "dense_1", "batch_normalization_1",
                            "activation_1", "dense_2"),
                    model.layers().stream().map(Layer::name).toList());
            String summary = model.summary();
            // Keras: a BatchNormalization of n units shows 4n params, 2n of them non-trainable.
            // The name and type do not fit the column: the type goes on the next line, as Keras wraps it.
            assertTrue(summary.contains(String.format(java.util.Locale.ROOT, "%-32s%-24s%16s%n(BatchNormalization)%n",
                    "batch_normalization", "(None, 64)", "256")), summary);
            long trainable = 784 * 64 + 64 + 2 * 64 + 64 * 32 + 32 + 2 * 32 + 32 * 10 + 10;
            long nonTrainable = 2 * 64 + 2 * 32;
            assertEquals(trainable, model.parameterCount());
            assertTrue(summary.contains(String.format(java.util.Locale.ROOT, " Total params: %,d", trainable
                    + nonTrainable)), summary);
            assertTrue(summary.contains(String.format(java.util.Locale.ROOT, " Trainable params: %,d", trainable)),
                    summary);
            assertTrue(summary.contains(" Non-trainable params: 192 (768.00 B)"), summary);
            assertEquals(nonTrainable, model.state().size());
            assertEquals(List.of("batch_normalization.moving_mean", "batch_normalization.moving_variance",
                            "batch_normalization_1.moving_mean", "batch_normalization_1.moving_variance"),
                    model.stateGroups().stream().map(WeightsFile::tensorName).toList());
        }
    }

    /** A training step moves the moving statistics; the optimizer's update (weight decay on) never touches them. */
    @Test
    void theOptimizerNeverChangesTheMovingStatistics() {
        Dataset train = MnistSubset.load().train().take(64);
        for (Optimizer optimizer : List.<Optimizer>of(new Sgd(0.1, 0.9, false, 0.5),
                new Adam(1e-2, 0.9, 0.999, 1e-7, 0.5))) {
            try (Sequential model = normalized(2, new int[] {32, 16}, "sigmoid", optimizer);
                 Tensor x = backend.fromHost(train.scaledFeatures(), 64, 784);
                 Tensor t = backend.fromHost(train.oneHotLabels(), 64, 10);
                 Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
                float[] initial = model.state().toFloatArray();
                model.computeGradients(x, t, totals);
                float[] afterForward = model.state().toFloatArray();
                assertFalse(Arrays.equals(initial, afterForward), "the training pass moves the statistics");
                float[] parameters = model.parameters().toFloatArray();
                model.applyGradients();
                assertFalse(Arrays.equals(parameters, model.parameters().toFloatArray()), optimizer.id());
                assertArrayEquals(afterForward, model.state().toFloatArray(), optimizer.id()
                        + " with weight decay changed the moving statistics");
            }
        }
    }

    /**
     * Inference never moves the moving statistics: evaluate and predict leave them as they were, and a fit with
     * validation data ends with the statistics of the same fit without it.
     */
    @Test
    void evaluationPredictionAndValidationLeaveTheMovingStatisticsAlone() {
        Dataset train = MnistSubset.load().train().take(300);
        Dataset test = MnistSubset.load().test().take(100);
        float[][] rows = new float[5][784];
        float[][] afterFit = new float[2][];
        for (int withValidation = 0; withValidation < 2; withValidation++) {
            try (Sequential model = normalized(2, new int[] {32, 16}, "sigmoid", new Adam())) {
                dev.gradscope.train.FitOptions.Builder options = dev.gradscope.train.FitOptions.builder()
                        .batchSize(100).epochs(2).verbose(0);
                if (withValidation == 1) {
                    options.validation(test);
                }
                model.fit(train, options.build());
                afterFit[withValidation] = model.state().toFloatArray();
                model.evaluate(test, 50);
                model.predict(rows, 3);
                assertArrayEquals(afterFit[withValidation], model.state().toFloatArray(),
                        "evaluate and predict moved the moving statistics");
            }
        }
        assertArrayEquals(afterFit[0], afterFit[1], "validation moved the moving statistics");
    }

    /** save_weights then load_weights: the moving statistics come back, and predictions with them. */
    @Test
    void weightsFilesHoldTheMovingStatistics(@TempDir Path dir) {
        Dataset train = MnistSubset.load().train().take(512);
        Dataset test = MnistSubset.load().test().take(200);
        Path file = dir.resolve("bn.safetensors");
        try (Sequential trained = normalized(3, new int[] {32, 16}, "tanh", new Adam());
             Sequential fresh = normalized(4, new int[] {32, 16}, "tanh", new Adam())) {
            trained.fit(train, 64, 1, null);
            trained.saveWeights(file);
            float[] state = trained.state().toFloatArray();
            assertFalse(Arrays.equals(fresh.state().toFloatArray(), state));
            fresh.loadWeights(file);
            assertArrayEquals(state, fresh.state().toFloatArray());
            assertArrayEquals(trained.parameters().toFloatArray(), fresh.parameters().toFloatArray());
            assertEquals(trained.evaluate(test, 100), fresh.evaluate(test, 100));
            try (dev.gradscope.data.SafeTensors.Reader reader = dev.gradscope.data.SafeTensors.open(file)) {
                assertArrayEquals(new int[] {32}, reader.shapes().get("batch_normalization.moving_variance"));
            }
        }
        // A network without batch normalization has none of those tensors, and the other way round.
        try (Sequential plain = Mlp.build(backend, 5, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("tanh"),
                Initializer.glorotUniform())) {
            InvalidDataException e = assertThrows(InvalidDataException.class, () -> plain.loadWeights(file));
            assertTrue(e.getMessage().contains("the model has no tensor batch_normalization.moving_mean"),
                    e.getMessage());
            Path plainFile = dir.resolve("plain.safetensors");
            plain.saveWeights(plainFile);
            try (Sequential normalized = normalized(6, new int[] {32, 16}, "tanh", new Adam())) {
                InvalidDataException back = assertThrows(InvalidDataException.class,
                        () -> normalized.loadWeights(plainFile));
                assertTrue(back.getMessage().contains("no tensor batch_normalization.gamma [32]"), back.getMessage());
            }
        }
    }

    /**
     * Three epochs on the committed MNIST subset (4000 images, 189 steps of 64) with batch normalization learn
     * well above chance (10%). Evaluation normalises with the moving statistics, which after n steps have moved
     * 1 - 0.99^n of the way from their start (0 and 1) to the batches' (85% after 189 steps, 46% after one
     * epoch's 63: a one-epoch run evaluates worse than it trains, in Keras too).
     */
    @Test
    void aNormalisedNetworkLearnsMnist() {
        Dataset train = MnistSubset.load().train();
        Dataset test = MnistSubset.load().test();
        try (Sequential model = normalized(7, new int[] {64, 32}, "relu", new Adam())) {
            model.fit(train, 64, 3, null);
            dev.gradscope.train.Evaluation e = model.evaluate(test, 250);
            assertTrue(e.accuracy() > 0.85, "accuracy " + e.accuracy());
        }
    }

    /**
     * The point of it: in a deep sigmoid MLP (10 hidden layers of 64) the first kernel's gradient is a tiny
     * fraction of the output kernel's; with batch normalization before every sigmoid it is of the same order.
     * Measured at initialisation on one batch of 128 MNIST images: without, the ratio is about 1e-6
     * (sigmoid' <= 1/4 per layer, and Glorot's small weights); with, about 0.1-1. The test asks for a
     * thousandfold gain and a ratio above 1e-2 with batch normalization, far from both measured values.
     */
    @Test
    void batchNormalizationHealsTheVanishingGradientOfADeepSigmoidNet() {
        Dataset data = MnistSubset.load().train().take(128);
        int[] hidden = new int[10];
        Arrays.fill(hidden, 64);
        double without;
        double with;
        try (Sequential plain = Mlp.build(backend, 8, 784, hidden, 10, Mlp.HiddenUnits.of("sigmoid"),
                Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY);
             Sequential normalized = normalized(8, hidden, "sigmoid", new Adam())) {
            without = firstToOutputGradientRatio(plain, data);
            with = firstToOutputGradientRatio(normalized, data);
        }
        assertTrue(without < 1e-4, "without batch normalization: " + without);
        assertTrue(with > 1e-2, "with batch normalization: " + with);
        assertTrue(with / without > 1e3, "with " + with + ", without " + without);
    }

    /** ||dL/dW|| of the first kernel over the output layer's, after one training pass on {@code data}. */
    private double firstToOutputGradientRatio(Sequential model, Dataset data) {
        try (Tensor x = backend.fromHost(data.scaledFeatures(), data.rows(), 784);
             Tensor t = backend.fromHost(data.oneHotLabels(), data.rows(), 10);
             Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
            model.computeGradients(x, t, totals);
            float[] g = model.gradients().toFloatArray();
            List<Sequential.ParameterGroup> kernels = model.parameterGroups().stream()
                    .filter(p -> p.slot().isKernel()).toList();
            return norm(g, kernels.get(0)) / norm(g, kernels.get(kernels.size() - 1));
        }
    }

    private static double norm(float[] all, Sequential.ParameterGroup group) {
        double sum = 0;
        for (int i = group.offset(); i < group.offset() + group.slot().size(); i++) {
            sum += (double) all[i] * all[i];
        }
        return Math.sqrt(sum);
    }
}
