package dev.gradscope.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.tensor.UpdateNorms;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;

/** The reference semantics of the non-GEMM ops, on inputs small enough to work out by hand. */
class CpuBackendTest {
    private final CpuBackend cpu = new CpuBackend();

    private Tensor t(float[] values, int... shape) {
        return cpu.fromHost(values, shape);
    }

    @Test
    void columnSumsAndRowVectorAddOnAView() {
        try (Tensor whole = t(new float[] {9, 9, 9, 1, 2, 3, 4, 5, 6}, 3, 3);
             Tensor sums = cpu.allocate(DType.FLOAT32, 3);
             Tensor bias = t(new float[] {10, 20, 30}, 3)) {
            Tensor lastTwoRows = whole.rows(1, 2);
            cpu.columnSums(lastTwoRows, sums);
            assertArrayEquals(new float[] {5, 7, 9}, sums.toFloatArray());
            cpu.addRowVectorAccumulate(lastTwoRows, bias);
            assertArrayEquals(new float[] {9, 9, 9, 11, 22, 33, 14, 25, 36}, whole.toFloatArray(),
                    "the first row, outside the view, is untouched");
        }
    }

    @Test
    void activationParameterSharedOrPerColumn() {
        float[] z = {-1, -2, -4, 1};
        try (Tensor zs = t(z, 2, 2);
             Tensor y = cpu.allocate(DType.FLOAT32, 2, 2);
             Tensor shared = t(new float[] {0.5f}, 1);
             Tensor perColumn = t(new float[] {0.1f, 0.2f}, 2);
             Tensor dy = t(new float[] {1, 1, 1, 1}, 2, 2);
             Tensor dShared = cpu.allocate(DType.FLOAT32, 1);
             Tensor dPerColumn = cpu.allocate(DType.FLOAT32, 2)) {
            cpu.activationForward(ActivationKind.PRELU, zs, shared, y);
            assertArrayEquals(new float[] {-0.5f, -1f, -2f, 1f}, y.toFloatArray());
            cpu.activationForward(ActivationKind.PRELU, zs, perColumn, y);
            assertArrayEquals(new float[] {-0.1f, -0.4f, -0.4f, 1f}, y.toFloatArray(), 1e-7f);
            // d/dalpha of prelu is z where z < 0: shared sums every element, per column sums each column.
            cpu.activationParameterGradient(ActivationKind.PRELU, zs, shared, dy, dShared);
            assertArrayEquals(new float[] {-7f}, dShared.toFloatArray());
            cpu.activationParameterGradient(ActivationKind.PRELU, zs, perColumn, dy, dPerColumn);
            assertArrayEquals(new float[] {-5f, -2f}, dPerColumn.toFloatArray());
        }
    }

