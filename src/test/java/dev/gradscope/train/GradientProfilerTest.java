package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Dense;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import dev.gradscope.tensor.ActivationKind;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every profiler statistic against a value computed independently on the host. */
class GradientProfilerTest {
    private static final Mnist MNIST = MnistSubset.load();
    private static final double TOLERANCE = 1e-5;

    /** 4 examples of 3 features, 2 classes: small enough to recompute everything by hand. */
    private static final Dataset TINY = new Dataset("tiny", new byte[] {10, (byte) 200, 30, 0, 50, 60,
        (byte) 255, 0, (byte) 128, 90, 90, 90}, new int[] {0, 1, 1, 0}, 3, 2, 1f / 255);

    private static Sequential tinyModel(CpuBackend backend, Optimizer optimizer) {
        return new Sequential(backend, 5).input(3)
                .add(new Dense(4, ActivationKind.RELU).kernelInitializer(Initializer.parse("random_uniform:1.0"))
                        .biasInitializer(Initializer.parse("random_uniform:0.5")))
                .add(new Dense(2, ActivationKind.SOFTMAX))
                .compile(optimizer, Loss.CATEGORICAL_CROSSENTROPY).build(3);
    }

    private static double norm(float[] values, int from, int count) {
        double sum = 0;
        for (int i = from; i < from + count; i++) {
            sum += (double) values[i] * values[i];
        }
        return Math.sqrt(sum);
    }

    @Test
    void oneStepStatisticsMatchTheHostComputation() {
        try (CpuBackend backend = new CpuBackend();
             Sequential model = tinyModel(backend, new Sgd(0.1));
             Sequential twin = tinyModel(backend, new Sgd(0.1))) {
            float[] before = twin.parameters().toFloatArray();
            History history = model.fit(TINY, FitOptions.builder().batchSize(4).epochs(1).shuffle(false)
                    .verbose(0).build());
            float[] gradients = model.gradients().toFloatArray(); // the only step's gradients
            float[] after = model.parameters().toFloatArray();
            Profile profile = history.profile();
            assertEquals(List.of("kernel", "bias", "kernel", "bias"),
                    profile.segments().stream().map(Profile.Segment::parameter).toList());
            Profile.StepStatistics step = profile.steps().get(0);
            int[] sizes = {12, 4, 8, 2};
            int offset = 0;
            for (int s = 0; s < sizes.length; s++) {
                assertEquals(norm(gradients, offset, sizes[s]), step.gradientNorms()[s], TOLERANCE, "grad " + s);
                assertEquals(norm(before, offset, sizes[s]), step.weightNorms()[s], TOLERANCE, "weights " + s);
                // Plain SGD: the update is exactly lr times the gradient.
                assertEquals(0.1 * norm(gradients, offset, sizes[s]), step.updateNorms()[s], TOLERANCE, "update " + s);
                float[] diff = new float[sizes[s]];
                for (int i = 0; i < sizes[s]; i++) {
                    diff[i] = after[offset + i] - before[offset + i];
                }
                assertEquals(norm(diff, 0, sizes[s]) / norm(before, offset, sizes[s]), step.updateRatio(s), TOLERANCE);
                offset += sizes[s];
            }

            // The hidden layer's units, recomputed from x and the starting weights.
            int dead = 0;
            int inactive = 0;
            double sum = 0;
            double sumOfSquares = 0;
            for (int u = 0; u < 4; u++) {
                boolean everActive = false;
                for (int r = 0; r < 4; r++) {
                    double z = before[12 + u];
                    for (int f = 0; f < 3; f++) {
                        z += (TINY.feature(r, f) / 255.0f) * before[f * 4 + u];
                    }
                    double y = Math.max(0, z);
                    everActive |= z > 0;
                    inactive += z > 0 ? 0 : 1;
                    sum += y;
                    sumOfSquares += y * y;
                }
                dead += everActive ? 0 : 1;
            }
            Profile.UnitStatistics units = profile.units().get(0);
            assertEquals("relu", units.activation());
            assertEquals(dead / 4.0, units.deadFraction());
            assertEquals(inactive / 16.0, units.inactiveFraction(), TOLERANCE);
            assertEquals(inactive / 16.0, units.saturatedFraction(), TOLERANCE, "ReLU's slope is 0 or 1");
            assertEquals(sum / 16, units.mean(), TOLERANCE);
            assertEquals(Math.sqrt(sumOfSquares / 16 - Math.pow(sum / 16, 2)), units.std(), TOLERANCE);
        }
    }

