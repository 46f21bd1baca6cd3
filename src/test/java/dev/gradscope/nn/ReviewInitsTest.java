package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Review "inits": checks of claims the merged initializers make. */
class ReviewInitsTest {
    private static final long SEED = 42;

    /**
     * README "Orthogonal kernels": "Backpropagated through a linear layer, a gradient keeps its norm exactly." True
     * only through a tall or square kernel (fanIn >= fanOut); through a wide one (orthonormal rows), dL/dz W^T is a
     * projection and shrinks. Here the second kernel is [16, 64]: layer 1's bias gradient is about half the output's.
     */
    @Test
    void readmeClaimAGradientKeepsItsNormThroughAWideOrthogonalKernel() {
        int features = 40;
        int classes = 10;
        int batch = 16;
        SplittableRandom random = new SplittableRandom(SEED);
        float[] x = new float[batch * features];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextDouble(0, 1);
        }
        float[] y = new float[batch * classes];
        for (int b = 0; b < batch; b++) {
            y[b * classes + random.nextInt(classes)] = 1f;
        }
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, SEED, features, new int[] {16, 64}, classes,
                     Mlp.HiddenUnits.of("linear"), Initializer.parse("orthogonal"))
                     .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY);
             Tensor xs = backend.fromHost(x, batch, features);
             Tensor ys = backend.fromHost(y, batch, classes);
             Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
            model.computeGradients(xs, ys, totals);
            List<Sequential.ParameterGroup> biases = model.parameterGroups().stream()
                    .filter(g -> g.slot().name().equals("bias")).toList();
            double first = norm(biases.get(0).gradient().toFloatArray());
            double output = norm(biases.get(biases.size() - 1).gradient().toFloatArray());
            assertEquals(1.0, first / output, 1e-4, "layer 1 / output ||db|| through a wide [16, 64] kernel");
        }
    }

    /**
     * Keras 3's Identity(gain) is gain * eye(*shape): a rectangular kernel gets the rectangular identity. GradScope
     * refuses it, so --init identity can never start an MLP from the command line.
     */
    @Test
    void identityIsKerasEyeOfTheShape() {
        float[] out = new float[12];
        Initializer.parse("identity").fill(out, 0, new int[] {3, 4}, 3, 4, new SplittableRandom(SEED));
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 4; j++) {
                assertEquals(i == j ? 1f : 0f, out[i * 4 + j]);
            }
        }
    }

    /**
     * lecun_uniform's limit is sqrt(3 / fanIn), not fanOut: InitializerTest samples a 1000 x 1000 kernel with
     * fanIn == fanOut, so it cannot tell them apart. With fanIn 2000 and fanOut 500 it can. Passes today; fails
     * when LECUN_UNIFORM uses fanOut or the fans' average.
     */
    @Test
    void lecunUniformLimitFollowsFanInNotFanOut() {
        int fanIn = 2000;
        int fanOut = 500;
        float[] out = new float[fanIn * fanOut];
        Initializer.parse("lecun_uniform").fill(out, 0, new int[] {fanIn, fanOut}, fanIn, fanOut,
                new SplittableRandom(SEED));
        double limit = Math.sqrt(3.0 / fanIn);
        double max = 0;
        double squares = 0;
        for (float v : out) {
            max = Math.max(max, Math.abs(v));
            squares += (double) v * v;
        }
        double std = Math.sqrt(squares / out.length);
        assertEquals(limit / Math.sqrt(3), std, 6 * limit / Math.sqrt(3) / Math.sqrt(2.0 * out.length), "stddev");
        assertEquals(limit, max, 1e-3 * limit, "largest |value|");
    }

    private static double norm(float[] v) {
        double sum = 0;
        for (float x : v) {
            sum += (double) x * x;
        }
        return Math.sqrt(sum);
    }
}
