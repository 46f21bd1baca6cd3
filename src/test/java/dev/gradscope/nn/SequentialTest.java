package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.History;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class SequentialTest {
    private static final Mnist MNIST = MnistSubset.load();

    private static Sequential chapterModel(CpuBackend backend, long seed) {
        return Mlp.build(backend, seed, 784, Mlp.CHAPTER_HIDDEN, 10, Mlp.HiddenUnits.of("relu"),
                Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY, "accuracy");
    }

    @Test
    void summaryListsLayersShapesAndParameterCountsAsKeras() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = chapterModel(backend, 1)) {
            String summary = model.summary();
            // 784*512+512, 512*256+256, 256*128+128, 128*64+64, 64*10+10.
            assertTrue(summary.contains("dense (Dense)") && summary.contains("dense_4 (Dense)"), summary);
            assertTrue(summary.contains("(None, 512)") && summary.contains("(None, 10)"), summary);
            assertTrue(summary.contains("401,920") && summary.contains("650"), summary);
            assertTrue(summary.contains("Total params: 575,050"), summary);
            assertEquals(575_050, model.parameterCount());
        }
    }

    /**
     * A watched layer adds its unit statistics in its own backward pass: what accumulateUnitStatistics
     * computes from the layer's last activity, for a Dense activation, an ActivationLayer after a linear
     * Dense, and a learned PReLU as the first layer (whose input gradient is never needed); unwatched, the
     * accumulator is left alone. Maxout and the output layer cannot be watched this way.
     */
    @Test
    void watchedLayersAddTheirUnitStatisticsInTheirBackwardPass() {
        try (CpuBackend backend = new CpuBackend();
             Sequential model = new Sequential(backend, 5).input(6)
                     .add(new PReLU(true))
                     .add(new Dense(5, ActivationKind.SIGMOID))
                     .add(new Dense(4))
                     .add(new ActivationLayer(ActivationKind.TANH))
                     .add(new Maxout(3, 2))
                     .add(new Dense(3, ActivationKind.SOFTMAX))
                     .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            model.build(6);
            model.reserveBatch(4);
            float[] xs = new float[4 * 6];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = (float) Math.sin(1.7 * i) * 2;
            }
            float[] ts = new float[4 * 3];
            for (int r = 0; r < 4; r++) {
                ts[r * 3 + r % 3] = 1f;
            }
            List<Layer> layers = model.layers();
            int[] watchable = {0, 1, 3};
            try (Tensor x = backend.fromHost(xs, 4, 6);
                 Tensor targets = backend.fromHost(ts, 4, 3);
                 Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
                Tensor[] watched = new Tensor[layers.size()];
                for (int i : watchable) {
                    watched[i] = backend.allocate(DType.FLOAT32, 4, layers.get(i).outputUnits());
                    assertTrue(layers.get(i).watchUnits(watched[i], 0.05f), layers.get(i).name());
                }
                try (Tensor maxoutStatistics = backend.allocate(DType.FLOAT32, 4, 3)) {
                    assertFalse(layers.get(4).watchUnits(maxoutStatistics, 0.05f), "maxout");
                    assertFalse(layers.get(2).watchUnits(maxoutStatistics, 0.05f), "a linear Dense");
                    assertFalse(layers.get(5).watchUnits(maxoutStatistics, 0.05f), "the softmax output");
                }
                model.computeGradients(x, targets, totals);
                for (int i : watchable) {
                    Layer.Activity a = layers.get(i).lastActivity();
                    try (Tensor want = backend.allocate(DType.FLOAT32, 4, layers.get(i).outputUnits())) {
                        backend.accumulateUnitStatistics(a.kind(), a.z(), a.param(), a.y(), 0.05f, want);
                        assertArrayEquals(want.toFloatArray(), watched[i].toFloatArray(), layers.get(i).name());
                    }
                    layers.get(i).watchUnits(null, 0f);
                }
                float[][] before = new float[layers.size()][];
                for (int i : watchable) {
                    before[i] = watched[i].toFloatArray();
                }
                model.computeGradients(x, targets, totals);
                for (int i : watchable) {
                    assertArrayEquals(before[i], watched[i].toFloatArray(), layers.get(i).name() + " unwatched");
                    watched[i].close();
                }
            }
        }
    }

    @Test
    void predictGivesProbabilityRows() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = chapterModel(backend, 1)) {
            float[][] x = new float[3][784];
            x[1][100] = 1f;
            float[][] p = model.predict(x, 2);
            assertEquals(3, p.length);
            for (float[] row : p) {
                double sum = 0;
                for (float v : row) {
                    assertTrue(v >= 0 && v <= 1);
                    sum += v;
                }
                assertEquals(1.0, sum, 1e-5);
            }
            assertArrayEquals(p[0], p[2], "same input, same output");
        }
    }

    @Test
    void sameSeedSameRunDifferentSeedDifferentRun() {
        FitOptions options = FitOptions.builder().batchSize(128).epochs(1).verbose(0).build();
        List<Double> first;
        List<Double> second;
        List<Double> other;
        try (CpuBackend backend = new CpuBackend()) {
            try (Sequential a = chapterModel(backend, 7)) {
                first = a.fit(MNIST.train().take(1000), options).get("loss");
            }
            try (Sequential b = chapterModel(backend, 7)) {
                second = b.fit(MNIST.train().take(1000), options).get("loss");
            }
            try (Sequential c = chapterModel(backend, 8)) {
                other = c.fit(MNIST.train().take(1000), options).get("loss");
            }
        }
        assertEquals(first, second);
        assertTrue(!first.equals(other), "a different seed gives a different run");
    }

    @Test
    void historyHasKerasKeysPerEpoch() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = chapterModel(backend, 3)) {
            History h = model.fit(MNIST.train().take(512), FitOptions.builder().batchSize(256).epochs(2)
                    .validation(MNIST.test().take(300)).verbose(0).build());
            assertEquals(List.of("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"),
                    List.copyOf(h.metrics().keySet()));
            for (String key : h.metrics().keySet()) {
                assertEquals(2, h.get(key).size(), key);
            }
            assertEquals(h.last("val_loss"), model.evaluate(MNIST.test().take(300), 100).loss(), 1e-5);
        }
    }

    /**
     * Label smoothing 0.1 over 10 classes (targets 0.91 and 0.01): a short run learns (its loss falls), and its
     * loss and val_loss are the cross-entropy of the smoothed targets, as Keras logs them: val_loss is what the
     * model's logits give against those targets, computed here in double, and evaluate reports the same. That
     * loss never falls below the targets' own entropy (Gibbs' inequality), about 0.5003, which the one-hot loss
     * of a trained model is far below. The accuracy still counts the labels.
     */
    @Test
    void labelSmoothingTrainsOnAndReportsTheSmoothedLoss() {
        Dataset train = MNIST.train().take(1000);
        Dataset test = MNIST.test().take(300);
        double entropy = -(0.91 * Math.log(0.91) + 9 * 0.01 * Math.log(0.01));
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, 3, 784, new int[] {64, 32}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY, 0.1, "accuracy")) {
            assertEquals(0.1, model.labelSmoothing());
            History h = model.fit(train, FitOptions.builder().batchSize(100).epochs(4).validation(test).verbose(0)
                    .build());
            List<Double> loss = h.get("loss");
            for (int e = 1; e < loss.size(); e++) {
                assertTrue(loss.get(e) < loss.get(e - 1), "loss falls every epoch: " + loss);
            }
            assertTrue(h.last("val_accuracy") > 0.6, "it learns (from 0.1 by chance): " + h.get("val_accuracy"));
            for (String metric : List.of("loss", "val_loss")) {
                for (double value : h.get(metric)) {
                    assertTrue(value > entropy, metric + " " + value + " is at least the entropy " + entropy);
                }
            }

            float[] pixels = test.scaledFeatures();
            float[][] rows = new float[test.rows()][];
            for (int r = 0; r < rows.length; r++) {
                rows[r] = Arrays.copyOfRange(pixels, r * 784, (r + 1) * 784);
            }
            float[][] logits = model.predictLogits(rows, 100);
            double smoothed = 0;
            double oneHot = 0;
            int correct = 0;
            for (int r = 0; r < rows.length; r++) {
                double max = Double.NEGATIVE_INFINITY;
                int argMax = 0;
                for (int c = 0; c < 10; c++) {
                    if (logits[r][c] > max) {
                        max = logits[r][c];
                        argMax = c;
                    }
                }
                double sum = 0;
                for (int c = 0; c < 10; c++) {
                    sum += Math.exp(logits[r][c] - max);
                }
                double logSumExp = max + Math.log(sum);
                for (int c = 0; c < 10; c++) {
                    double target = c == test.label(r) ? 0.91 : 0.01;
                    smoothed -= target * (logits[r][c] - logSumExp);
                }
                oneHot -= logits[r][test.label(r)] - logSumExp;
                correct += argMax == test.label(r) ? 1 : 0;
            }
            smoothed /= rows.length;
            oneHot /= rows.length;
            assertEquals(smoothed, h.last("val_loss"), Tolerances.CPU_LOGGED_LOSS_REL * smoothed);
            assertEquals(smoothed, model.evaluate(test, 100).loss(), Tolerances.CPU_LOGGED_LOSS_REL * smoothed);
            assertTrue(smoothed - oneHot > 0.2, "smoothed " + smoothed + " against one-hot " + oneHot);
            assertEquals((double) correct / rows.length, h.last("val_accuracy"), 1e-12);
        }
    }

    @Test
    void compileRefusesABadLabelSmoothing() {
        try (CpuBackend backend = new CpuBackend()) {
            Sequential model = new Sequential(backend, 1).add(new Dense(3, ActivationKind.SOFTMAX));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.compile(new Adam(), Loss.MEAN_SQUARED_ERROR, 0.1, "accuracy"));
            assertTrue(e.getMessage().contains("mse"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> model.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY, 1.0));
            assertTrue(e.getMessage().contains("[0, 1)"), e.getMessage());
            assertEquals(0, model.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).labelSmoothing());
        }
    }

    @Test
    void lastSmallerBatchIsTrainedToo() {
        // 300 rows with batch 256: the second step has 44 rows; its examples count in the epoch's loss.
        try (CpuBackend backend = new CpuBackend(); Sequential model = chapterModel(backend, 3)) {
            History h = model.fit(MNIST.train().take(300), FitOptions.builder().batchSize(256).epochs(1)
                    .verbose(0).build());
            double correct = h.last("accuracy") * 300;
            assertEquals(Math.rint(correct), correct, 1e-6, "accuracy is a count over all 300 rows");
            assertEquals(2, ((Adam) model.optimizer()).iterations());
        }
    }

    @Test
    void clearErrorsForMisuse() {
        try (CpuBackend backend = new CpuBackend()) {
            Sequential noSoftmax = new Sequential(backend, 1).add(new Dense(4, "relu"));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> noSoftmax.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY));
            assertTrue(e.getMessage().contains("softmax"), e.getMessage());
            Sequential model = new Sequential(backend, 1).add(new Dense(3, ActivationKind.SOFTMAX));
            e = assertThrows(IllegalArgumentException.class,
                    () -> model.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY, "precision"));
            assertTrue(e.getMessage().contains("precision"), e.getMessage());
            model.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY);
            e = assertThrows(IllegalArgumentException.class, () -> model.fit(MNIST.train().take(10), 4, 1, null));
            assertTrue(e.getMessage().contains("10 classes") && e.getMessage().contains("3 units"), e.getMessage());
        }
    }
}