    @Test
    void profilingDoesNotChangeTrainingAndCanBeSwitchedOff() {
        List<Double> withProfile;
        List<Double> without;
        try (CpuBackend backend = new CpuBackend()) {
            try (Sequential m = chapter(backend, "tanh", Initializer.glorotUniform(), new Adam())) {
                History h = m.fit(MNIST.train().take(600), FitOptions.builder().batchSize(100).epochs(2).verbose(0)
                        .build());
                withProfile = h.get("loss");
                assertEquals(12, h.profile().steps().size());
                assertEquals(4 * 2, h.profile().units().size(), "4 hidden layers watched, 2 epochs");
            }
            try (Sequential m = chapter(backend, "tanh", Initializer.glorotUniform(), new Adam())) {
                History h = m.fit(MNIST.train().take(600), FitOptions.builder().batchSize(100).epochs(2).verbose(0)
                        .profiler(null).build());
                without = h.get("loss");
                assertNull(h.profile());
            }
        }
        assertEquals(withProfile, without);
    }

    @Test
    void sigmoidDeepNetworkIsDiagnosedAsVanishing() {
        try (CpuBackend backend = new CpuBackend();
             Sequential m = Mlp.build(backend, 1, 784, new int[] {64, 64, 64, 64, 64, 64, 64, 64}, 10,
                     Mlp.HiddenUnits.of("sigmoid"), Initializer.glorotUniform())
                     .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            History h = m.fit(MNIST.train().take(1024), FitOptions.builder().batchSize(128).epochs(1).verbose(0)
                    .build());
            Diagnosis d = Diagnosis.of(h);
            assertEquals(Diagnosis.Kind.VANISHING, d.verdicts().get(0).kind(), d.describe());
            assertTrue(d.layers().get(0).ratioToOutput() < Diagnosis.VANISHING_RATIO, d.describe());
            assertTrue(d.verdicts().get(0).text().startsWith("vanishing: layer 1 (dense) receives 1/"), d.describe());
        }
    }

    @Test
    void reluNetworkWithGlorotInitIsHealthy() {
        try (CpuBackend backend = new CpuBackend();
             Sequential m = chapter(backend, "relu", Initializer.glorotUniform(), new Adam())) {
            Diagnosis d = Diagnosis.of(m.fit(MNIST.train().take(1024), FitOptions.builder().batchSize(128).epochs(1)
                    .verbose(0).build()));
            assertTrue(d.verdicts().stream().noneMatch(v -> v.kind() == Diagnosis.Kind.VANISHING
                    || v.kind() == Diagnosis.Kind.EXPLODING || v.kind() == Diagnosis.Kind.NON_FINITE), d.describe());
        }
    }