    @Test
    void activationParameterErrorsNameTheOpAndShapes() {
        try (Tensor z = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor y = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor wrong = cpu.allocate(DType.FLOAT32, 2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.activationForward(ActivationKind.ELU, z, wrong, y));
            assertTrue(e.getMessage().contains("elu") && e.getMessage().contains("[2]")
                    && e.getMessage().contains("[2, 3]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.activationForward(ActivationKind.LEAKY_RELU, z, null, y));
            assertTrue(e.getMessage().contains("alpha"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.activationForward(ActivationKind.SOFTMAX, z, null, y));
            assertTrue(e.getMessage().contains("softmax"), e.getMessage());
        }
    }

    @Test
    void maxoutPicksTheFirstLargestPieceAndRoutesTheGradientToIt() {
        // One row, two units of three pieces: (1, 5, 5) -> 5 at piece 1 (first of the tie); (-3, -1, -2) -> -1.
        try (Tensor z = t(new float[] {1, 5, 5, -3, -1, -2}, 1, 6);
             Tensor y = cpu.allocate(DType.FLOAT32, 1, 2);
             Tensor winner = cpu.allocate(DType.INT32, 1, 2);
             Tensor dy = t(new float[] {10, 20}, 1, 2);
             Tensor dz = t(new float[] {7, 7, 7, 7, 7, 7}, 1, 6)) {
            cpu.maxoutForward(z, 3, y, winner);
            assertArrayEquals(new float[] {5, -1}, y.toFloatArray());
            assertArrayEquals(new int[] {1, 1}, winner.toIntArray());
            cpu.maxoutBackward(dy, winner, 3, dz);
            assertArrayEquals(new float[] {0, 10, 0, 0, 20, 0}, dz.toFloatArray());
        }
    }

    @Test
    void softmaxRowsSumToOneAndSurviveHugeLogits() {
        try (Tensor z = t(new float[] {0, (float) Math.log(3), 1000, 1000, -1000, 0}, 3, 2);
             Tensor p = cpu.allocate(DType.FLOAT32, 3, 2)) {
            cpu.softmax(z, p);
            assertArrayEquals(new float[] {0.25f, 0.75f, 0.5f, 0.5f, 0f, 1f}, p.toFloatArray(), 1e-7f);
        }
    }

    @Test
    void segmentSumOfSquares() {
        try (Tensor x = t(new float[] {1, 2, 3, 4, 5}, 5);
             Tensor starts = cpu.fromHost(new int[] {0, 2, 2, 5}, 4);
             Tensor out = cpu.allocate(DType.FLOAT32, 3)) {
            cpu.segmentSumOfSquares(x, starts, out);
            assertArrayEquals(new float[] {5, 0, 50}, out.toFloatArray());
        }
    }

    /**
     * The profiled backward pass gives activationBackward's bits for dz, and the unit statistics a host
     * loop in double computes from the same derivative, added to what the accumulator held.
     */
    @Test
    void backwardWithStatisticsIsTheBackwardPassAndTheStatisticsInOnePass() {
        int rows = 9;
        int cols = 5;
        Random random = new Random(3);
        float[] z = new float[1 + rows * cols];
        float[] dy = new float[z.length];
        for (int i = 0; i < z.length; i++) {
            z[i] = i % 7 == 0 ? 0f : (float) (random.nextGaussian() * 4);
            dy[i] = (float) random.nextGaussian();
        }
        float threshold = 0.05f;
        float[] prior = new float[4 * cols];
        for (int i = 0; i < prior.length; i++) {
            prior[i] = i + 0.5f;
        }
        Object[][] cases = {{ActivationKind.RELU, null}, {ActivationKind.SIGMOID, null}, {ActivationKind.TANH, null},
            {ActivationKind.ELU, new float[] {1f}}, {ActivationKind.PRELU, new float[] {0.25f, 0f, -0.5f, 1.5f, 0.1f}},
            {ActivationKind.SWISH, new float[] {1.5f}}};
        for (Object[] c : cases) {
            ActivationKind kind = (ActivationKind) c[0];
            float[] parameter = (float[]) c[1];
            // Views one element into their buffers, as a layer's batch rows are.
            try (Tensor zBuffer = t(z, z.length);
                 Tensor dyBuffer = t(dy, dy.length);
                 Tensor yBuffer = cpu.allocate(DType.FLOAT32, z.length);
                 Tensor dzFused = cpu.allocate(DType.FLOAT32, z.length);
                 Tensor dzPlain = cpu.allocate(DType.FLOAT32, z.length);
                 Tensor param = parameter == null ? null : t(parameter, parameter.length);
                 Tensor statistics = t(prior, 4, cols)) {
                Tensor zs = zBuffer.view(1, rows, cols);
                Tensor ys = yBuffer.view(1, rows, cols);
                Tensor dys = dyBuffer.view(1, rows, cols);
                cpu.activationForward(kind, zs, param, ys);
                cpu.activationBackward(kind, zs, param, dys, dzPlain.view(1, rows, cols));
                cpu.activationBackwardWithStatistics(kind, zs, param, ys, dys,
                        dzFused.view(1, rows, cols), threshold, statistics);
                assertArrayEquals(dzPlain.toFloatArray(), dzFused.toFloatArray(), kind.id() + ": dz");

                float[] y = ys.toFloatArray();
                float[] want = prior.clone();
                double[] magnitudes = new double[want.length];
                for (int j = 0; j < cols; j++) {
                    double active = 0;
                    double saturated = 0;
                    double sum = 0;
                    double sumOfSquares = 0;
                    for (int i = 0; i < rows; i++) {
                        int e = i * cols + j;
                        double p = parameter == null ? 0 : parameter[parameter.length == 1 ? 0 : j];
                        double d = Math.abs(CpuActivations.derivative(kind, z[1 + e], p));
                        active += d != 0 ? 1 : 0;
                        saturated += d < threshold ? 1 : 0;
                        sum += y[e];
                        sumOfSquares += (double) y[e] * y[e];
                    }
                    want[j] += (float) active;
                    want[cols + j] += (float) saturated;
                    want[2 * cols + j] += (float) sum;
                    want[3 * cols + j] += (float) sumOfSquares;
                    magnitudes[2 * cols + j] = Math.abs(prior[2 * cols + j]) + absoluteSum(y, j, cols);
                    magnitudes[3 * cols + j] = Math.abs(prior[3 * cols + j]) + sumOfSquares;
                }
                float[] got = statistics.toFloatArray();
                for (int k = 0; k < want.length; k++) {
                    if (k < 2 * cols) { // the counts: exact
                        assertEquals(want[k], got[k], kind.id() + ": count " + k);
                    } else {
                        assertEquals(want[k], got[k], Tolerances.CPU_UNIT_STATISTICS_SUM_REL * magnitudes[k],
                                kind.id() + ": sum " + k);
                    }
                }

                // Without a gradient: the statistics alone (accumulateUnitStatistics) add the batch again.
                float[] dzBefore = dzFused.toFloatArray();
                cpu.accumulateUnitStatistics(kind, zs, param, ys, threshold, statistics);
                float[] twice = statistics.toFloatArray();
                for (int k = 0; k < want.length; k++) {
                    double batch = (double) want[k] - prior[k];
                    double allowed = k < 2 * cols ? 0 : 2 * Tolerances.CPU_UNIT_STATISTICS_SUM_REL * 2 * magnitudes[k];
                    assertEquals(want[k] + batch, twice[k], allowed, kind.id() + ": statistic " + k
                            + " after a second batch");
                }
                assertArrayEquals(dzBefore, dzFused.toFloatArray(), kind.id() + ": dz untouched without a gradient");
            }
        }
    }

    /** Shapes for the fused ops: single elements, odd widths, and one above the parallel threshold. */
    private static final int[][] FUSED_SHAPES = {{1, 1}, {3, 5}, {4097, 9}};

    /**
     * The parameter of each element-wise kind for the fused ops: none, the default shared by every unit,
     * or one per column (alternating signs for the kinds that allow it, and never 0 for celu's alpha).
     */
    private static List<float[]> parameterCases(ActivationKind kind, int cols) {
        if (!kind.hasParameter()) {
            return java.util.Collections.singletonList(null);
        }
        float[] perColumn = new float[cols];
        for (int j = 0; j < cols; j++) {
            perColumn[j] = 0.1f + 0.3f * j;
        }
        return List.of(new float[] {(float) kind.defaultParameter()}, perColumn);
    }

    /** Values of order 4 with zeros and the kinks (0, +-1, +-3, 6) mixed in, and one NaN. */
    private static float[] fusedInputs(int n, long seed) {
        Random random = new Random(seed);
        float[] kinks = {0f, 1f, -1f, 3f, -3f, 6f};
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = i % 11 == 0 ? kinks[(i / 11) % kinks.length] : (float) (random.nextGaussian() * 4);
        }
        x[n / 2] = Float.NaN;
        return x;
    }

    /**
     * biasActivationForward gives the bits of addRowVectorAccumulate followed by activationForward, for
     * z (which keeps the biased pre-activation) and y, on views one element into their buffers; and in
     * place (y = z) it leaves f(z + bias).
     */
    @Test
    void biasActivationForwardIsTheBiasAddThenTheActivation() {
        for (ActivationKind kind : ActivationKind.values()) {
            if (!kind.isElementWise()) {
                continue;
            }
            for (int[] shape : FUSED_SHAPES) {
                int rows = shape[0];
                int cols = shape[1];
                int n = rows * cols;
                float[] z = fusedInputs(n + 1, 7);
                float[] bias = fusedInputs(cols + 1, 8);
                for (float[] parameter : parameterCases(kind, cols)) {
                    String what = kind.id() + " " + rows + "x" + cols + (parameter == null ? ""
                            : " parameters " + parameter.length);
                    try (Tensor plainZ = t(z, n + 1);
                         Tensor fusedZ = t(z, n + 1);
                         Tensor inPlace = t(z, n + 1);
                         Tensor biasBuffer = t(bias, cols + 1);
                         Tensor plainY = t(new float[n + 1], n + 1);
                         Tensor fusedY = t(new float[n + 1], n + 1);
                         Tensor param = parameter == null ? null : t(parameter, parameter.length)) {
                        Tensor b = biasBuffer.view(1, cols);
                        cpu.addRowVectorAccumulate(plainZ.view(1, rows, cols), b);
                        cpu.activationForward(kind, plainZ.view(1, rows, cols), param, plainY.view(1, rows, cols));
                        cpu.biasActivationForward(kind, fusedZ.view(1, rows, cols), b, param,
                                fusedY.view(1, rows, cols));
                        assertArrayEquals(plainZ.toFloatArray(), fusedZ.toFloatArray(), what + ": z");
                        assertArrayEquals(plainY.toFloatArray(), fusedY.toFloatArray(), what + ": y");
                        Tensor zView = inPlace.view(1, rows, cols);
                        cpu.biasActivationForward(kind, zView, b, param, zView);
                        assertArrayEquals(plainY.toFloatArray(), inPlace.toFloatArray(), what + ": in place");
                    }
                }
            }
        }
    }

    /**
     * biasActivationBackward gives the bits of activationBackward and columnSums of its dz; with
     * statistics, of activationBackwardWithStatistics (whose statistics the test above checks) and
     * columnSums; statistics alone, of accumulateUnitStatistics.
     */
    @Test
    void biasActivationBackwardIsTheBackwardPassAndTheBiasGradient() {
        for (ActivationKind kind : ActivationKind.values()) {
            if (!kind.isElementWise()) {
                continue;
            }
            for (int[] shape : FUSED_SHAPES) {
                int rows = shape[0];
                int cols = shape[1];
                int n = rows * cols;
                float[] z = fusedInputs(n + 1, 9);
                float[] y = fusedInputs(n + 1, 10);
                float[] dy = fusedInputs(n + 1, 11);
                float[] prior = fusedInputs(4 * cols, 12);
                for (float[] parameter : parameterCases(kind, cols)) {
                    String what = kind.id() + " " + rows + "x" + cols + (parameter == null ? ""
                            : " parameters " + parameter.length);
                    try (Tensor zb = t(z, n + 1);
                         Tensor yb = t(y, n + 1);
                         Tensor dyb = t(dy, n + 1);
                         Tensor plainDz = t(new float[n + 1], n + 1);
                         Tensor fusedDz = t(new float[n + 1], n + 1);
                         Tensor plainBias = t(new float[cols + 1], cols + 1);
                         Tensor fusedBias = t(new float[cols + 1], cols + 1);
                         Tensor plainStatistics = t(prior, 4, cols);
                         Tensor fusedStatistics = t(prior, 4, cols);
                         Tensor param = parameter == null ? null : t(parameter, parameter.length)) {
                        Tensor zs = zb.view(1, rows, cols);
                        Tensor ys = yb.view(1, rows, cols);
                        Tensor dys = dyb.view(1, rows, cols);
                        Tensor plainDzs = plainDz.view(1, rows, cols);
                        Tensor fusedDzs = fusedDz.view(1, rows, cols);

                        cpu.activationBackward(kind, zs, param, dys, plainDzs);
                        cpu.columnSums(plainDzs, plainBias.view(1, cols));
                        cpu.biasActivationBackward(kind, zs, param, null, dys, fusedDzs, fusedBias.view(1, cols),
                                0.05f, null);
                        assertArrayEquals(plainDz.toFloatArray(), fusedDz.toFloatArray(), what + ": dz");
                        assertArrayEquals(plainBias.toFloatArray(), fusedBias.toFloatArray(), what + ": bias gradient");

                        cpu.fill(fusedDz, 0f);
                        cpu.fill(fusedBias, 0f);
                        cpu.activationBackwardWithStatistics(kind, zs, param, ys, dys, plainDzs, 0.05f,
                                plainStatistics);
                        cpu.biasActivationBackward(kind, zs, param, ys, dys, fusedDzs, fusedBias.view(1, cols),
                                0.05f, fusedStatistics);
                        assertArrayEquals(plainDz.toFloatArray(), fusedDz.toFloatArray(), what + ": profiled dz");
                        assertArrayEquals(plainBias.toFloatArray(), fusedBias.toFloatArray(),
                                what + ": profiled bias gradient");
                        assertArrayEquals(plainStatistics.toFloatArray(), fusedStatistics.toFloatArray(),
                                what + ": statistics");

                        cpu.accumulateUnitStatistics(kind, zs, param, ys, 0.05f, plainStatistics);
                        cpu.biasActivationBackward(kind, zs, param, ys, null, null, null, 0.05f, fusedStatistics);
                        assertArrayEquals(plainStatistics.toFloatArray(), fusedStatistics.toFloatArray(),
                                what + ": statistics alone");
                    }
                }
            }
        }
    }

    @Test
    void fusedOpsCheckTheirShapes() {
        try (Tensor z = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor y = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor dy = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor dz = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor bias = cpu.allocate(DType.FLOAT32, 3);
             Tensor wrongBias = cpu.allocate(DType.FLOAT32, 2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.biasActivationForward(ActivationKind.RELU, z, wrongBias, null, y));
            assertTrue(e.getMessage().contains("biasActivationForward(relu) (bias)") && e.getMessage().contains("3"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.biasActivationBackward(ActivationKind.RELU, z, null, null, dy, dz, wrongBias, 0f, null));
            assertTrue(e.getMessage().contains("biasActivationBackward(relu) (biasGradient)"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.biasActivationBackward(ActivationKind.RELU, z, null, null, null, null, bias, 0f, null));
            assertTrue(e.getMessage().contains("needs dy and dz"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.biasActivationForward(ActivationKind.SOFTMAX, z, bias, null, y));
            assertTrue(e.getMessage().contains("not element-wise"), e.getMessage());
        }
    }

    @Test
    void backwardWithStatisticsWantsBothGradientsOrNeither() {
        try (Tensor z = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor y = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor dy = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor statistics = cpu.allocate(DType.FLOAT32, 4, 3);
             Tensor wrongStatistics = cpu.allocate(DType.FLOAT32, 3, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.activationBackwardWithStatistics(ActivationKind.RELU, z, null, y, dy, null, 0.01f,
                            statistics));
            assertTrue(e.getMessage().contains("activationBackwardWithStatistics(relu)")
                    && e.getMessage().contains("dz"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.accumulateUnitStatistics(ActivationKind.RELU, z, null, y, 0.01f, wrongStatistics));
            assertTrue(e.getMessage().contains("accumulateUnitStatistics(relu)")
                    && e.getMessage().contains("statistics"), e.getMessage());
        }
    }

    /** A parameter buffer of {@code n} elements from {@code seed}, weights near 0.1 in size. */
    private static float[] parameters(int n, long seed) {
        Random random = new Random(seed);
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) (random.nextGaussian() * 0.1);
        }
        return values;
    }

    /**
     * The optimizer ops with {@link UpdateNorms}: the same step as without them (bit for bit), and per
     * segment the squared weight norm before the step and the squared step, as a host loop in double
     * measures them, to the float summation's accuracy. Segments span several of the backend's blocks,
     * one is empty, one is a single element; the buffers are views one element in.
     */
    @Test
    void optimizerStepsMeasureThemselvesWithoutChangingTheStep() {
        int n = 70_001;
        int[] starts = {0, 1, 1, 9, 40_000, n};
        float[] p0 = parameters(n + 1, 1);
        float[] g = parameters(n + 1, 2);
        float[] m0 = parameters(n + 1, 3);
        float[] v0 = parameters(n + 1, 4);
        for (int i = 0; i < v0.length; i++) {
            v0[i] = v0[i] * v0[i];
        }
        List<BiConsumer<Tensor[], UpdateNorms>> steps = List.of(
                (b, norms) -> cpu.adamUpdate(b[0], b[1], b[2], b[3], 0.9f, 0.999f, 1e-7f, 0.01f, norms),
                (b, norms) -> cpu.sgdUpdate(b[0], b[1], null, 0.05f, 0f, false, norms),
                (b, norms) -> cpu.sgdUpdate(b[0], b[1], b[2], 0.05f, 0.9f, true, norms));
        for (int k = 0; k < steps.size(); k++) {
            var step = steps.get(k);
            try (Tensor measuredBuffers = cpu.fromHost(concat(p0, g, m0, v0), 4, n + 1);
                 Tensor plainBuffers = cpu.fromHost(concat(p0, g, m0, v0), 4, n + 1);
                 Tensor segmentStarts = cpu.fromHost(starts, starts.length);
                 Tensor weightSquares = cpu.allocate(DType.FLOAT32, starts.length - 1);
                 Tensor updateSquares = cpu.allocate(DType.FLOAT32, starts.length - 1)) {
                Tensor[] measured = views(measuredBuffers, n);
                Tensor[] plain = views(plainBuffers, n);
                step.accept(measured, new UpdateNorms(segmentStarts, weightSquares, updateSquares));
                step.accept(plain, null);
                assertArrayEquals(plainBuffers.toFloatArray(), measuredBuffers.toFloatArray(),
                        "step " + k + ": measuring changed the step");
                float[] after = measured[0].toFloatArray();
                float[] weights = weightSquares.toFloatArray();
                float[] updates = updateSquares.toFloatArray();
                for (int s = 0; s + 1 < starts.length; s++) {
                    double wantWeights = 0;
                    double wantUpdates = 0;
                    for (int i = starts[s]; i < starts[s + 1]; i++) {
                        double before = p0[1 + i];
                        double change = after[i] - before;
                        wantWeights += before * before;
                        wantUpdates += change * change;
                    }
                    assertEquals(wantWeights, weights[s], Tolerances.CPU_UPDATE_NORMS_REL * wantWeights,
                            "step " + k + " segment " + s + " weights");
                    assertEquals(wantUpdates, updates[s], Tolerances.CPU_UPDATE_NORMS_REL * wantUpdates,
                            "step " + k + " segment " + s + " updates");
                }
                assertEquals(0f, weights[1], "the empty segment");
            }
        }
    }

    @Test
    void updateNormsMustCoverTheParameters() {
        try (Tensor p = cpu.allocate(DType.FLOAT32, 10);
             Tensor g = cpu.allocate(DType.FLOAT32, 10);
             Tensor short1 = cpu.fromHost(new int[] {0, 4, 9}, 3);
             Tensor out = cpu.allocate(DType.FLOAT32, 2);
             Tensor wrongLength = cpu.allocate(DType.FLOAT32, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.sgdUpdate(p, g, null, 0.1f, 0f, false, new UpdateNorms(short1, out, out)));
            assertTrue(e.getMessage().contains("cover all 10"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.sgdUpdate(p, g, null, 0.1f, 0f, false, new UpdateNorms(short1, out, wrongLength)));
            assertTrue(e.getMessage().contains("sgdUpdate") && e.getMessage().contains("updateSquares"), e.getMessage());
        }
    }

    @Test
    void updateNormsAlsoGoIntoTheTablesRowAndARowOutsideIsAnError() {
        try (Tensor p = cpu.fromHost(new float[] {1, 2, 3, 4}, 4);
             Tensor g = cpu.fromHost(new float[] {1, 1, 1, 1}, 4);
             Tensor starts = cpu.fromHost(new int[] {0, 1, 4}, 3);
             Tensor weights = cpu.allocate(DType.FLOAT32, 2);
             Tensor updates = cpu.allocate(DType.FLOAT32, 2);
             Tensor table = cpu.fromHost(new float[] {9, 9, 9, 9, 9, 9, 9, 9}, 2, 2, 2);
             Tensor row = cpu.fromHost(new int[] {1}, 1);
             Tensor outside = cpu.fromHost(new int[] {2}, 1);
             Tensor narrow = cpu.allocate(DType.FLOAT32, 2, 3)) {
            cpu.sgdUpdate(p, g, null, 0.5f, 0f, false, new UpdateNorms(starts, weights, updates, table, row));
            // Weights before the step: 1 and 4 + 9 + 16; each element moved by 0.5.
            assertArrayEquals(new float[] {9, 9, 9, 9, 1, 29, 0.25f, 0.75f}, table.toFloatArray());
            assertThrows(IndexOutOfBoundsException.class,
                    () -> cpu.sgdUpdate(p, g, null, 0.5f, 0f, false, new UpdateNorms(starts, weights, updates, table,
                            outside)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.sgdUpdate(p, g, null, 0.5f, 0f, false, new UpdateNorms(starts, weights, updates, narrow,
                            row)));
            assertTrue(e.getMessage().contains("needs rows of 4 elements"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new UpdateNorms(starts, weights, updates, table, null));
        }
    }

    /** The sum of |x[i][column]| over the rows of a [rows, cols] array. */
    private static double absoluteSum(float[] x, int column, int cols) {
        double sum = 0;
        for (int i = column; i < x.length; i += cols) {
            sum += Math.abs(x[i]);
        }
        return sum;
    }

    private static float[] concat(float[]... parts) {
        float[] all = new float[Arrays.stream(parts).mapToInt(a -> a.length).sum()];
        int at = 0;
        for (float[] part : parts) {
            System.arraycopy(part, 0, all, at, part.length);
            at += part.length;
        }
        return all;
    }

    /** Row r of {@code buffers}, from its second element: n elements one element into their row. */
    private static Tensor[] views(Tensor buffers, int n) {
        Tensor[] views = new Tensor[buffers.rowCount()];
        for (int r = 0; r < views.length; r++) {
            views[r] = buffers.view((long) r * (n + 1) + 1, n);
        }
        return views;
    }

    @Test
    void gatherRowsScalesBytesAsUnsignedAndChecksIndices() {
        byte[] pixels = {0, (byte) 255, (byte) 128, 1, 2, 3};
        try (Tensor source = cpu.fromHost(pixels, 3, 2);
             Tensor order = cpu.fromHost(new int[] {2, 0, 1, 7}, 4);
             Tensor out = cpu.allocate(DType.FLOAT32, 2, 2)) {
            cpu.gatherRows(source, order, 1, 0.5f, out);
            assertArrayEquals(new float[] {0f, 127.5f, 64f, 0.5f}, out.toFloatArray());
            cpu.gatherRows(source, order, 0, 1f, out);
            assertArrayEquals(new float[] {2, 3, 0, 255}, out.toFloatArray());
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                    () -> cpu.gatherRows(source, order, 2, 1f, out));
            assertTrue(e.getMessage().contains("index 7"), e.getMessage());
        }
    }

    // ---- the step's changing values on the device: each counter form is its host-scalar op ----------

    @Test
    void gatherRowsAtACounterIsTheGatherFromCounterTimesRows() {
        byte[] pixels = new byte[7 * 3];
        float[] floats = new float[7 * 3];
        Random random = new Random(3);
        random.nextBytes(pixels);
        for (int i = 0; i < floats.length; i++) {
            floats[i] = (float) random.nextGaussian();
        }
        int[] order = {6, 2, 0, 5, 1, 4, 3};
        try (Tensor bytes = cpu.fromHost(pixels, 7, 3);
             Tensor values = t(floats, 7, 3);
             Tensor indices = cpu.fromHost(order, order.length);
             Tensor counter = cpu.allocate(DType.INT32, 1);
             Tensor expected = cpu.allocate(DType.FLOAT32, 3, 3);
             Tensor actual = cpu.allocate(DType.FLOAT32, 3, 3)) {
            for (int count = 0; count < 3; count++) {
                Tensor last = actual.rows(0, count == 2 ? 1 : 3); // the last batch of 7 rows in 3s has 1 row
                cpu.copyFromHost(new int[] {count}, counter);
                for (Tensor source : new Tensor[] {bytes, values}) {
                    cpu.gatherRows(source, indices, count * 3, 0.25f, expected.rows(0, last.rowCount()));
                    cpu.gatherRows(source, indices, counter, 3, 0.25f, last);
                    assertArrayEquals(expected.rows(0, last.rowCount()).toFloatArray(), last.toFloatArray(),
                            source.dtype() + " at count " + count);
                }
            }
            cpu.copyFromHost(new int[] {2}, counter);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.gatherRows(bytes, indices, counter, 3, 1f, actual));
            assertTrue(e.getMessage().contains("[6, 9)") && e.getMessage().contains("7 indices"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> cpu.gatherRows(bytes, indices, expected, 3, 1f, actual), "a FLOAT32 counter");
        }
    }

    /**
     * The next batch fetched ahead: the batch gather at the counter, then the counter advanced; the epoch's
     * last, smaller batch fills the rows it has and leaves the rest alone; the fetch after it gathers nothing.
     */
    @Test
    void gatherNextBatchGathersTheRowsThereAreAndAdvances() {
        byte[] pixels = new byte[7 * 3];
        new Random(5).nextBytes(pixels);
        float[] labels = new float[7 * 2];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = i;
        }
        int[] order = {6, 2, 0, 5, 1, 4, 3};
        try (Tensor features = cpu.fromHost(pixels, 7, 3);
             Tensor targets = t(labels, 7, 2);
             Tensor indices = cpu.fromHost(order, order.length);
             Tensor counter = cpu.allocate(DType.INT32, 1);
             Tensor x = cpu.allocate(DType.FLOAT32, 3, 3);
             Tensor y = cpu.allocate(DType.FLOAT32, 3, 2);
             Tensor wantX = cpu.allocate(DType.FLOAT32, 3, 3);
             Tensor wantY = cpu.allocate(DType.FLOAT32, 3, 2)) {
            cpu.fill(x, -9f);
            cpu.fill(y, -9f);
            cpu.fill(wantX, -9f);
            cpu.fill(wantY, -9f);
            for (int count = 0; count < 4; count++) { // 7 rows in 3s: 3, 3, 1, then none
                int rows = Math.max(0, Math.min(3, 7 - 3 * count));
                if (rows > 0) {
                    cpu.gatherRows(features, indices, 3 * count, 0.5f, wantX.rows(0, rows));
                    cpu.gatherRows(targets, indices, 3 * count, 1f, wantY.rows(0, rows));
                }
                cpu.gatherNextBatch(features, 0.5f, targets, indices, counter, 3, x, y);
                assertArrayEquals(wantX.toFloatArray(), x.toFloatArray(), "features at count " + count);
                assertArrayEquals(wantY.toFloatArray(), y.toFloatArray(), "targets at count " + count);
                assertArrayEquals(new int[] {count + 1}, counter.toIntArray(), "advanced past batch " + count);
            }
            cpu.copyFromHost(new int[] {-1}, counter);
            IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                    () -> cpu.gatherNextBatch(features, 1f, targets, indices, counter, 3, x, y));
            assertTrue(negative.getMessage().contains("counter -1"), negative.getMessage());
            IllegalArgumentException rows = assertThrows(IllegalArgumentException.class,
                    () -> cpu.gatherNextBatch(features, 1f, targets, indices, counter, 3, x, y.rows(0, 2)));
            assertTrue(rows.getMessage().startsWith("gatherNextBatch: ") && rows.getMessage().contains("row counts"),
                    rows.getMessage());
        }
    }

    @Test
    void copyToRowStoresIntoTheRowTheCounterSelects() {
        try (Tensor table = cpu.allocate(DType.FLOAT32, 3, 2);
             Tensor src = t(new float[] {4, -5}, 2);
             Tensor row = cpu.fromHost(new int[] {1}, 1)) {
            cpu.copyToRow(src, table, row);
            assertArrayEquals(new float[] {0, 0, 4, -5, 0, 0}, table.toFloatArray());
            cpu.copyFromHost(new int[] {3}, row);
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                    () -> cpu.copyToRow(src, table, row));
            assertTrue(e.getMessage().contains("row 3") && e.getMessage().contains("3 rows"), e.getMessage());
            IllegalArgumentException wrongWidth = assertThrows(IllegalArgumentException.class,
                    () -> cpu.copyToRow(src, table.reshape(2, 3), row));
            assertTrue(wrongWidth.getMessage().contains("[2, 3]") && wrongWidth.getMessage().contains("[2]"),
                    wrongWidth.getMessage());
        }
    }

    @Test
    void advanceCountersAddsOneToEach() {
        try (Tensor counters = cpu.fromHost(new int[] {0, 41, -1}, 3)) {
            cpu.advanceCounters(counters);
            assertArrayEquals(new int[] {1, 42, 0}, counters.toIntArray());
            assertThrows(IllegalArgumentException.class, () -> cpu.advanceCounters(t(new float[] {1}, 1)));
        }
    }

    /**
     * Adam's step size computed from the device count is the one the host computed before counts moved to the
     * device, Keras's lr sqrt(1 - beta2^t) / (1 - beta1^t) with Math.pow, rounded to float: the powers by
     * squaring (which a GPU does with the same operations) change no bit of it at these settings.
     */
    @Test
    void adamStepSizeFromTheCountIsTheHostFormula() {
        double[][] settings = {{1e-3, 0.9, 0.999}, {3e-4, 0.8, 0.99}, {0.1, 0.5, 0.9}};
        for (double[] h : settings) {
            for (long t = 1; t <= 100_000; t++) {
                float host = (float) (h[0] * Math.sqrt(1 - Math.pow(h[2], t)) / (1 - Math.pow(h[1], t)));
                assertEquals(host, dev.gradscope.tensor.Backend.adamStepSize(h[0], h[1], h[2], t),
                        Arrays.toString(h) + " at t=" + t);
            }
        }
    }

    @Test
    void adamUpdateAtACounterIsTheUpdateWithTheHostStepSize() {
        int n = 4099;
        int[] starts = {0, 3, 3, 4000, n};
        Random random = new Random(11);
        float[] p = new float[n];
        float[] g = new float[n];
        float[] m = new float[n];
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = (float) random.nextGaussian();
            g[i] = (float) random.nextGaussian();
            m[i] = (float) (0.1 * random.nextGaussian());
            v[i] = (float) Math.abs(0.01 * random.nextGaussian());
        }
        for (int iterations : new int[] {0, 1, 9, 12_344}) {
            for (boolean measured : new boolean[] {false, true}) {
                String what = "iterations " + iterations + (measured ? " measured" : "");
                float stepSize = dev.gradscope.tensor.Backend.adamStepSize(2e-3, 0.85, 0.995, iterations + 1L);
                try (Tensor hostP = t(p, n); Tensor hostM = t(m, n); Tensor hostV = t(v, n);
                     Tensor countP = t(p, n); Tensor countM = t(m, n); Tensor countV = t(v, n);
                     Tensor grads = t(g, n);
                     Tensor count = cpu.fromHost(new int[] {iterations}, 1);
                     Tensor segmentStarts = cpu.fromHost(starts, starts.length);
                     Tensor hostNorms = cpu.allocate(DType.FLOAT32, 2, 4);
                     Tensor countNorms = cpu.allocate(DType.FLOAT32, 2, 4)) {
                    cpu.adamUpdate(hostP, grads, hostM, hostV, (float) 0.85, (float) 0.995, 1e-7f, stepSize,
                            measured ? norms(segmentStarts, hostNorms) : null);
                    cpu.adamUpdate(countP, grads, countM, countV, 2e-3, 0.85, 0.995, 1e-7f, count,
                            measured ? norms(segmentStarts, countNorms) : null);
                    assertArrayEquals(hostP.toFloatArray(), countP.toFloatArray(), what + " params");
                    assertArrayEquals(hostM.toFloatArray(), countM.toFloatArray(), what + " m");
                    assertArrayEquals(hostV.toFloatArray(), countV.toFloatArray(), what + " v");
                    assertArrayEquals(hostNorms.toFloatArray(), countNorms.toFloatArray(), what + " norms");
                    assertArrayEquals(new int[] {iterations + 1}, count.toIntArray(), what + ": the update is counted");
                }
            }
        }
    }

    private static UpdateNorms norms(Tensor segmentStarts, Tensor weightAndUpdate) {
        int segments = weightAndUpdate.columnCount();
        return new UpdateNorms(segmentStarts, weightAndUpdate.rows(0, 1).reshape(segments),
                weightAndUpdate.rows(1, 1).reshape(segments));
    }

    @Test
    void fillCopyAndHostRoundTrips() {
        try (Tensor a = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor b = cpu.allocate(DType.FLOAT32, 6)) {
            assertArrayEquals(new float[6], a.toFloatArray(), "allocate zero-fills");
            cpu.fill(a.rows(1, 1), 2.5f);
            cpu.copy(a, b);
            assertArrayEquals(new float[] {0, 0, 0, 2.5f, 2.5f, 2.5f}, b.toFloatArray());
            assertThrows(IllegalArgumentException.class, () -> cpu.copyFromHost(new float[5], b));
        }
    }

    @Test
    void gemmShapeErrorNamesEveryShape() {
        try (Tensor a = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor b = cpu.allocate(DType.FLOAT32, 4, 5);
             Tensor c = cpu.allocate(DType.FLOAT32, 2, 5)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.gemm(false, false, 1f, a, b, 0f, c));
            assertTrue(e.getMessage().contains("[2, 3]") && e.getMessage().contains("[4, 5]")
                    && e.getMessage().contains("[2, 5]"), e.getMessage());
        }
    }

    @Test
    void gemmThroughTheBackendOnViews() {
        // [[1, 2], [3, 4]] x [[5, 6], [7, 8]] = [[19, 22], [43, 50]]; a is the second half of a buffer.
        try (Tensor buffer = t(new float[] {0, 0, 0, 0, 1, 2, 3, 4}, 8);
             Tensor b = t(new float[] {5, 6, 7, 8}, 2, 2);
             Tensor c = t(new float[] {1, 1, 1, 1}, 2, 2)) {
            Tensor a = buffer.view(4, 2, 2);
            cpu.gemm(false, false, 1f, a, b, 0f, c);
            assertArrayEquals(new float[] {19, 22, 43, 50}, c.toFloatArray());
            cpu.gemm(true, false, 1f, a, b, 1f, c); // aᵀ b = [[26, 30], [38, 44]], plus c
            assertArrayEquals(new float[] {45, 52, 81, 94}, c.toFloatArray());
        }
    }

    /**
     * Batch normalization refuses a tensor it writes over another operand, on the CPU too, although its loops here
     * would compute it: the GPU's blocks add every row of a column while others overwrite theirs (the contract is
     * the same on every backend). The message names both tensors and the elements of the storage each spans.
     * Inference in place (y == x, element by element) is allowed, and so are disjoint views of one storage.
     */
    @Test
    void batchNormRefusesWritingOverAnotherOperand() {
        try (Tensor buffer = t(new float[] {1, 2, 3, 6, 0, 0, 0, 0}, 8);
             Tensor gamma = t(new float[] {1, 1}, 2);
             Tensor beta = t(new float[] {0, 0}, 2);
             Tensor mean = t(new float[] {2, 4}, 2);
             Tensor variance = t(new float[] {1, 4}, 2);
             Tensor batchMean = cpu.allocate(DType.FLOAT32, 2);
             Tensor batchInvStd = cpu.allocate(DType.FLOAT32, 2);
             Tensor dGamma = cpu.allocate(DType.FLOAT32, 2);
             Tensor dBeta = cpu.allocate(DType.FLOAT32, 2)) {
            Tensor x = buffer.view(0, 2, 2);
            Tensor shifted = buffer.view(2, 2, 2); // x's second row and the next one
            Tensor after = buffer.view(4, 2, 2);   // the elements after x
            IllegalArgumentException forward = assertThrows(IllegalArgumentException.class,
                    () -> cpu.batchNormTrainingForward(x, gamma, beta, 0.9, 1e-3f, mean, variance, batchMean,
                            batchInvStd, x));
            assertEquals("batchNormTrainingForward: y Tensor[2, 2] FLOAT32 on cpu at [0, 4) overlaps x Tensor[2, 2]"
                    + " FLOAT32 on cpu at [0, 4) in one storage; y must not share memory with x", forward.getMessage());
            IllegalArgumentException dxOverDy = assertThrows(IllegalArgumentException.class,
                    () -> cpu.batchNormBackward(after, gamma, mean, variance, shifted, x, dGamma, dBeta));
            assertEquals("batchNormBackward: dx Tensor[2, 2] FLOAT32 on cpu at [0, 4) overlaps dy Tensor[2, 2]"
                    + " FLOAT32 on cpu at [2, 6) in one storage; dx must not share memory with dy", dxOverDy.getMessage());
            IllegalArgumentException dxOverX = assertThrows(IllegalArgumentException.class,
                    () -> cpu.batchNormBackward(shifted, gamma, mean, variance, after, x, dGamma, dBeta));
            assertTrue(dxOverX.getMessage().contains("dx Tensor[2, 2] FLOAT32 on cpu at [0, 4) overlaps x"),
                    dxOverX.getMessage());
            IllegalArgumentException gradientOverGamma = assertThrows(IllegalArgumentException.class,
                    () -> cpu.batchNormBackward(x, gamma, mean, variance, after, null, gamma, dBeta));
            assertTrue(gradientOverGamma.getMessage().contains("dGamma must not share memory with gamma"),
                    gradientOverGamma.getMessage());
            IllegalArgumentException inferenceShifted = assertThrows(IllegalArgumentException.class,
                    () -> cpu.batchNormInferenceForward(x, gamma, beta, mean, variance, 1e-30f, shifted));
            assertTrue(inferenceShifted.getMessage().contains("y Tensor[2, 2] FLOAT32 on cpu at [2, 6) overlaps x"),
                    inferenceShifted.getMessage());

            // Disjoint views of one storage: dy is x's elements, dx the ones after them.
            cpu.batchNormBackward(x, gamma, mean, variance, x, after, dGamma, dBeta);
            // In place: (x - mean) * invStd with invStd (float) (1 / sqrt(var + 1e-30)) = 1 and 0.5.
            cpu.batchNormInferenceForward(x, gamma, beta, mean, variance, 1e-30f, x);
            assertArrayEquals(new float[] {-1, -1, 1, 1}, x.toFloatArray());
        }
    }
}
