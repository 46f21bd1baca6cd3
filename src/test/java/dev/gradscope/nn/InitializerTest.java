package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The initializers against their definitions: orthogonal against the QR decomposition it is defined by, the
 * element-wise kinds against their bounds and sample statistics, and the refusals' messages.
 */
class InitializerTest {
    private static final long SEED = 42;

    /** Fills a rows x cols kernel (fan-in rows, fan-out cols) at an offset, NaN around it, and checks the NaN. */
    private static float[] kernel(Initializer init, int rows, int cols, long seed) {
        int offset = 3;
        float[] out = new float[offset + rows * cols + 2];
        Arrays.fill(out, Float.NaN);
        init.fill(out, offset, new int[] {rows, cols}, rows, cols, new SplittableRandom(seed));
        for (int i = 0; i < out.length; i++) {
            boolean inside = i >= offset && i < offset + rows * cols;
            assertEquals(inside, !Float.isNaN(out[i]), init + " [" + rows + ", " + cols + "] element " + i
                    + (inside ? " not written" : " written outside the kernel"));
        }
        return Arrays.copyOfRange(out, offset, offset + rows * cols);
    }

    /** Gram matrix of a row-major rows x cols matrix: MᵀM (cols x cols) when tall, MMᵀ (rows x rows) when wide. */
    private static double[][] gram(float[] m, int rows, int cols) {
        boolean tall = rows >= cols;
        int n = Math.min(rows, cols);
        int k = Math.max(rows, cols);
        double[][] g = new double[n][n];
        for (int a = 0; a < n; a++) {
            for (int b = 0; b < n; b++) {
                double sum = 0;
                for (int i = 0; i < k; i++) {
                    sum += tall ? (double) m[i * cols + a] * m[i * cols + b]
                            : (double) m[a * cols + i] * m[b * cols + i];
                }
                g[a][b] = sum;
            }
        }
        return g;
    }

    private static void assertGramIsScaledIdentity(float[] m, int rows, int cols, double gain, String what) {
        double[][] g = gram(m, rows, cols);
        double worst = 0;
        for (int a = 0; a < g.length; a++) {
            for (int b = 0; b < g.length; b++) {
                worst = Math.max(worst, Math.abs(g[a][b] - (a == b ? gain * gain : 0)));
            }
        }
        assertTrue(worst <= Tolerances.ORTHOGONAL_GRAM_F32_ABS * gain * gain, what + ": worst |G - gain²I| " + worst);
    }

    private static final List<int[]> SHAPES = List.of(new int[] {1, 1}, new int[] {1, 5}, new int[] {5, 1},
            new int[] {3, 3}, new int[] {7, 3}, new int[] {3, 7}, new int[] {128, 128}, new int[] {784, 64},
            new int[] {64, 784}, new int[] {130, 257});

    @Test
    void orthogonalGivesOrthonormalColumnsWhenTallAndRowsWhenWide() {
        for (int[] shape : SHAPES) {
            float[] w = kernel(Initializer.parse("orthogonal"), shape[0], shape[1], SEED);
            assertGramIsScaledIdentity(w, shape[0], shape[1], 1, "orthogonal " + Arrays.toString(shape));
        }
    }

    @Test
    void orthogonalGainScalesTheMatrix() {
        for (int[] shape : SHAPES) {
            float[] one = kernel(Initializer.parse("orthogonal"), shape[0], shape[1], SEED);
            float[] two = kernel(Initializer.parse("orthogonal:2"), shape[0], shape[1], SEED);
            float[] small = kernel(Initializer.parse("orthogonal:0.3"), shape[0], shape[1], SEED);
            for (int i = 0; i < one.length; i++) {
                assertEquals(2 * one[i], two[i], "doubling is exact in float: element " + i);
            }
            assertGramIsScaledIdentity(small, shape[0], shape[1], 0.3, "orthogonal:0.3 " + Arrays.toString(shape));
        }
    }