    /**
     * Dropout layers have no parameters and no units of their own: the profile's tensors and watched units are the
     * Dense layers' (at their places in the model, 0, 2, 4 ...), the diagnosis numbers the Dense layers 1 to 5, and
     * a ReLU network with Keras's dropout is healthy.
     */
    @Test
    void dropoutLayersAreNeitherProfiledNorNumbered() {
        try (CpuBackend backend = new CpuBackend();
             Sequential m = Mlp.build(backend, 11, 784, Mlp.CHAPTER_HIDDEN, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform(), 0.2).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            History h = m.fit(MNIST.train().take(1024), FitOptions.builder().batchSize(128).epochs(1).verbose(0)
                    .profiler(new GradientProfiler()).build());
            Profile profile = h.profile();
            assertEquals(List.of(0, 0, 2, 2, 4, 4, 6, 6, 8, 8),
                    profile.segments().stream().map(Profile.Segment::layerIndex).toList());
            assertEquals(List.of(0, 2, 4, 6),
                    profile.units().stream().map(Profile.UnitStatistics::layerIndex).toList());
            assertEquals(List.of("dense", "dense_1", "dense_2", "dense_3"),
                    profile.units().stream().map(Profile.UnitStatistics::layerName).toList());
            Diagnosis d = Diagnosis.of(h);
            assertEquals(List.of(1, 2, 3, 4, 5), d.layers().stream().map(Diagnosis.LayerRow::depth).toList());
            assertEquals(List.of("dense", "dense_1", "dense_2", "dense_3", "dense_4"),
                    d.layers().stream().map(Diagnosis.LayerRow::layerName).toList());
            assertTrue(d.layers().subList(0, 4).stream().allMatch(row -> Double.isFinite(row.deadFraction())),
                    "every hidden Dense layer's units: " + d.describe());
            assertTrue(d.verdicts().stream().noneMatch(v -> v.kind() == Diagnosis.Kind.VANISHING
                    || v.kind() == Diagnosis.Kind.EXPLODING || v.kind() == Diagnosis.Kind.NON_FINITE), d.describe());
        }
    }

    /**
     * With batch normalization each hidden layer is Dense -> BatchNormalization -> Activation: gamma and beta are
     * profiled like any parameter, the watched units are the activations' (behind each BatchNormalization, which
     * has none of its own), the diagnosis numbers the Dense layers 1 to 9 and reads each one's units from its
     * activation; the deep sigmoid net that sigmoidDeepNetworkIsDiagnosedAsVanishing finds vanishing is healthy.
     */
    @Test
    void batchNormalizationHealsTheDeepSigmoidNetAndKeepsTheLayerNumbering() {
        try (CpuBackend backend = new CpuBackend();
             Sequential m = Mlp.build(backend, 1, 784, new int[] {64, 64, 64, 64, 64, 64, 64, 64}, 10,
                     Mlp.HiddenUnits.of("sigmoid"), Initializer.glorotUniform(), 0, true)
                     .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            History h = m.fit(MNIST.train().take(1024), FitOptions.builder().batchSize(128).epochs(1).verbose(0)
                    .profiler(new GradientProfiler()).build());
            Profile profile = h.profile();
            assertEquals(List.of("kernel", "bias", "gamma", "beta"), profile.segments().subList(0, 4).stream()
                    .map(Profile.Segment::parameter).toList());
            assertEquals(List.of(2, 5, 8, 11, 14, 17, 20, 23),
                    profile.units().stream().map(Profile.UnitStatistics::layerIndex).toList());
            Diagnosis d = Diagnosis.of(h);
            assertEquals(List.of(1, 2, 3, 4, 5, 6, 7, 8, 9), d.layers().stream().map(Diagnosis.LayerRow::depth)
                    .toList());
            assertEquals("dense_8", d.layers().get(8).layerName());
            assertTrue(d.layers().subList(0, 8).stream().allMatch(row -> Double.isFinite(row.saturatedFraction())),
                    "every hidden Dense layer's units, read from its activation: " + d.describe());
            assertEquals(List.of(Diagnosis.Kind.HEALTHY), d.verdicts().stream().map(Diagnosis.Verdict::kind).toList(),
                    d.describe());
        }
    }

    @Test
    void largeInitialWeightsAreDiagnosedAsExploding() {
        try (CpuBackend backend = new CpuBackend();
             Sequential m = chapter(backend, "relu", Initializer.parse("random_normal:1.0"), new Sgd(0.01))) {
            Diagnosis d = Diagnosis.of(m.fit(MNIST.train().take(1024), FitOptions.builder().batchSize(128).epochs(1)
                    .verbose(0).build()));
            Diagnosis.Kind first = d.verdicts().get(0).kind();
            assertTrue(first == Diagnosis.Kind.EXPLODING || first == Diagnosis.Kind.NON_FINITE, d.describe());
            assertTrue(d.verdicts().get(0).text().startsWith("exploding"), d.describe());
        }
    }

