package dev.gradscope.nn;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Gradient checks of every parameter of whole models, through {@link Sequential#computeGradients}. */
class SequentialGradientTest {
    private static final int FEATURES = 6;
    private static final int CLASSES = 3;
    private static final int BATCH = 4;

    /** The chapter's shape in miniature: several hidden layers and a softmax output. */
    private static Sequential model(CpuBackend backend, String hidden, Loss loss) {
        Sequential m = Mlp.build(backend, 3, FEATURES, new int[] {5, 4, 4}, CLASSES, Mlp.HiddenUnits.of(hidden),
                Initializer.parse("glorot_uniform:1.5"));
        return m.compile(new Sgd(0.1), loss, "accuracy");
    }

    @ParameterizedTest(name = "{0} hidden units, {1}")
    @CsvSource({"sigmoid, categorical_crossentropy", "tanh, categorical_crossentropy", "tanh, mse",
            "elu, categorical_crossentropy", "swish, mse", "softsign, categorical_crossentropy",
            "arctan, categorical_crossentropy", "bent_identity, mse"})
    void everyParameterOfAnMlp(String hidden, String lossId) {
        checkModel(hidden, Loss.fromId(lossId));
    }

    @ParameterizedTest(name = "{0} hidden units")
    @CsvSource({"prelu", "maxout"})
    void everyParameterOfMlpsWithLearnedActivations(String hidden) {
        checkModel(hidden, Loss.CATEGORICAL_CROSSENTROPY);
    }

    private static void checkModel(String hidden, Loss loss) {
        // Piecewise-linear units (prelu, maxout): draw data until no unit sits on a kink, where a central
        // difference would straddle two slopes; smooth units take the first draw.
        for (long seed = 9; seed < 500; seed++) {
            if (checkModel(hidden, loss, seed)) {
                return;
            }
        }
        throw new AssertionError("no data seed keeps every " + hidden + " unit clear of its kinks");
    }

    /** Runs the check on data drawn from {@code seed}; false (nothing checked) when a unit is on a kink. */
    private static boolean checkModel(String hidden, Loss loss, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] x = new float[BATCH * FEATURES];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextDouble(-1, 1);
        }
        float[] y = new float[BATCH * CLASSES];
        for (int b = 0; b < BATCH; b++) {
            y[b * CLASSES + random.nextInt(CLASSES)] = 1f;
        }
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, hidden, loss);
             Tensor xs = backend.fromHost(x, BATCH, FEATURES);
             Tensor ys = backend.fromHost(y, BATCH, CLASSES);
             Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
            model.computeGradients(xs, ys, totals);
            if (smallestKinkDistance(model) < Kinks.MARGIN) {
                return false;
            }
            float[] analytic = model.gradients().toFloatArray();
            float[] parameters = model.parameters().toFloatArray();
            GradientCheck.check(hidden + " MLP with " + loss.id(),
                    GradientCheck.hostMirror(parameters, () -> backend.copyFromHost(parameters, model.parameters())),
                    analytic, () -> {
                        backend.fill(totals, 0f);
                        model.accumulateLoss(xs, ys, totals);
                        return totals.toFloatArray()[0] / (double) BATCH;
                    }, Tolerances.F32_GRADCHECK_STEP, Tolerances.F32_GRADCHECK_REL, Tolerances.F32_GRADCHECK_ABS);
            return true;
        }
    }

    /**
     * After a forward pass: how close any PReLU input is to 0, or any maxout unit's two best pieces are
     * to a tie. Smooth models answer infinity.
     */
    private static double smallestKinkDistance(Sequential model) {
        double smallest = Double.POSITIVE_INFINITY;
        List<Layer> layers = model.layers();
        for (int i = 0; i < layers.size(); i++) {
            Layer layer = layers.get(i);
            if (layer instanceof Dense dense && i + 1 < layers.size() && layers.get(i + 1) instanceof PReLU) {
                for (float z : dense.logits().toFloatArray()) {
                    smallest = Math.min(smallest, Math.abs(z));
                }
            }
            if (layer instanceof Maxout maxout) {
                float[] z = maxout.lastPreActivation().toFloatArray();
                int pieces = maxout.pieces();
                for (int unit = 0; unit < z.length / pieces; unit++) {
                    float[] values = Arrays.copyOfRange(z, unit * pieces, (unit + 1) * pieces);
                    Arrays.sort(values);
                    smallest = Math.min(smallest, values[pieces - 1] - values[pieces - 2]);
                }
            }
        }
        return smallest;
    }
}