    @Test
    void orthogonalIsTheSameForASeedAndDiffersAcrossSeeds() {
        for (int[] shape : SHAPES.subList(1, SHAPES.size())) { // a 1 x 1 orthogonal matrix with R > 0 is [1]
            float[] a = kernel(Initializer.parse("orthogonal"), shape[0], shape[1], SEED);
            assertArrayEquals(a, kernel(Initializer.parse("orthogonal"), shape[0], shape[1], SEED));
            float[] b = kernel(Initializer.parse("orthogonal"), shape[0], shape[1], SEED + 1);
            assertFalse(Arrays.equals(a, b), Arrays.toString(shape) + ": seeds 42 and 43 gave the same kernel");
        }
    }

    /**
     * Forming Q reflects only the columns a reflection can change (H(k) leaves column j < k, still e_j, as it is):
     * the result is bit for bit the full product H0 ... H(n-1) applied to every column, as it was formed before,
     * for tall, wide-as-transposed, square and one-column matrices, and with a zero column (no reflection).
     */
    @Test
    void formingQFromTheColumnsAReflectionChangesIsBitForBitTheFullProduct() {
        List<int[]> shapes = List.of(new int[] {1, 1}, new int[] {5, 1}, new int[] {3, 3}, new int[] {7, 3},
                new int[] {128, 128}, new int[] {257, 130}, new int[] {784, 64});
        for (int[] shape : shapes) {
            int m = shape[0];
            int n = shape[1];
            SplittableRandom rng = new SplittableRandom(SEED);
            double[][] columns = new double[n][m];
            for (double[] column : columns) {
                for (int i = 0; i < m; i++) {
                    column[i] = rng.nextGaussian();
                }
            }
            if (n > 2) {
                Arrays.fill(columns[1], 0.0); // R's entry 0: H(1) is skipped
            }
            double[][] fast = Orthogonal.orthonormalColumns(copy(columns), m, n);
            double[][] full = orthonormalColumnsReflectingEveryColumn(copy(columns), m, n);
            for (int j = 0; j < n; j++) {
                assertArrayEquals(full[j], fast[j], Arrays.toString(shape) + ": column " + j + " of Q");
            }
        }
    }

    private static double[][] copy(double[][] columns) {
        return Arrays.stream(columns).map(double[]::clone).toArray(double[][]::new);
    }

    /**
     * {@link Orthogonal#orthonormalColumns} as it was before it skipped columns: the same Householder QR, with Q
     * formed by applying each reflection to all n columns of the identity's first n.
     */
    private static double[][] orthonormalColumnsReflectingEveryColumn(double[][] a, int m, int n) {
        double[][] reflectors = new double[n][];
        double[] diagonal = new double[n];
        for (int k = 0; k < n; k++) {
            double[] x = a[k];
            double norm = 0;
            for (int i = k; i < m; i++) {
                norm += x[i] * x[i];
            }
            norm = Math.sqrt(norm);
            double alpha = x[k] > 0 ? -norm : norm;
            diagonal[k] = alpha;
            if (norm == 0) {
                continue;
            }
            double[] v = new double[m];
            double vNorm = 0;
            for (int i = k; i < m; i++) {
                v[i] = i == k ? x[i] - alpha : x[i];
                vNorm += v[i] * v[i];
            }
            vNorm = Math.sqrt(vNorm);
            for (int i = k; i < m; i++) {
                v[i] /= vNorm;
            }
            reflectors[k] = v;
            for (int j = k + 1; j < n; j++) {
                reflect(v, k, m, a[j]);
            }
        }
        double[][] q = new double[n][m];
        for (int j = 0; j < n; j++) {
            q[j][j] = 1;
        }
        for (int k = n - 1; k >= 0; k--) {
            if (reflectors[k] != null) {
                for (int j = 0; j < n; j++) {
                    reflect(reflectors[k], k, m, q[j]);
                }
            }
        }
        for (int j = 0; j < n; j++) {
            if (diagonal[j] < 0) {
                for (int i = 0; i < m; i++) {
                    q[j][i] = -q[j][i];
                }
            }
        }
        return q;
    }

    private static void reflect(double[] v, int k, int m, double[] y) {
        double dot = 0;
        for (int i = k; i < m; i++) {
            dot += v[i] * y[i];
        }
        double twice = 2 * dot;
        for (int i = k; i < m; i++) {
            y[i] -= twice * v[i];
        }
    }