    @Test
    void overflowStopsAtTheFirstStepBeforeTheUpdateAndNamesTheLayer() {
        try (CpuBackend backend = new CpuBackend();
             Sequential m = chapter(backend, "relu", Initializer.parse("random_normal:1e9"), new Sgd(0.01))) {
            float[] start = m.parameters().toFloatArray();
            History h = m.fit(MNIST.train().take(512), FitOptions.builder().batchSize(128).epochs(3).verbose(0)
                    .build());
            NonFiniteEvent event = h.nonFinite();
            assertNotNull(event, "1e9-scale weights overflow float");
            assertEquals(0, event.epoch());
            assertEquals(0, event.step());
            assertEquals("dense_4", event.layerName(), "the output layer is the first in backpropagation order");
            assertTrue(event.stopped());
            assertEquals(1, h.epochs(), "training stopped in the first epoch");
            assertEquals(java.util.Arrays.toString(start), java.util.Arrays.toString(m.parameters().toFloatArray()),
                    "the non-finite update was never applied");
            assertEquals(Diagnosis.Kind.NON_FINITE, Diagnosis.of(h).verdicts().get(0).kind());
        }
        try (CpuBackend backend = new CpuBackend();
             Sequential m = chapter(backend, "relu", Initializer.parse("random_normal:1e9"), new Sgd(0.01))) {
            History h = m.fit(MNIST.train().take(512), FitOptions.builder().batchSize(128).epochs(2).verbose(0)
                    .stopOnNonFinite(false).build());
            assertFalse(h.nonFinite().stopped());
            assertEquals(2, h.epochs(), "asked to go on, it went on");
        }
    }

    @Test
    void clippingBoundsTheUpdate() {
        try (CpuBackend backend = new CpuBackend();
             Sequential m = chapter(backend, "relu", Initializer.parse("he_normal:3"), new Sgd(1.0))) {
            History h = m.fit(MNIST.train().take(256), FitOptions.builder().batchSize(128).epochs(1).verbose(0)
                    .clipGlobalNorm(0.5).build());
            for (Profile.StepStatistics s : h.profile().steps()) {
                double gradient = Math.sqrt(sumOfSquares(s.gradientNorms()));
                double update = Math.sqrt(sumOfSquares(s.updateNorms()));
                assertEquals(Math.min(gradient, 0.5), update, 1e-4, "SGD lr 1: update = clipped gradient");
            }
        }
        try (CpuBackend backend = new CpuBackend();
             Sequential m = chapter(backend, "relu", Initializer.parse("he_normal:3"), new Sgd(1.0))) {
            float[] start = m.parameters().toFloatArray();
            m.fit(MNIST.train().take(128), FitOptions.builder().batchSize(128).epochs(1).verbose(0).clipValue(1e-3)
                    .build());
            float[] end = m.parameters().toFloatArray();
            for (int i = 0; i < start.length; i++) {
                assertTrue(Math.abs(end[i] - start[i]) <= 1e-3 * (1 + 1e-4), "element " + i + " moved by "
                        + (end[i] - start[i]));
            }
        }
    }

    private static double sumOfSquares(double[] norms) {
        double sum = 0;
        for (double n : norms) {
            sum += n * n;
        }
        return sum;
    }

    private static Sequential chapter(CpuBackend backend, String activation, Initializer init, Optimizer optimizer) {
        return Mlp.build(backend, 11, 784, Mlp.CHAPTER_HIDDEN, 10, Mlp.HiddenUnits.of(activation), init)
                .compile(optimizer, Loss.CATEGORICAL_CROSSENTROPY);
    }
}
