package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.History;
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