    /**
     * Keras's definition, checked directly: for the normal matrix A of shape (max, min) drawn from the same seed
     * in row-major order, the tall result Q (or the wide one's transpose) is the Q of A = QR with R upper
     * triangular and R's diagonal positive, i.e. R = QᵀA is upper triangular, positive on its diagonal, and QR
     * gives A back. This is what makes it Haar-distributed: a QR without the sign step is not.
     */
    @Test
    void orthogonalIsTheQOfThePositiveDiagonalQrOfTheNormalDraw() {
        for (int[] shape : List.of(new int[] {7, 3}, new int[] {3, 7}, new int[] {16, 16}, new int[] {200, 40})) {
            int rows = shape[0];
            int cols = shape[1];
            int m = Math.max(rows, cols);
            int n = Math.min(rows, cols);
            SplittableRandom rng = new SplittableRandom(SEED);
            double[][] a = new double[m][n];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    a[i][j] = rng.nextGaussian();
                }
            }
            float[] w = kernel(Initializer.parse("orthogonal"), rows, cols, SEED);
            double[][] q = new double[m][n];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    q[i][j] = rows >= cols ? w[i * cols + j] : w[j * cols + i];
                }
            }
            double[][] r = new double[n][n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    for (int k = 0; k < m; k++) {
                        r[i][j] += q[k][i] * a[k][j];
                    }
                }
            }
            double scale = 0;
            for (double[] row : a) {
                for (double x : row) {
                    scale = Math.max(scale, Math.abs(x));
                }
            }
            double tolerance = Tolerances.ORTHOGONAL_GRAM_F32_ABS * m * scale;
            for (int i = 0; i < n; i++) {
                assertTrue(r[i][i] > 0, Arrays.toString(shape) + ": R[" + i + "][" + i + "] = " + r[i][i]);
                for (int j = 0; j < i; j++) {
                    assertEquals(0, r[i][j], tolerance, Arrays.toString(shape) + ": R below its diagonal");
                }
            }
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double qr = 0;
                    for (int k = 0; k < n; k++) {
                        qr += q[i][k] * r[k][j];
                    }
                    assertEquals(a[i][j], qr, tolerance, Arrays.toString(shape) + ": (QR)[" + i + "][" + j + "]");
                }
            }
        }
    }

    /**
     * Haar: every entry is symmetric about 0, with variance 1/max(rows, cols). Over one 512 x 256 kernel the
     * entries' mean and mean square are within {@link Tolerances#SAMPLE_STATISTIC_SIGMAS} standard errors, and
     * so, over 400 seeds, are the sign of entry [0][0] (a QR without the sign step makes it always negative) and
     * its mean square.
     */
    @Test
    void orthogonalEntriesAreCentredWithVarianceOneOverTheLongSide() {
        int rows = 512;
        int cols = 256;
        float[] w = kernel(Initializer.parse("orthogonal"), rows, cols, SEED);
        double sum = 0;
        for (float x : w) {
            sum += x;
        }
        double variance = 1.0 / rows;
        assertEquals(0, sum / w.length, Tolerances.SAMPLE_STATISTIC_SIGMAS * Math.sqrt(variance / w.length));

        int draws = 400;
        int positive = 0;
        double squares = 0;
        for (int seed = 0; seed < draws; seed++) {
            float corner = kernel(Initializer.parse("orthogonal"), 20, 10, seed)[0];
            positive += corner > 0 ? 1 : 0;
            squares += corner * corner;
        }
        assertEquals(0.5, positive / (double) draws, Tolerances.SAMPLE_STATISTIC_SIGMAS * Math.sqrt(0.25 / draws),
                "fraction of positive [0][0] entries");
        // [0][0]² of a uniform unit vector in 20 dimensions is Beta(1/2, 19/2): mean 1/20, variance 2*19/(20²*22).
        assertEquals(1.0 / 20, squares / draws, Tolerances.SAMPLE_STATISTIC_SIGMAS
                * Math.sqrt(2.0 * 19 / (20 * 20 * 22) / draws), "mean square of [0][0]");
    }

    /** Mean and standard deviation of a large sample, in double. */
    private record Moments(double mean, double std, double maxAbs) {
        static Moments of(float[] v) {
            double sum = 0;
            double maxAbs = 0;
            for (float x : v) {
                sum += x;
                maxAbs = Math.max(maxAbs, Math.abs(x));
            }
            double mean = sum / v.length;
            double squares = 0;
            for (float x : v) {
                squares += (x - mean) * (x - mean);
            }
            return new Moments(mean, Math.sqrt(squares / v.length), maxAbs);
        }
    }

    private static final int SAMPLE_FAN_IN = 1000;
    private static final int SAMPLE_FAN_OUT = 1000;

    /**
     * Checks a sample's mean and standard deviation against the distribution's, within
     * {@link Tolerances#SAMPLE_STATISTIC_SIGMAS} standard errors: the mean's is std / sqrt(N), the standard
     * deviation's std * sqrt((kurtosis - 1) / 4N), at most std / sqrt(2N) (kurtosis 3, the normal's; the uniform's
     * 1.8 and the normal truncated at 2 stddev's 2.4 are smaller).
     */
    private static Moments assertMoments(String spec, double std, double limit) {
        float[] v = kernel(Initializer.parse(spec), SAMPLE_FAN_IN, SAMPLE_FAN_OUT, SEED);
        Moments moments = Moments.of(v);
        int n = v.length;
        assertEquals(0, moments.mean(), Tolerances.SAMPLE_STATISTIC_SIGMAS * std / Math.sqrt(n), spec + " mean");
        assertEquals(std, moments.std(), Tolerances.SAMPLE_STATISTIC_SIGMAS * std / Math.sqrt(2.0 * n),
                spec + " stddev");
        assertTrue(moments.maxAbs() <= (float) limit, spec + ": |value| " + moments.maxAbs() + " > limit " + limit);
        // The limit is reached: among a million draws the largest is within 0.1% of it (uniform) or 2% (normal).
        assertTrue(moments.maxAbs() >= 0.98 * limit, spec + ": largest |value| " + moments.maxAbs()
                + " is far inside the limit " + limit);
        return moments;
    }

    @Test
    void lecunUniformIsUniformWithinTheSquareRootOfThreeOverFanIn() {
        double limit = Math.sqrt(3.0 / SAMPLE_FAN_IN);
        assertMoments("lecun_uniform", limit / Math.sqrt(3), limit);
        assertMoments("lecun_uniform:2", 2 * limit / Math.sqrt(3), 2 * limit);
    }

    /**
     * Keras's TruncatedNormal keeps its draws: beyond 2 stddev they are drawn again and not rescaled, so the
     * standard deviation is 0.8796 of the stddev asked (the variance-scaling kinds divide that out; this one does
     * not).
     */
    @Test
    void truncatedNormalStaysWithinTwoStddevAndKeepsKerasStddev() {
        double truncatedStd = 0.87962566103423978;
        assertMoments("truncated_normal", 0.05 * truncatedStd, 2 * 0.05);
        assertMoments("truncated_normal:1.5", 1.5 * truncatedStd, 2 * 1.5);
    }

    /**
     * The element-wise kinds draw as they always did (the main job's numbers depend on it): glorot_uniform is one
     * {@code nextDouble(-l, l)} per value in order, he_normal a unit normal redrawn beyond 2 and scaled.
     */
    @Test
    void elementWiseKindsDrawOneValueAfterAnotherFromTheGenerator() {
        float[] glorot = kernel(Initializer.glorotUniform(), 30, 20, SEED);
        SplittableRandom rng = new SplittableRandom(SEED);
        double limit = Math.sqrt(6.0 / 50);
        for (float x : glorot) {
            assertEquals((float) rng.nextDouble(-limit, limit), x);
        }
        float[] he = kernel(Initializer.parse("he_normal"), 30, 20, SEED);
        rng = new SplittableRandom(SEED);
        for (float x : he) {
            double z;
            do {
                z = rng.nextGaussian();
            } while (Math.abs(z) > 2);
            assertEquals((float) (z * Math.sqrt(2.0 / 30) / 0.87962566103423978), x);
        }
    }

    @Test
    void onesAndIdentityAreWhatTheyAre() {
        for (float x : kernel(Initializer.parse("ones"), 3, 4, SEED)) {
            assertEquals(1f, x);
        }
        float[] eye = kernel(Initializer.parse("identity:0.5"), 4, 4, SEED);
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 4; j++) {
                assertEquals(i == j ? 0.5f : 0f, eye[i * 4 + j], "[" + i + "][" + j + "]");
            }
        }
        assertArrayEquals(kernel(Initializer.parse("identity"), 1, 1, SEED), new float[] {1f});
    }

    /** Keras 3's {@code gain * eye(rows, cols)}: a rectangular kernel gets the diagonal of its shape. */
    @Test
    void identityOfARectangularKernelIsTheEyeOfItsShape() {
        for (int[] shape : List.of(new int[] {3, 5}, new int[] {5, 3}, new int[] {1, 4}, new int[] {4, 1},
                new int[] {784, 512})) {
            float[] eye = kernel(Initializer.parse("identity:2"), shape[0], shape[1], SEED);
            for (int i = 0; i < shape[0]; i++) {
                for (int j = 0; j < shape[1]; j++) {
                    assertEquals(i == j ? 2f : 0f, eye[i * shape[1] + j],
                            Arrays.toString(shape) + "[" + i + "][" + j + "]");
                }
            }
        }
    }

    @Test
    void identityRefusesWhatIsNotAMatrixAndOrthogonalAVector() {
        Initializer identity = Initializer.parse("identity");
        for (int[] shape : List.of(new int[] {4}, new int[] {2, 2, 2})) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> identity.fill(new float[24], 0, shape, 1, 1, new SplittableRandom(SEED)));
            assertTrue(e.getMessage().contains("identity needs a tensor of 2 dimensions")
                    && e.getMessage().contains(Arrays.toString(shape)), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Initializer.parse("orthogonal")
                .fill(new float[4], 0, new int[] {4}, 4, 4, new SplittableRandom(SEED)));
        assertTrue(e.getMessage().contains("orthogonal") && e.getMessage().contains("[4]"), e.getMessage());
    }

    /** A model refuses the initializer that cannot fill a layer's tensor before building, naming layer and shape. */
    @Test
    void aModelNamesTheLayerWhoseKernelTheInitializerCannotFill() {
        CpuBackend cpu = new CpuBackend();
        try (Sequential model = new Sequential(cpu, SEED).input(3)
                .add(new Dense(3, ActivationKind.TANH).kernelInitializer(Initializer.parse("identity")))
                .add(new Dense(5, ActivationKind.SOFTMAX).kernelInitializer(Initializer.parse("identity"))
                        .biasInitializer(Initializer.parse("identity")))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(3));
            assertTrue(e.getMessage().contains("dense_1") && e.getMessage().contains("bias")
                    && e.getMessage().contains("[5]"), e.getMessage());
        }
        try (Sequential model = new Sequential(cpu, SEED).input(3)
                .add(new Dense(4, ActivationKind.SOFTMAX).biasInitializer(Initializer.parse("orthogonal")))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(3));
            assertTrue(e.getMessage().contains("dense") && e.getMessage().contains("bias")
                    && e.getMessage().contains("[4]"), e.getMessage());
        }
    }

    /**
     * Maxout's kernel [in, units * pieces] is one matrix to orthogonal, as Keras sees a Dense(units * pieces) kernel
     * before a maxout: tall, every piece's weight vector is orthogonal to every other piece's, of its unit and of
     * the others.
     */
    @Test
    void maxoutKernelIsOrthogonalAsOneMatrix() {
        int in = 12;
        int units = 3;
        int pieces = 2;
        try (Sequential model = new Sequential(new CpuBackend(), SEED).input(in)
                .add(new Maxout(units, pieces).kernelInitializer(Initializer.parse("orthogonal")))
                .add(new Dense(2, ActivationKind.SOFTMAX))) {
            model.compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(in);
            Sequential.ParameterGroup kernel = model.parameterGroups().get(0);
            assertArrayEquals(new int[] {in, units * pieces}, kernel.slot().shape());
            float[] w = model.backend().toHostFloats(kernel.value());
            assertGramIsScaledIdentity(w, in, units * pieces, 1, "maxout kernel");
        }
    }

    /**
     * Why orthogonal matters, in one step: in a linear MLP whose kernels after the first are tall (as the chapter's),
     * the gradient dL/dz goes back through each kernel's transpose, which orthonormal columns leave the same length;
     * so the first layer's bias gradient (dL/dz summed over the batch) has exactly the output layer's norm. From
     * glorot_uniform it does not (the check can fail).
     */
    @Test
    void orthogonalKernelsPassALinearNetsGradientBackUnchanged() {
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
        for (String init : List.of("orthogonal", "orthogonal:1.3", "glorot_uniform")) {
            try (CpuBackend backend = new CpuBackend();
                 Sequential model = Mlp.build(backend, SEED, features, new int[] {64, 32, 32, 16}, classes,
                         Mlp.HiddenUnits.of("linear"), Initializer.parse(init))
                         .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY);
                 Tensor xs = backend.fromHost(x, batch, features);
                 Tensor ys = backend.fromHost(y, batch, classes);
                 Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
                model.computeGradients(xs, ys, totals);
                List<Sequential.ParameterGroup> biases = model.parameterGroups().stream()
                        .filter(g -> g.slot().name().equals("bias")).toList();
                double first = norm(biases.get(0).gradient().toFloatArray());
                double output = norm(biases.get(biases.size() - 1).gradient().toFloatArray());
                // Four kernels back from the output, each times the gain.
                if (init.startsWith("orthogonal")) {
                    double expected = Math.pow(Initializer.parse(init).scale(), 4);
                    assertEquals(expected, first / output, Tolerances.ORTHOGONAL_BACKPROP_NORM_REL * expected, init);
                } else {
                    assertTrue(Math.abs(first / output - 1) > 0.05, init + ": layer 1 / output ||db|| "
                            + first / output);
                }
            }
        }
    }

    private static double norm(float[] v) {
        double sum = 0;
        for (float x : v) {
            sum += (double) x * x;
        }
        return Math.sqrt(sum);
    }

    @Test
    void parsingNamesTheBadSpecAndTheValidKinds() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> Initializer.parse("orthogonl"));
        assertTrue(unknown.getMessage().contains("'orthogonl'") && unknown.getMessage().contains("orthogonal")
                && unknown.getMessage().contains("lecun_uniform") && unknown.getMessage().contains("truncated_normal")
                && unknown.getMessage().contains("identity"), unknown.getMessage());
        IllegalArgumentException notNumber = assertThrows(IllegalArgumentException.class,
                () -> Initializer.parse("orthogonal:big"));
        assertTrue(notNumber.getMessage().contains("'big' is not a number"), notNumber.getMessage());
        for (String bad : List.of("orthogonal:-1", "identity:1e400", "truncated_normal:-0.05")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Initializer.parse(bad));
            assertTrue(e.getMessage().contains("scale must be finite and >= 0"), bad + ": " + e.getMessage());
        }
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> Initializer.parse("orthogonal:NaN"));
        assertTrue(nan.getMessage().contains("is not a number"), nan.getMessage());
        IllegalArgumentException ones = assertThrows(IllegalArgumentException.class, () -> Initializer.parse("ones:2"));
        assertTrue(ones.getMessage().contains("ones takes no scale"), ones.getMessage());
    }

    /** What a run records ({@code toString}) parses back to the same initializer, default scale or not. */
    @Test
    void everyKindRoundTripsThroughItsText() {
        for (Initializer.Kind kind : Initializer.Kind.values()) {
            Initializer init = Initializer.of(kind);
            assertEquals(init, Initializer.parse(init.toString()), kind.id());
        }
        for (String spec : List.of("orthogonal:1.5", "identity:2.0", "truncated_normal:0.1", "lecun_uniform:3.0")) {
            Initializer init = Initializer.parse(spec);
            assertEquals(spec, init.toString());
            assertEquals(init, Initializer.parse(init.toString()));
        }
    }
}
