package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuActivations;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adagrad;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Adamax;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Nadam;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.RmsProp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.GradientNorms;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.tensor.UpdateNorms;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.History;
import dev.gradscope.train.Profile;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.IntToDoubleFunction;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every {@link dev.gradscope.tensor.Backend} op on the GPU against {@link CpuBackend}, the reference: fresh
 * random inputs of awkward sizes (1, 3, 1000, 4097, 256x784 ...) with the edge values mixed in (0, -0,
 * +-1e-7, +-20 and every kink), each GPU input once 16-byte aligned and once shifted by one element (so
 * both the vector and the scalar paths of the kernels run), and every GPU output poisoned with NaN and
 * framed by NaN guard elements, so that an element a kernel forgets to write, or one it writes past the
 * end, fails. Tolerances are the named {@code GPU_*} constants of {@link Tolerances}; a failure prints
 * the first differing pairs and the worst one.
 *
 * <p>Tagged {@code gpu}. Without a usable CUDA device every test is skipped by an assumption whose
 * message is {@link CudaBackend#unavailableReason()}, so the test report lists each test as skipped and
 * says why. When the reason is empty but the backend fails to open, every test fails instead: that is a
 * defect, not a missing GPU.
 */
@Tag("gpu")
class CudaBackendTest {
    private static final long SEED = 0x6D2B_79F5L;
    private static final Optional<String> UNAVAILABLE = CudaBackend.unavailableReason();
    private static final CpuBackend CPU = new CpuBackend();
    private static CudaBackend gpu;
    private static RuntimeException openFailure;

    /** Edge values mixed into every input: zeros, tiny values, large values and every kink. */
    private static final float[] EDGES = {0f, -0f, 1e-7f, -1e-7f, 20f, -20f, 1f, -1f, 3f, -3f, 6f, -6f, 0.5f,
        -0.5f, 1e-3f, -1e-3f};

    /** Matrix shapes: 1s, 3s, odd widths, a tall 4097-row panel and the MLP's first layer. */
    private static final int[][] SHAPES = {{1, 1}, {1, 3}, {3, 1}, {3, 5}, {1000, 10}, {4097, 3}, {256, 784}};

    /**
     * Shapes of the fused dense-layer ops: SHAPES, and the chapter's hidden layers at batch 256 and at the
     * last batch of an epoch (96 rows): widths of 32 columns and more, so the 32-column tiles are full,
     * and multiples of 4, so the aligned layout takes the 16-byte path; 33 columns leave a tile of one.
     */
    private static final int[][] FUSED_SHAPES = {{1, 1}, {1, 3}, {3, 5}, {1000, 10}, {4097, 3}, {256, 784},
        {256, 512}, {96, 256}, {256, 64}, {17, 33}};

    /**
     * Shapes of batch normalization: {@link #FUSED_SHAPES} (a pass of up to 256 rows is one kernel; 1000 and 4097 rows
     * take two, the statistics by slices and an element-wise pass), and the edges of the slicing (Launch): 1 row and
     * 256 in one kernel (1 and 8 slices of 32 rows) at widths that are not multiples of 32; 257 rows in two kernels
     * (9 slices of 32, the last of 1 row); 300 x 70 (10 slices, the last of 12 rows); and 70000 x 64, the most
     * slices (63 of 1120 rows, the last of 560).
     */
    private static final int[][] BATCH_NORM_SHAPES = Stream.concat(Arrays.stream(FUSED_SHAPES), Stream.of(
            new int[] {1, 70}, new int[] {256, 45}, new int[] {257, 33}, new int[] {300, 70}, new int[] {70000, 64}))
            .toArray(int[][]::new);

    /** Where a GPU tensor starts: at its block's start (16-byte aligned) or one element in (misaligned). */
    private enum Layout {
        ALIGNED(0), SHIFTED(1);

        final int offset;

        Layout(int offset) {
            this.offset = offset;
        }
    }

    /** Guard elements after each output view (and the shifted one's element before it). */
    private static final int GUARD = 7;

    private final List<Tensor> owned = new ArrayList<>();
    private final Map<Tensor, Runnable> guardChecks = new IdentityHashMap<>();
    private SplittableRandom rng;

    @BeforeAll
    static void openGpu() {
        if (UNAVAILABLE.isEmpty()) {
            try {
                gpu = new CudaBackend();
            } catch (RuntimeException e) {
                openFailure = e;
            }
        }
    }

    @AfterAll
    static void closeGpu() {
        if (gpu != null) {
            gpu.close();
        }
    }

    @BeforeEach
    void requireGpu(org.junit.jupiter.api.TestInfo test) {
        assumeTrue(UNAVAILABLE.isEmpty(), () -> "no usable CUDA device: " + UNAVAILABLE.orElse(""));
        if (openFailure != null) {
            throw new AssertionError("CUDA looks usable here, but the backend did not open", openFailure);
        }
        rng = new SplittableRandom(SEED ^ test.getDisplayName().hashCode() ^ test.getTestMethod().map(
                m -> m.getName().hashCode()).orElse(0));
    }

    @AfterEach
    void closeTensors() {
        for (Tensor t : owned) {
            t.close();
        }
        owned.clear();
        guardChecks.clear();
    }

    // ---- memory ---------------------------------------------------------------------------------------

    @Test
    void allocateGivesZerosEvenInAReusedBlock() {
        for (int n : new int[] {1, 3, 4097}) {
            // Dirty a block, free it, and allocate the same size again: the arena hands the block back.
            gpu.fromHost(nans(n), n).close();
            try (Tensor f = gpu.allocate(DType.FLOAT32, n)) {
                assertClose("FLOAT32 [" + n + "]", new float[n], f.toFloatArray(), i -> Tolerances.GPU_EXACT);
            }
            gpu.fromHost(filled(n, -7), n).close();
            try (Tensor ints = gpu.allocate(DType.INT32, n)) {
                assertArrayEquals(new int[n], ints.toIntArray(), "INT32 [" + n + "]");
            }
            try (Tensor bytes = gpu.allocate(DType.UINT8, 1, n); Tensor idx = gpu.fromHost(new int[] {0}, 1);
                 Tensor out = gpu.fromHost(nans(n), 1, n)) {
                gpu.gatherRows(bytes, idx, 0, 1f, out);
                assertClose("UINT8 [" + n + "]", new float[n], out.toFloatArray(), i -> Tolerances.GPU_EXACT);
            }
        }
    }

    @Test
    void hostCopiesRoundTripIntoViews() {
        for (int n : new int[] {0, 1, 3, 1000, 4097}) {
            float[] f = inputs(n, 3);
            int[] ints = rng.ints(n).toArray();
            assertArrayEquals(f, own(gpu.fromHost(f, n)).toFloatArray(), "floats [" + n + "]");
            assertArrayEquals(ints, own(gpu.fromHost(ints, n)).toIntArray(), "ints [" + n + "]");
            Tensor floatBacking = own(gpu.fromHost(nans(n + 2), n + 2));
            Tensor view = floatBacking.view(1, n);
            gpu.copyFromHost(f, view);
            assertArrayEquals(f, view.toFloatArray(), "float view [" + n + "] at 1");
            float[] whole = floatBacking.toFloatArray();
            assertTrue(Float.isNaN(whole[0]) && Float.isNaN(whole[n + 1]), "copyFromHost wrote outside its view");
            Tensor intBacking = own(gpu.fromHost(new int[n + 2], n + 2));
            Tensor intView = intBacking.view(1, n);
            gpu.copyFromHost(ints, intView);
            assertArrayEquals(ints, intView.toIntArray(), "int view [" + n + "] at 1");
        }
        assertThrows(IllegalArgumentException.class, () -> gpu.copyFromHost(new float[2], own(gpu.allocate(
                DType.FLOAT32, 3))));
        assertThrows(IllegalArgumentException.class, () -> gpu.toHostFloats(own(gpu.allocate(DType.INT32, 3))));
    }

    @Test
    void copyMovesEveryDTypeBetweenViews() {
        for (int n : new int[] {1, 3, 4097}) {
            for (Layout from : Layout.values()) {
                for (Layout to : Layout.values()) {
                    String what = "copy [" + n + "] " + from + " -> " + to;
                    float[] f = inputs(n, 2);
                    Tensor out = output(to, DType.FLOAT32, n);
                    gpu.copy(input(f, from, n), out);
                    assertClose(what, f, read(out), i -> Tolerances.GPU_EXACT);

                    int[] ints = rng.ints(n).toArray();
                    Tensor intsOut = own(gpu.allocate(DType.INT32, n + 1)).view(to.offset, n);
                    gpu.copy(own(gpu.fromHost(ints, n)), intsOut);
                    assertArrayEquals(ints, intsOut.toIntArray(), what + " INT32");

                    byte[] bytes = randomBytes(n);
                    Tensor bytesOut = own(gpu.allocate(DType.UINT8, n + 1)).view(to.offset, 1, n);
                    gpu.copy(own(gpu.fromHost(bytes, 1, n)), bytesOut);
                    assertClose(what + " UINT8", unsigned(bytes, 1f), gatherAll(bytesOut, 1, n, 1f),
                            i -> Tolerances.GPU_EXACT);
                }
            }
        }
        Tensor same = own(gpu.fromHost(inputs(8, 1), 8));
        assertThrows(IllegalArgumentException.class, () -> gpu.copy(same.view(0, 4), same.view(2, 4)),
                "overlapping views");
    }

    @Test
    void fillWritesExactlyItsView() {
        for (int n : new int[] {1, 3, 4097, 256 * 784}) {
            for (Layout layout : Layout.values()) {
                for (float value : new float[] {0f, -1e-7f, 20f}) {
                    Tensor t = output(layout, DType.FLOAT32, n);
                    gpu.fill(t, value);
                    assertClose("fill [" + n + "] " + layout + " with " + value, filled(n, value), read(t),
                            i -> Tolerances.GPU_EXACT);
                }
            }
        }
    }

    @Test
    void synchronizeReturnsAfterQueuedWork() {
        Tensor t = own(gpu.allocate(DType.FLOAT32, 1 << 20));
        for (int i = 0; i < 10; i++) {
            gpu.fill(t, i);
        }
        gpu.synchronize();
        assertEquals(9f, t.toFloatArray()[(1 << 20) - 1]);
    }

    // ---- dense layers ---------------------------------------------------------------------------------

    @ParameterizedTest(name = "transposeA={0} transposeB={1}")
    @CsvSource({"false, false", "false, true", "true, false", "true, true"})
    void gemmMatchesTheCpuInEveryTransposeCase(boolean transposeA, boolean transposeB) {
        int[][] mnk = {{1, 1, 1}, {3, 5, 7}, {1, 4097, 3}, {4097, 1, 3}, {256, 784, 64}, {64, 10, 784},
            {1000, 10, 4097}, {17, 33, 1}};
        for (int[] s : mnk) {
            int m = s[0];
            int n = s[1];
            int k = s[2];
            int[] aShape = transposeA ? new int[] {k, m} : new int[] {m, k};
            int[] bShape = transposeB ? new int[] {n, k} : new int[] {k, n};
            float[] a = inputs(m * k, 1);
            float[] b = inputs(k * n, 1);
            float[][] alphaBeta = {{1f, 0f}, {0.75f, -0.5f}};
            for (float[] ab : alphaBeta) {
                float alpha = ab[0];
                float beta = ab[1];
                float[] c0 = beta == 0 ? nans(m * n) : inputs(m * n, 1);
                String what = String.format(Locale.ROOT, "gemm(%b, %b) m=%d n=%d k=%d alpha=%s beta=%s", transposeA,
                        transposeB, m, n, k, alpha, beta);
                Tensor cpuC = cpu(c0, m, n);
                CPU.gemm(transposeA, transposeB, alpha, cpu(a, aShape), cpu(b, bShape), beta, cpuC);
                float[] expected = cpuC.toFloatArray();
                // |op(a)| |op(b)|: the scale of each element's rounding error.
                Tensor magnitude = cpu(new float[m * n], m, n);
                CPU.gemm(transposeA, transposeB, 1f, cpu(abs(a), aShape), cpu(abs(b), bShape), 0f, magnitude);
                float[] scale = magnitude.toFloatArray();

                for (Layout layout : Layout.values()) {
                    Tensor gpuC = output(layout, DType.FLOAT32, m, n);
                    if (beta != 0) {
                        gpu.copyFromHost(c0, gpuC);
                    }
                    gpu.gemm(transposeA, transposeB, alpha, input(a, layout, aShape), input(b, layout, bShape), beta,
                            gpuC);
                    float[] actual = read(gpuC);
                    double sqrtK = Math.sqrt(k);
                    assertClose(what + " " + layout + ", element bound", expected, actual,
                            i -> Tolerances.GPU_GEMM_ELEMENT_REL * sqrtK * (Math.abs(alpha) * scale[i]
                                    + (beta == 0 ? 0 : Math.abs(beta * c0[i]))) + Float.MIN_NORMAL);
                    double error = 0;
                    double norm = 0;
                    for (int i = 0; i < expected.length; i++) {
                        error += sq(actual[i] - expected[i]);
                        norm += sq(expected[i]);
                    }
                    assertTrue(Math.sqrt(error) <= Tolerances.GPU_GEMM_NORM_REL * sqrtK * Math.sqrt(norm),
                            what + " " + layout + ": ||gpu - cpu|| = " + Math.sqrt(error) + ", ||cpu|| = "
                                    + Math.sqrt(norm));
                }
            }
        }
    }

    @Test
    void gemmWithEmptyInnerDimensionOrZeroAlphaOnlyScalesC() {
        float[] c0 = inputs(12, 1);
        for (float beta : new float[] {0f, 1f, 2f}) {
            // k = 0: a and b are empty; alpha = 0: a holds NaN, which must not be read.
            Tensor cpuC = cpu(c0, 3, 4);
            CPU.gemm(false, false, 1f, cpu(new float[0], 3, 0), cpu(new float[0], 0, 4), beta, cpuC);
            Tensor gpuC = output(Layout.SHIFTED, DType.FLOAT32, 3, 4);
            gpu.copyFromHost(c0, gpuC);
            gpu.gemm(false, false, 1f, own(gpu.allocate(DType.FLOAT32, 3, 0)), own(gpu.allocate(DType.FLOAT32, 0, 4)),
                    beta, gpuC);
            assertClose("k = 0, beta " + beta, cpuC.toFloatArray(), read(gpuC), i -> Tolerances.GPU_EXACT);

            Tensor gpuC2 = output(Layout.ALIGNED, DType.FLOAT32, 3, 4);
            gpu.copyFromHost(c0, gpuC2);
            gpu.gemm(true, false, 0f, own(gpu.fromHost(nans(15), 5, 3)), own(gpu.fromHost(nans(20), 5, 4)), beta,
                    gpuC2);
            assertClose("alpha = 0, beta " + beta, cpuC.toFloatArray(), read(gpuC2), i -> Tolerances.GPU_EXACT);
        }
    }

    /**
     * setTf32(true) switches cuBLAS to TF32 tensor cores: the MLP's GEMM shapes move off the FP32 result by
     * more than FP32 rounding can and stay within TF32 rounding; setTf32(false) gives the FP32 bits again.
     */
    @Test
    void tf32GemmsRoundTheirInputsAndSwitchBack() {
        assertTrue(gpu.tf32Unavailable().isEmpty(), "an H100 or H200 does TF32: " + gpu.tf32Unavailable());
        int[][] mnk = {{256, 512, 784}, {784, 512, 256}, {256, 784, 512}};
        for (int[] s : mnk) {
            int m = s[0];
            int n = s[1];
            int k = s[2];
            float[] a = inputs(m * k, 1);
            float[] b = inputs(k * n, 1);
            String what = "gemm m=" + m + " n=" + n + " k=" + k;
            Tensor cpuC = cpu(new float[m * n], m, n);
            CPU.gemm(false, false, 1f, cpu(a, m, k), cpu(b, k, n), 0f, cpuC);
            float[] expected = cpuC.toFloatArray();
            Tensor magnitude = cpu(new float[m * n], m, n);
            CPU.gemm(false, false, 1f, cpu(abs(a), m, k), cpu(abs(b), k, n), 0f, magnitude);
            float[] scale = magnitude.toFloatArray();
            Tensor ga = input(a, Layout.ALIGNED, m, k);
            Tensor gb = input(b, Layout.ALIGNED, k, n);
            Tensor fp32 = output(Layout.ALIGNED, DType.FLOAT32, m, n);
            Tensor tf32 = output(Layout.ALIGNED, DType.FLOAT32, m, n);
            Tensor again = output(Layout.ALIGNED, DType.FLOAT32, m, n);
            gpu.gemm(false, false, 1f, ga, gb, 0f, fp32);
            try {
                gpu.setTf32(true);
                assertTrue(gpu.tf32());
                gpu.gemm(false, false, 1f, ga, gb, 0f, tf32);
            } finally {
                gpu.setTf32(false);
            }
            assertTrue(!gpu.tf32());
            gpu.gemm(false, false, 1f, ga, gb, 0f, again);
            float[] rounded = read(tf32);
            assertClose(what + " TF32", expected, rounded,
                    i -> Tolerances.GPU_TF32_GEMM_ELEMENT_REL * scale[i] + Float.MIN_NORMAL);
            double sqrtK = Math.sqrt(k);
            boolean beyondFp32 = false;
            for (int i = 0; i < expected.length && !beyondFp32; i++) {
                beyondFp32 = Math.abs(rounded[i] - expected[i]) > Tolerances.GPU_GEMM_ELEMENT_REL * sqrtK * scale[i];
            }
            assertTrue(beyondFp32, what + ": TF32 math gave FP32 accuracy everywhere; was TF32 used?");
            assertClose(what + " FP32 again", read(fp32), read(again), i -> Tolerances.GPU_EXACT);
        }
    }

    @Test
    void addRowVectorAccumulateMatchesTheCpu() {
        for (int[] shape : SHAPES) {
            int n = shape[0] * shape[1];
            float[] y = inputs(n, 2);
            float[] bias = inputs(shape[1], 2);
            Tensor cpuY = cpu(y, shape);
            CPU.addRowVectorAccumulate(cpuY, cpu(bias, shape[1]));
            for (Layout layout : Layout.values()) {
                Tensor gpuY = output(layout, DType.FLOAT32, shape);
                gpu.copyFromHost(y, gpuY);
                gpu.addRowVectorAccumulate(gpuY, input(bias, layout, shape[1]));
                // One float addition on both sides: the same rounding.
                assertClose("addRowVectorAccumulate " + Arrays.toString(shape) + " " + layout, cpuY.toFloatArray(),
                        read(gpuY), i -> Tolerances.GPU_EXACT);
            }
        }
    }

    @Test
    void columnSumsMatchTheCpu() {
        for (int[] shape : SHAPES) {
            float[] x = inputs(shape[0] * shape[1], 2);
            Tensor cpuOut = cpu(new float[shape[1]], shape[1]);
            CPU.columnSums(cpu(x, shape), cpuOut);
            double[] magnitude = new double[shape[1]];
            for (int i = 0; i < x.length; i++) {
                magnitude[i % shape[1]] += Math.abs(x[i]);
            }
            for (Layout layout : Layout.values()) {
                Tensor out = output(layout, DType.FLOAT32, shape[1]);
                gpu.columnSums(input(x, layout, shape), out);
                assertClose("columnSums " + Arrays.toString(shape) + " " + layout, cpuOut.toFloatArray(), read(out),
                        j -> Tolerances.GPU_SUM_REL * magnitude[j]);
            }
        }
    }

    // ---- activations ----------------------------------------------------------------------------------

    /** How a test passes an activation's parameter. */
    private enum ParameterMode { NONE, SHARED, PER_COLUMN }

    static Stream<Arguments> elementWiseKindsAndParameterModes() {
        List<Arguments> cases = new ArrayList<>();
        for (ActivationKind kind : ActivationKind.values()) {
            if (!kind.isElementWise()) {
                continue;
            }
            if (kind.hasParameter()) {
                cases.add(Arguments.of(kind, ParameterMode.SHARED));
                cases.add(Arguments.of(kind, ParameterMode.PER_COLUMN));
            } else {
                cases.add(Arguments.of(kind, ParameterMode.NONE));
            }
        }
        return cases.stream();
    }

    static Stream<Arguments> kindsWithAParameter() {
        return elementWiseKindsAndParameterModes().filter(a -> a.get()[1] != ParameterMode.NONE);
    }

    @ParameterizedTest(name = "{0} parameter {1}")
    @MethodSource("elementWiseKindsAndParameterModes")
    void activationForwardAndBackwardMatchTheCpu(ActivationKind kind, ParameterMode mode) {
        for (int[] shape : SHAPES) {
            int n = shape[0] * shape[1];
            float[] z = inputs(n, 4);
            float[] dy = inputs(n, 1);
            float[] param = parameters(kind, mode, shape[1]);
            Tensor cpuParam = param == null ? null : cpu(param, param.length);
            Tensor cpuY = cpu(new float[n], shape);
            Tensor cpuDz = cpu(new float[n], shape);
            CPU.activationForward(kind, cpu(z, shape), cpuParam, cpuY);
            CPU.activationBackward(kind, cpu(z, shape), cpuParam, cpu(dy, shape), cpuDz);
            float[] expectedY = cpuY.toFloatArray();
            float[] expectedDz = cpuDz.toFloatArray();
            for (Layout layout : Layout.values()) {
                String what = kind.id() + " " + mode + " " + Arrays.toString(shape) + " " + layout;
                Tensor gpuParam = param == null ? null : input(param, layout, param.length);
                Tensor y = output(layout, DType.FLOAT32, shape);
                gpu.activationForward(kind, input(z, layout, shape), gpuParam, y);
                assertClose(what + " forward", expectedY, read(y),
                        i -> Tolerances.GPU_ACTIVATION_ABS + Tolerances.GPU_ACTIVATION_REL * Math.abs(expectedY[i]));
                Tensor dz = output(layout, DType.FLOAT32, shape);
                gpu.activationBackward(kind, input(z, layout, shape), gpuParam, input(dy, layout, shape), dz);
                assertClose(what + " backward", expectedDz, read(dz),
                        i -> Tolerances.GPU_ACTIVATION_ABS * Math.max(1, Math.abs(dy[i]))
                                + Tolerances.GPU_ACTIVATION_REL * Math.abs(expectedDz[i]));
            }
        }
    }

    @ParameterizedTest(name = "{0} parameter {1}")
    @MethodSource("kindsWithAParameter")
    void activationParameterGradientMatchesTheCpu(ActivationKind kind, ParameterMode mode) {
        for (int[] shape : SHAPES) {
            int rows = shape[0];
            int cols = shape[1];
            float[] z = inputs(rows * cols, 4);
            float[] dy = inputs(rows * cols, 1);
            float[] param = parameters(kind, mode, cols);
            Tensor cpuGrad = cpu(new float[param.length], param.length);
            CPU.activationParameterGradient(kind, cpu(z, shape), cpu(param, param.length), cpu(dy, shape), cpuGrad);
            float[] expected = cpuGrad.toFloatArray();
            // Each sum's error scale: the magnitudes of its terms, plus a few ulps of the O(1) quantities
            // inside each term times the factor (x or x^2) that multiplies them.
            double[] allowed = new double[param.length];
            for (int e = 0; e < z.length; e++) {
                int j = param.length == 1 ? 0 : e % cols;
                double term = dy[e] * CpuActivations.parameterDerivative(kind, z[e], param[j]);
                allowed[j] += Tolerances.GPU_PARAMETER_GRADIENT_REL * Math.abs(term)
                        + Tolerances.GPU_ACTIVATION_ABS * Math.abs(dy[e]) * (1 + sq(z[e]));
            }
            for (Layout layout : Layout.values()) {
                Tensor dParam = output(layout, DType.FLOAT32, param.length);
                gpu.activationParameterGradient(kind, input(z, layout, shape), input(param, layout, param.length),
                        input(dy, layout, shape), dParam);
                assertClose(kind.id() + " " + mode + " parameter gradient " + Arrays.toString(shape) + " " + layout,
                        expected, read(dParam), j -> allowed[j]);
            }
        }
    }

    @Test
    void maxoutForwardAndBackwardMatchTheCpuExactly() {
        for (int pieces : new int[] {1, 2, 3, 5}) {
            for (int rows : new int[] {1, 3, 257}) {
                for (int units : new int[] {1, 7, 100}) {
                    int cols = units * pieces;
                    float[] z = new float[rows * cols];
                    for (int i = 0; i < z.length; i++) {
                        z[i] = (rng.nextInt(7) - 3) / 2f; // few distinct values: many ties, first one wins
                    }
                    float[] dy = inputs(rows * units, 1);
                    Tensor cpuY = cpu(new float[rows * units], rows, units);
                    Tensor cpuWinner = own(CPU.allocate(DType.INT32, rows, units));
                    Tensor cpuDz = cpu(new float[rows * cols], rows, cols);
                    CPU.maxoutForward(cpu(z, rows, cols), pieces, cpuY, cpuWinner);
                    CPU.maxoutBackward(cpu(dy, rows, units), cpuWinner, pieces, cpuDz);
                    for (Layout layout : Layout.values()) {
                        String what = "maxout pieces=" + pieces + " [" + rows + ", " + cols + "] " + layout;
                        Tensor y = output(layout, DType.FLOAT32, rows, units);
                        Tensor winner = output(layout, DType.INT32, rows, units);
                        gpu.maxoutForward(input(z, layout, rows, cols), pieces, y, winner);
                        assertClose(what + " y", cpuY.toFloatArray(), read(y), i -> Tolerances.GPU_EXACT);
                        assertArrayEquals(cpuWinner.toIntArray(), readInts(winner), what + " winner");
                        Tensor dz = output(layout, DType.FLOAT32, rows, cols);
                        gpu.maxoutBackward(input(dy, layout, rows, units), winner, pieces, dz);
                        assertClose(what + " dz", cpuDz.toFloatArray(), read(dz), i -> Tolerances.GPU_EXACT);
                    }
                }
            }
        }
    }

    // ---- batch normalization ------------------------------------------------------------------------------

    /** A GPU tensor that starts as {@code data} inside a guarded block: for the ops' read-modify-write state. */
    private Tensor guardedInput(float[] data, Layout layout, int... shape) {
        Tensor t = output(layout, DType.FLOAT32, shape);
        gpu.copyFromHost(data, t);
        return t;
    }

    /**
     * The training forward pass against the CPU's, for every batch-normalization shape (a batch of one row too, whose
     * variance is 0) and layout: the statistics and the moving averages within one rounding of the double sums, taken
     * in another order; the output within {@link Tolerances#GPU_BATCH_NORM_REL} of the magnitudes entering it.
     */
    @Test
    void batchNormTrainingForwardMatchesTheCpu() {
        for (int[] shape : BATCH_NORM_SHAPES) {
            int rows = shape[0];
            int cols = shape[1];
            float[] x = inputs(rows * cols, 2);
            float[] gamma = inputs(cols, 1);
            float[] beta = inputs(cols, 1);
            float[] movingMean = inputs(cols, 1);
            float[] movingVariance = new float[cols];
            for (int j = 0; j < cols; j++) {
                movingVariance[j] = (float) rng.nextDouble(0.1, 4);
            }
            Tensor cpuMovingMean = cpu(movingMean.clone(), cols);
            Tensor cpuMovingVariance = cpu(movingVariance.clone(), cols);
            Tensor cpuMean = cpu(new float[cols], cols);
            Tensor cpuInvStd = cpu(new float[cols], cols);
            Tensor cpuY = cpu(new float[rows * cols], shape);
            CPU.batchNormTrainingForward(cpu(x, shape), cpu(gamma, cols), cpu(beta, cols), 0.99, 1e-3f,
                    cpuMovingMean, cpuMovingVariance, cpuMean, cpuInvStd, cpuY);
            float[] mean = cpuMean.toFloatArray();
            float[] invStd = cpuInvStd.toFloatArray();
            double[] yMagnitude = new double[rows * cols];
            double[] absMean = new double[cols]; // the magnitude of a column's sum, divided by the batch
            for (int i = 0; i < rows * cols; i++) {
                absMean[i % cols] += Math.abs(x[i]) / rows;
            }
            for (int i = 0; i < rows * cols; i++) {
                int j = i % cols;
                yMagnitude[i] = Math.abs(gamma[j]) * (Math.abs(x[i]) + Math.abs(mean[j])) * invStd[j]
                        + Math.abs(beta[j]);
            }
            for (Layout layout : Layout.values()) {
                String what = "batchNormTrainingForward " + Arrays.toString(shape) + " " + layout;
                Tensor gpuMovingMean = guardedInput(movingMean, layout, cols);
                Tensor gpuMovingVariance = guardedInput(movingVariance, layout, cols);
                Tensor gpuMean = output(layout, DType.FLOAT32, cols);
                Tensor gpuInvStd = output(layout, DType.FLOAT32, cols);
                Tensor y = output(layout, DType.FLOAT32, shape);
                gpu.batchNormTrainingForward(input(x, layout, shape), input(gamma, layout, cols),
                        input(beta, layout, cols), 0.99, 1e-3f, gpuMovingMean, gpuMovingVariance, gpuMean, gpuInvStd,
                        y);
                assertClose(what + " batchMean", mean, read(gpuMean), j -> Tolerances.GPU_SUM_REL * absMean[j]);
                assertClose(what + " batchInvStd", invStd, read(gpuInvStd), j -> Tolerances.GPU_SUM_REL * invStd[j]);
                float[] expectedMovingMean = cpuMovingMean.toFloatArray();
                float[] expectedMovingVariance = cpuMovingVariance.toFloatArray();
                assertClose(what + " moving_mean", expectedMovingMean, read(gpuMovingMean),
                        j -> Tolerances.GPU_SUM_REL * (Math.abs(expectedMovingMean[j]) + absMean[j]));
                assertClose(what + " moving_variance", expectedMovingVariance, read(gpuMovingVariance),
                        j -> Tolerances.GPU_SUM_REL * expectedMovingVariance[j]);
                assertClose(what + " y", cpuY.toFloatArray(), read(y),
                        i -> Tolerances.GPU_BATCH_NORM_REL * yMagnitude[i]);
            }
        }
    }

    /**
     * Inference and, given the same batch statistics, the backward pass: inference has no sum, so the GPU gives the
     * CPU's bits; the backward pass's sums (dgamma, dbeta) agree within one rounding of their double sums, dx
     * within {@link Tolerances#GPU_BATCH_NORM_REL} of the magnitudes entering it; without dx, only the sums.
     */
    @Test
    void batchNormInferenceAndBackwardMatchTheCpu() {
        for (int[] shape : BATCH_NORM_SHAPES) {
            int rows = shape[0];
            int cols = shape[1];
            float[] x = inputs(rows * cols, 2);
            float[] dy = inputs(rows * cols, 1);
            float[] gamma = inputs(cols, 1);
            float[] beta = inputs(cols, 1);
            float[] mean = inputs(cols, 1);
            float[] variance = new float[cols];
            float[] invStd = new float[cols];
            for (int j = 0; j < cols; j++) {
                variance[j] = (float) rng.nextDouble(0.1, 4);
                invStd[j] = (float) (1 / Math.sqrt(variance[j] + 1e-3));
            }
            Tensor cpuY = cpu(new float[rows * cols], shape);
            CPU.batchNormInferenceForward(cpu(x, shape), cpu(gamma, cols), cpu(beta, cols), cpu(mean, cols),
                    cpu(variance, cols), 1e-3f, cpuY);
            Tensor cpuDx = cpu(new float[rows * cols], shape);
            Tensor cpuDGamma = cpu(new float[cols], cols);
            Tensor cpuDBeta = cpu(new float[cols], cols);
            CPU.batchNormBackward(cpu(x, shape), cpu(gamma, cols), cpu(mean, cols), cpu(invStd, cols), cpu(dy, shape),
                    cpuDx, cpuDGamma, cpuDBeta);
            float[] dGamma = cpuDGamma.toFloatArray();
            float[] dBeta = cpuDBeta.toFloatArray();
            double[] sumMagnitude = new double[2 * cols];
            double[] dxMagnitude = new double[rows * cols];
            for (int i = 0; i < rows * cols; i++) {
                int j = i % cols;
                double xhat = Math.abs(x[i] - mean[j]) * invStd[j];
                sumMagnitude[j] += Math.abs(dy[i]) * xhat;
                sumMagnitude[cols + j] += Math.abs(dy[i]);
            }
            for (int i = 0; i < rows * cols; i++) {
                int j = i % cols;
                double xhat = Math.abs(x[i] - mean[j]) * invStd[j];
                dxMagnitude[i] = Math.abs(gamma[j]) * invStd[j] * (Math.abs(dy[i]) + sumMagnitude[cols + j] / rows
                        + xhat * sumMagnitude[j] / rows);
            }
            for (Layout layout : Layout.values()) {
                String what = Arrays.toString(shape) + " " + layout;
                Tensor y = output(layout, DType.FLOAT32, shape);
                gpu.batchNormInferenceForward(input(x, layout, shape), input(gamma, layout, cols),
                        input(beta, layout, cols), input(mean, layout, cols), input(variance, layout, cols), 1e-3f, y);
                assertBitsEqual("batchNormInferenceForward " + what, cpuY.toFloatArray(), read(y));
                for (boolean withDx : new boolean[] {true, false}) {
                    Tensor dx = withDx ? output(layout, DType.FLOAT32, shape) : null;
                    Tensor gpuDGamma = output(layout, DType.FLOAT32, cols);
                    Tensor gpuDBeta = output(layout, DType.FLOAT32, cols);
                    gpu.batchNormBackward(input(x, layout, shape), input(gamma, layout, cols),
                            input(mean, layout, cols), input(invStd, layout, cols), input(dy, layout, shape), dx,
                            gpuDGamma, gpuDBeta);
                    String backward = "batchNormBackward " + what + (withDx ? "" : " without dx");
                    assertClose(backward + " dgamma", dGamma, read(gpuDGamma),
                            j -> Tolerances.GPU_SUM_REL * sumMagnitude[j]);
                    assertClose(backward + " dbeta", dBeta, read(gpuDBeta),
                            j -> Tolerances.GPU_SUM_REL * sumMagnitude[cols + j]);
                    if (withDx) {
                        assertClose(backward + " dx", cpuDx.toFloatArray(), read(dx),
                                i -> Tolerances.GPU_BATCH_NORM_REL * dxMagnitude[i]);
                    }
                }
            }
        }
    }

    /**
     * Columns with a large mean and a small spread, 1e4 + N(0, 0.05^2): the variance, 2.5e-3, is 2.5e-11 of the mean's
     * square, so a variance taken as E[x^2] - E[x]^2 would cancel to noise (in float entirely; in double to about
     * 1e-16 * 1e8 per term). The batch statistics and the moving variance, in one kernel (256 rows) and in two (3001),
     * against a two-pass computation in double over the same floats, within one float rounding.
     */
    @Test
    void batchNormVarianceOfALargeMeanIsNotCancelled() {
        float epsilon = 1e-5f;
        for (int[] shape : new int[][] {{256, 40}, {3001, 37}}) {
            int rows = shape[0];
            int cols = shape[1];
            float[] x = new float[rows * cols];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) (1e4 + 0.05 * rng.nextGaussian());
            }
            float[] mean = new float[cols];
            float[] invStd = new float[cols];
            float[] movingVariance = new float[cols];
            for (int j = 0; j < cols; j++) {
                double sum = 0;
                for (int i = 0; i < rows; i++) {
                    sum += x[i * cols + j];
                }
                double m = sum / rows;
                double squares = 0;
                for (int i = 0; i < rows; i++) {
                    double d = x[i * cols + j] - m;
                    squares += d * d;
                }
                double variance = squares / rows;
                assertTrue(variance > 1e-3 && variance < 5e-3, "column " + j + ": variance " + variance);
                mean[j] = (float) m;
                invStd[j] = (float) (1 / Math.sqrt(variance + epsilon));
                movingVariance[j] = 1f * 0.9f + (float) variance * (float) (1.0 - 0.9);
            }
            String what = "batchNormTrainingForward " + Arrays.toString(shape) + " of 1e4 + N(0, 0.05^2)";
            Tensor gpuMovingMean = own(gpu.fromHost(new float[cols], cols));
            Tensor gpuMovingVariance = own(gpu.fromHost(filled(cols, 1f), cols));
            Tensor gpuMean = output(Layout.ALIGNED, DType.FLOAT32, cols);
            Tensor gpuInvStd = output(Layout.ALIGNED, DType.FLOAT32, cols);
            Tensor y = output(Layout.ALIGNED, DType.FLOAT32, shape);
            gpu.batchNormTrainingForward(input(x, Layout.ALIGNED, shape), input(filled(cols, 1f), Layout.ALIGNED, cols),
                    input(new float[cols], Layout.ALIGNED, cols), 0.9, epsilon, gpuMovingMean, gpuMovingVariance,
                    gpuMean, gpuInvStd, y);
            assertClose(what + " batchMean", mean, read(gpuMean), j -> Tolerances.GPU_SUM_REL * 1e4);
            assertClose(what + " batchInvStd", invStd, read(gpuInvStd), j -> Tolerances.GPU_SUM_REL * invStd[j]);
            assertClose(what + " moving_variance", movingVariance, read(gpuMovingVariance),
                    j -> Tolerances.GPU_SUM_REL * movingVariance[j]);
        }
    }

    /**
     * A training step's batch normalization (forward with the moving statistics' update, backward with dx) captured as
     * a graph and replayed gives the eager steps' bits: the one-kernel passes (96 rows) and the two-kernel ones (1000
     * rows, whose last blocks take the stream's ticket and whose sums go through the backend's scratch), three steps
     * each, the moving statistics updated by every replay.
     */
    @Test
    void aReplayedBatchNormGraphGivesTheEagerBits() {
        int cols = 70;
        int steps = 3;
        for (int rows : new int[] {96, 1000}) {
            float[] x = inputs(rows * cols, 2);
            float[] dy = inputs(rows * cols, 1);
            float[] gamma = inputs(cols, 1);
            float[] beta = inputs(cols, 1);
            float[][][] results = new float[2][][];
            for (int mode = 0; mode < 2; mode++) {
                Tensor in = own(gpu.fromHost(x, rows, cols));
                Tensor gradient = own(gpu.fromHost(dy, rows, cols));
                Tensor g = own(gpu.fromHost(gamma, cols));
                Tensor b = own(gpu.fromHost(beta, cols));
                Tensor movingMean = own(gpu.fromHost(new float[cols], cols));
                Tensor movingVariance = own(gpu.fromHost(filled(cols, 1f), cols));
                Tensor batchMean = own(gpu.allocate(DType.FLOAT32, cols));
                Tensor batchInvStd = own(gpu.allocate(DType.FLOAT32, cols));
                Tensor y = own(gpu.allocate(DType.FLOAT32, rows, cols));
                Tensor dx = own(gpu.allocate(DType.FLOAT32, rows, cols));
                Tensor dGamma = own(gpu.allocate(DType.FLOAT32, cols));
                Tensor dBeta = own(gpu.allocate(DType.FLOAT32, cols));
                Runnable step = () -> {
                    gpu.batchNormTrainingForward(in, g, b, 0.9, 1e-3f, movingMean, movingVariance, batchMean,
                            batchInvStd, y);
                    gpu.batchNormBackward(in, g, batchMean, batchInvStd, gradient, dx, dGamma, dBeta);
                };
                step.run(); // the scratch exists before the capture
                if (mode == 0) {
                    for (int s = 1; s < steps; s++) {
                        step.run();
                    }
                } else {
                    try (var graph = gpu.capture(step)) {
                        for (int s = 1; s < steps; s++) {
                            graph.launch();
                        }
                    }
                }
                results[mode] = new float[][] {movingMean.toFloatArray(), movingVariance.toFloatArray(),
                    batchMean.toFloatArray(), batchInvStd.toFloatArray(), y.toFloatArray(), dx.toFloatArray(),
                    dGamma.toFloatArray(), dBeta.toFloatArray()};
            }
            String[] names = {"moving_mean", "moving_variance", "batchMean", "batchInvStd", "y", "dx", "dGamma",
                "dBeta"};
            for (int k = 0; k < names.length; k++) {
                assertBitsEqual(rows + " rows: " + names[k] + ", graph against eager", results[0][k], results[1][k]);
            }
        }
    }

    /**
     * A captured step of batch normalization over a tall batch stays valid after an eager step over a smaller tall
     * batch that has more slices (2049 rows: 33 slices of 64 rows; 2048: 64 of 32), as the trainer's graph of an
     * epoch's full batches must after the last batch's eager warm-up: the backend's scratch is sized by the columns,
     * not the slices, so it does not grow. On a backend of its own, whose scratch starts empty.
     */
    @Test
    void aSmallerTallBatchLeavesACapturedBatchNormStepValid() {
        int cols = 40;
        int rows = 2049;
        float[] x = inputs(rows * cols, 2);
        float[] dy = inputs(rows * cols, 1);
        try (CudaBackend fresh = new CudaBackend(); Tensor in = fresh.fromHost(x, rows, cols);
             Tensor gradient = fresh.fromHost(dy, rows, cols); Tensor g = fresh.fromHost(inputs(cols, 1), cols);
             Tensor b = fresh.fromHost(inputs(cols, 1), cols);
             Tensor movingMean = fresh.fromHost(new float[cols], cols);
             Tensor movingVariance = fresh.fromHost(filled(cols, 1f), cols);
             Tensor batchMean = fresh.allocate(DType.FLOAT32, cols);
             Tensor batchInvStd = fresh.allocate(DType.FLOAT32, cols);
             Tensor y = fresh.allocate(DType.FLOAT32, rows, cols);
             Tensor dx = fresh.allocate(DType.FLOAT32, rows, cols);
             Tensor dGamma = fresh.allocate(DType.FLOAT32, cols); Tensor dBeta = fresh.allocate(DType.FLOAT32, cols)) {
            java.util.function.IntConsumer step = r -> {
                fresh.batchNormTrainingForward(in.rows(0, r), g, b, 0.9, 1e-3f, movingMean, movingVariance, batchMean,
                        batchInvStd, y.rows(0, r));
                fresh.batchNormBackward(in.rows(0, r), g, batchMean, batchInvStd, gradient.rows(0, r), dx.rows(0, r),
                        dGamma, dBeta);
            };
            step.accept(rows);
            float[] eager = dx.toFloatArray();
            try (var graph = fresh.capture(() -> step.accept(rows))) {
                step.accept(rows - 1);
                graph.launch();
            }
            assertBitsEqual("dx of " + rows + " rows, replayed after " + (rows - 1), eager, dx.toFloatArray());
        }
    }

    /**
     * batchNormBackward with dx == dy: on the GPU, a batch of up to 256 rows is one kernel
     * whose blocks each add every row of dy while the other slices' blocks overwrite their rows of dx: dx == dy
     * raced (on the emulator, the blocks after the first read dx where dy was). The contract now refuses it on every
     * backend, the CPU too, with the same message, before anything is written.
     */
    @Test
    void batchNormBackwardInPlaceIsRefused() {
        int rows = 256;
        int cols = 45;
        int[] shape = {rows, cols};
        float[] x = inputs(rows * cols, 2);
        float[] dy = inputs(rows * cols, 1);
        float[] gamma = inputs(cols, 1);
        float[] mean = inputs(cols, 1);
        float[] invStd = new float[cols];
        for (int j = 0; j < cols; j++) {
            invStd[j] = (float) (1 / Math.sqrt(rng.nextDouble(0.1, 4) + 1e-3));
        }
        Tensor cpuDy = cpu(dy.clone(), shape);
        IllegalArgumentException onCpu = assertThrows(IllegalArgumentException.class,
                () -> CPU.batchNormBackward(cpu(x, shape), cpu(gamma, cols), cpu(mean, cols), cpu(invStd, cols), cpuDy,
                        cpuDy, cpu(new float[cols], cols), cpu(new float[cols], cols)));
        Tensor gpuDy = input(dy, Layout.ALIGNED, shape);
        IllegalArgumentException onGpu = assertThrows(IllegalArgumentException.class,
                () -> gpu.batchNormBackward(input(x, Layout.ALIGNED, shape), input(gamma, Layout.ALIGNED, cols),
                        input(mean, Layout.ALIGNED, cols), input(invStd, Layout.ALIGNED, cols), gpuDy, gpuDy,
                        output(Layout.ALIGNED, DType.FLOAT32, cols), output(Layout.ALIGNED, DType.FLOAT32, cols)));
        assertEquals("batchNormBackward: dx Tensor[256, 45] FLOAT32 on cpu at [0, 11520) overlaps dy Tensor[256, 45]"
                + " FLOAT32 on cpu at [0, 11520) in one storage; dx must not share memory with dy", onCpu.getMessage());
        assertEquals(onCpu.getMessage(), onGpu.getMessage().replace(" on cuda", " on cpu"));
        assertArrayEquals(dy, cpuDy.toFloatArray(), "the CPU's dy is untouched");
        assertArrayEquals(dy, read(gpuDy), "the GPU's dy is untouched");
    }

    /** batchNormTrainingForward refuses y == x, which the one-kernel forward would race on. */
    @Test
    void batchNormTrainingForwardRefusesYSameAsX() {
        int rows = 256;
        int cols = 45;
        float[] x = inputs(rows * cols, 2);
        Tensor in = input(x, Layout.ALIGNED, rows, cols);
        assertThrows(IllegalArgumentException.class, () -> gpu.batchNormTrainingForward(in,
                input(filled(cols, 1f), Layout.ALIGNED, cols), input(new float[cols], Layout.ALIGNED, cols), 0.9,
                1e-3f, guardedInput(new float[cols], Layout.ALIGNED, cols),
                guardedInput(filled(cols, 1f), Layout.ALIGNED, cols), output(Layout.ALIGNED, DType.FLOAT32, cols),
                output(Layout.ALIGNED, DType.FLOAT32, cols), in), "y == x is not refused");
    }

    /**
     * Inference in place (y == x) is allowed: each element is read, then written, by one thread. The CPU's bits, for
     * a batch of one kernel's slices and a taller one, in both layouts (the output's guards intact).
     */
    @Test
    void batchNormInferenceInPlaceGivesTheCpuBits() {
        for (int[] shape : new int[][] {{256, 45}, {3001, 70}}) {
            int rows = shape[0];
            int cols = shape[1];
            float[] x = inputs(rows * cols, 2);
            float[] gamma = inputs(cols, 1);
            float[] beta = inputs(cols, 1);
            float[] mean = inputs(cols, 1);
            float[] variance = new float[cols];
            for (int j = 0; j < cols; j++) {
                variance[j] = (float) rng.nextDouble(0.1, 4);
            }
            Tensor cpuX = cpu(x.clone(), shape);
            CPU.batchNormInferenceForward(cpuX, cpu(gamma, cols), cpu(beta, cols), cpu(mean, cols),
                    cpu(variance, cols), 1e-3f, cpuX);
            for (Layout layout : Layout.values()) {
                Tensor gpuX = guardedInput(x, layout, shape);
                gpu.batchNormInferenceForward(gpuX, input(gamma, layout, cols), input(beta, layout, cols),
                        input(mean, layout, cols), input(variance, layout, cols), 1e-3f, gpuX);
                assertBitsEqual("batchNormInferenceForward in place " + Arrays.toString(shape) + " " + layout,
                        cpuX.toFloatArray(), read(gpuX));
            }
        }
    }

    // ---- dropout --------------------------------------------------------------------------------------

    /**
     * Dropout's mask is integer hashing (DropoutMask, dropout.cu): the GPU keeps and scales exactly the CPU's
     * elements, bit for bit, for every shape, layout, rate and step, in place too. Edge values (NaN, infinities,
     * signed zeros) go through unchanged where kept and become 0 where dropped.
     */
    @Test
    void dropoutForwardAndBackwardMatchTheCpuBitForBit() {
        float[] specials = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f};
        int[][] steps = {{0, 0}, {0, 1}, {3, 17}, {Integer.MAX_VALUE, 70000}};
        for (int[] shape : SHAPES) {
            int n = shape[0] * shape[1];
            float[] x = inputs(n, 2);
            for (float special : specials) {
                x[rng.nextInt(n)] = special;
            }
            for (double rate : new double[] {0, 0.2, 0.5, 0.9}) {
                for (int[] step : steps) {
                    long key = rng.nextLong();
                    Tensor cpuIn = cpu(x, shape);
                    Tensor cpuOut = own(CPU.allocate(DType.FLOAT32, shape));
                    Tensor cpuStep = own(CPU.fromHost(step, 2));
                    CPU.dropoutForward(cpuIn, rate, key, cpuStep, cpuOut);
                    float[] expected = cpuOut.toFloatArray();
                    for (Layout layout : Layout.values()) {
                        String what = "dropout " + Arrays.toString(shape) + " rate " + rate + " step "
                                + Arrays.toString(step) + " " + layout;
                        Tensor in = input(x, layout, shape);
                        Tensor gpuStep = gpuInts(step, layout);
                        Tensor out = output(layout, DType.FLOAT32, shape);
                        Tensor gradient = output(layout, DType.FLOAT32, shape);
                        gpu.dropoutForward(in, rate, key, gpuStep, out);
                        gpu.dropoutBackward(in, rate, key, gpuStep, gradient); // the same map on dy
                        assertBitsEqual(what + " forward", expected, read(out));
                        assertBitsEqual(what + " backward", expected, read(gradient));
                        gpu.dropoutForward(in, rate, key, gpuStep, in);
                        assertBitsEqual(what + " in place", expected, in.toFloatArray());
                    }
                }
            }
        }
    }

    private static void assertBitsEqual(String what, float[] expected, float[] actual) {
        assertClose(what, expected, actual, i -> Tolerances.GPU_EXACT);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToIntBits(expected[i]), Float.floatToIntBits(actual[i]), what + ": element " + i);
        }
    }

    /**
     * A captured graph reads the step from the device: each replay draws the mask of the step the counters then
     * hold, a fresh one every step, each the CPU's.
     */
    @Test
    void aReplayedDropoutGraphDrawsAFreshMaskEveryStep() {
        int rows = 37;
        int cols = 65;
        int steps = 4;
        long key = 0x5EED;
        float[] x = inputs(rows * cols, 1);
        Tensor in = own(gpu.fromHost(x, rows, cols));
        Tensor out = own(gpu.allocate(DType.FLOAT32, rows, cols));
        Tensor table = own(gpu.fromHost(nans(steps * rows * cols), steps, rows * cols));
        Tensor counters = own(gpu.fromHost(new int[] {5, 0}, 2)); // epoch 5, step 0
        Tensor stepIndex = counters.view(1, 1);
        try (var graph = gpu.capture(() -> {
            gpu.dropoutForward(in, 0.5, key, counters, out);
            gpu.copyToRow(out.reshape(rows * cols), table, stepIndex);
            gpu.advanceCounters(stepIndex);
        })) {
            for (int s = 0; s < steps; s++) {
                graph.launch();
            }
        }
        float[] replayed = table.toFloatArray();
        Tensor cpuIn = cpu(x, rows, cols);
        Tensor cpuOut = own(CPU.allocate(DType.FLOAT32, rows, cols));
        float[][] masks = new float[steps][];
        for (int s = 0; s < steps; s++) {
            CPU.dropoutForward(cpuIn, 0.5, key, own(CPU.fromHost(new int[] {5, s}, 2)), cpuOut);
            masks[s] = cpuOut.toFloatArray();
            assertBitsEqual("replay " + s, masks[s],
                    Arrays.copyOfRange(replayed, s * rows * cols, (s + 1) * rows * cols));
            if (s > 0) {
                assertFalse(Arrays.equals(masks[s - 1], masks[s]), "steps " + (s - 1) + " and " + s + " differ");
            }
        }
    }

    @Test
    void softmaxMatchesTheCpu() {
        int[][] shapes = {{1, 1}, {3, 10}, {257, 10}, {4097, 3}, {5, 1000}, {2, 4097}};
        for (int[] shape : shapes) {
            float[] logits = inputs(shape[0] * shape[1], 3);
            Arrays.fill(logits, 0, shape[1], 2.5f); // a row of ties
            Tensor cpuP = cpu(new float[logits.length], shape);
            CPU.softmax(cpu(logits, shape), cpuP);
            float[] expected = cpuP.toFloatArray();
            for (Layout layout : Layout.values()) {
                Tensor p = output(layout, DType.FLOAT32, shape);
                gpu.softmax(input(logits, layout, shape), p);
                assertClose("softmax " + Arrays.toString(shape) + " " + layout, expected, read(p),
                        i -> Tolerances.GPU_SOFTMAX_ABS + Tolerances.GPU_SOFTMAX_REL * Math.abs(expected[i]));
            }
        }
    }

    // ---- losses ---------------------------------------------------------------------------------------

    /**
     * The output layer's end of a training step in one launch (the bias added to the logits, the loss, the
     * bias gradient in the last block) has the bits of its three ops on the GPU: add_row_vector, the loss,
     * column_sums.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"CATEGORICAL_CROSSENTROPY", "MEAN_SQUARED_ERROR"})
    void theLossWithTheOutputBiasHasTheBitsOfItsThreeOps(Loss loss) {
        for (int[] shape : new int[][] {{1, 1}, {3, 10}, {256, 10}, {96, 10}, {17, 33}, {4097, 3}}) {
            int rows = shape[0];
            int cols = shape[1];
            float[] logits = inputs(rows * cols, 3);
            float[] bias = inputs(cols, 1);
            float[] targets = targets(rows, cols, true);
            Tensor[] fused = new Tensor[5];
            Tensor[] separate = new Tensor[5];
            for (Tensor[] t : new Tensor[][] {fused, separate}) {
                t[0] = own(gpu.fromHost(logits, rows, cols));
                t[1] = own(gpu.fromHost(nans(rows * cols), rows, cols)); // dLogits
                t[2] = own(gpu.fromHost(nans(cols), cols)); // bias gradient
                t[3] = own(gpu.fromHost(new float[] {0.5f, 1f}, 2)); // totals
            }
            Tensor gpuBias = own(gpu.fromHost(bias, cols));
            Tensor gpuTargets = own(gpu.fromHost(targets, rows, cols));
            loss.apply(gpu, fused[0], gpuBias, gpuTargets, 1f / rows, fused[1], fused[2], fused[3]);
            gpu.addRowVectorAccumulate(separate[0], gpuBias);
            loss.apply(gpu, separate[0], gpuTargets, 1f / rows, separate[1], separate[3]);
            gpu.columnSums(separate[1], separate[2]);
            String what = loss + " [" + rows + ", " + cols + "]";
            String[] names = {"biased logits", "dLogits", "bias gradient", "totals"};
            for (int i = 0; i < 4; i++) {
                assertArrayEquals(separate[i].toFloatArray(), fused[i].toFloatArray(), what + " " + names[i]);
            }
        }
    }

    @ParameterizedTest(name = "{0} one-hot targets={1}")
    @CsvSource({"CATEGORICAL_CROSSENTROPY, true", "CATEGORICAL_CROSSENTROPY, false", "MEAN_SQUARED_ERROR, true",
        "MEAN_SQUARED_ERROR, false"})
    void fusedSoftmaxLossesMatchTheCpu(Loss loss, boolean oneHot) {
        int[][] shapes = {{1, 1}, {3, 10}, {256, 10}, {4097, 10}, {7, 1000}};
        for (int[] shape : shapes) {
            int rows = shape[0];
            int cols = shape[1];
            float[] logits = inputs(rows * cols, 3);
            Arrays.fill(logits, 0, cols, 1.25f); // a row of ties: arg-max is class 0
            float[] targets = targets(rows, cols, oneHot);
            double maxLogit = 1;
            for (float z : logits) {
                maxLogit = Math.max(maxLogit, Math.abs(z));
            }
            for (float scale : new float[] {1f / rows, 0f}) {
                Tensor cpuD = cpu(new float[rows * cols], shape);
                Tensor cpuTotals = cpu(new float[] {1.5f, 2f}, 2);
                loss.apply(CPU, cpu(logits, shape), cpu(targets, shape), scale, cpuD, cpuTotals);
                float[] expectedD = cpuD.toFloatArray();
                float[] expectedTotals = cpuTotals.toFloatArray();
                for (Layout layout : Layout.values()) {
                    String what = loss.id() + (oneHot ? " one-hot " : " soft ") + Arrays.toString(shape) + " scale "
                            + scale + " " + layout;
                    Tensor d = output(layout, DType.FLOAT32, shape);
                    Tensor totals = input(new float[] {1.5f, 2f}, layout, 2);
                    loss.apply(gpu, input(logits, layout, shape), input(targets, layout, shape), scale, d, totals);
                    assertClose(what + " dLogits", expectedD, read(d),
                            i -> Tolerances.GPU_LOSS_GRADIENT_ABS * Math.abs(scale)
                                    + Tolerances.GPU_LOSS_GRADIENT_REL * Math.abs(expectedD[i]));
                    float[] actualTotals = totals.toFloatArray();
                    double lossAllowed = Tolerances.GPU_LOSS_TOTAL_REL * Math.abs(expectedTotals[0])
                            + Tolerances.GPU_LOSS_ROW_ABS * rows * maxLogit;
                    assertClose(what + " loss total", new float[] {expectedTotals[0]}, new float[] {actualTotals[0]},
                            i -> lossAllowed);
                    assertEquals(expectedTotals[1], actualTotals[1], what + " correct count");
                }
            }
        }
    }

    // ---- reductions -----------------------------------------------------------------------------------

    @Test
    void segmentSumOfSquaresMatchesTheCpu() {
        for (int n : new int[] {1, 3, 4097, 575_050}) {
            float[] x = inputs(n, 1);
            // An empty segment first, a one-element one, and two around the middle (one of them empty).
            int[] starts = {0, 0, Math.min(1, n), Math.min(3, n), n / 2, n / 2, n};
            Arrays.sort(starts);
            Tensor cpuOut = cpu(new float[starts.length - 1], starts.length - 1);
            CPU.segmentSumOfSquares(cpu(x, n), CPU.fromHost(starts, starts.length), cpuOut);
            float[] expected = cpuOut.toFloatArray();
            for (Layout layout : Layout.values()) {
                Tensor out = output(layout, DType.FLOAT32, starts.length - 1);
                gpu.segmentSumOfSquares(input(x, layout, n), own(gpu.fromHost(starts, starts.length)), out);
                // Every term is >= 0, so the sum is its own magnitude; empty segments must be exactly 0.
                assertClose("segmentSumOfSquares [" + n + "] " + layout, expected, read(out),
                        s -> Tolerances.GPU_SUM_REL * expected[s]);

                // The same sums, also stored into the row that a device counter selects (the others untouched);
                // a row outside the table stores nothing.
                int segments = starts.length - 1;
                Tensor table = own(gpu.fromHost(nans(3 * segments), 3, segments));
                Tensor stored = output(layout, DType.FLOAT32, segments);
                gpu.segmentSumOfSquares(input(x, layout, n), own(gpu.fromHost(starts, starts.length)), stored, table,
                        gpuInts(new int[] {1}, layout));
                gpu.segmentSumOfSquares(input(x, layout, n), own(gpu.fromHost(starts, starts.length)), stored, table,
                        gpuInts(new int[] {3}, layout));
                float[] rows = table.toFloatArray();
                assertArrayEquals(read(out), read(stored), "the fused op's sums have the plain op's bits");
                assertArrayEquals(read(out), Arrays.copyOfRange(rows, segments, 2 * segments), "row 1 of the table");
                for (int i = 0; i < segments; i++) {
                    assertTrue(Float.isNaN(rows[i]) && Float.isNaN(rows[2 * segments + i]), "rows 0 and 2 untouched");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} parameter {1}")
    @MethodSource("elementWiseKindsAndParameterModes")
    void accumulateUnitStatisticsMatchesTheCpu(ActivationKind kind, ParameterMode mode) {
        for (int[] shape : SHAPES) {
            int rows = shape[0];
            int cols = shape[1];
            int n = rows * cols;
            float[] z = inputs(n, 4);
            z[rng.nextInt(n)] = Float.NaN; // f'(NaN) is NaN (active, not saturated) or a kink's constant
            float[] y = inputs(n, 2);
            float[] param = parameters(kind, mode, cols);
            float[] before = priorStatistics(cols);
            // 1e-3: a typical threshold; 1: exactly the derivative of relu-like kinds (not saturated: |f'| < 1).
            for (float threshold : new float[] {1e-3f, 1f}) {
                Tensor cpuStatistics = cpu(before, 4, cols);
                CPU.accumulateUnitStatistics(kind, cpu(z, shape), param == null ? null : cpu(param, param.length),
                        cpu(y, shape), threshold, cpuStatistics);
                float[] expected = cpuStatistics.toFloatArray();
                double[] allowed = unitStatisticsAllowed(kind, z, param, y, threshold, before, cols);
                for (Layout layout : Layout.values()) {
                    Tensor statistics = output(layout, DType.FLOAT32, 4, cols);
                    gpu.copyFromHost(before, statistics);
                    gpu.accumulateUnitStatistics(kind, input(z, layout, shape),
                            param == null ? null : input(param, layout, param.length), input(y, layout, shape),
                            threshold, statistics);
                    assertClose(kind.id() + " " + mode + " unit statistics " + Arrays.toString(shape) + " threshold "
                            + threshold + " " + layout, expected, read(statistics), i -> allowed[i]);
                }
            }
        }
    }

    /**
     * The bound of each element of the [4, cols] statistics: for the two counts, the rows whose CPU
     * derivative is within float noise of the count's boundary (0, or the threshold); for the sums,
     * GPU_UNIT_STATISTICS_SUM_REL times the magnitudes summed.
     */
    private static double[] unitStatisticsAllowed(ActivationKind kind, float[] z, float[] param, float[] y,
                                                  float threshold, float[] before, int cols) {
        double[] allowed = new double[4 * cols];
        double[] magnitude = new double[2 * cols];
        for (int e = 0; e < z.length; e++) {
            int j = e % cols;
            double p = param == null ? 0 : param[param.length == 1 ? 0 : j];
            double d = Math.abs(CpuActivations.derivative(kind, z[e], p));
            double noise = Tolerances.GPU_UNIT_STATISTICS_DERIVATIVE_ABS
                    + Tolerances.GPU_UNIT_STATISTICS_DERIVATIVE_REL * d;
            if (d > 0 && d <= noise) {
                allowed[j]++; // float may give 0
            }
            if (d != threshold && Math.abs(d - threshold) <= noise) {
                allowed[cols + j]++; // float may fall on the other side of the threshold
            }
            magnitude[j] += Math.abs(y[e]);
            magnitude[cols + j] += sq(y[e]);
        }
        for (int j = 0; j < cols; j++) {
            double sumScale = Math.abs(before[2 * cols + j]) + magnitude[j];
            double sumOfSquaresScale = before[3 * cols + j] + magnitude[cols + j];
            allowed[2 * cols + j] = Tolerances.GPU_UNIT_STATISTICS_SUM_REL * sumScale;
            allowed[3 * cols + j] = Tolerances.GPU_UNIT_STATISTICS_SUM_REL * sumOfSquaresScale;
        }
        return allowed;
    }

    // ---- optimizers -----------------------------------------------------------------------------------

    @Test
    void clipByValueMatchesTheCpuExactly() {
        float[] specials = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f};
        for (int n : new int[] {1, 3, 1000, 4097}) {
            float[] t = inputs(n, 3);
            for (float special : specials) {
                t[rng.nextInt(n)] = special;
            }
            // Every limit is an edge value of the inputs, so some elements sit exactly at it; 100 is above
            // every finite element; 0 sends everything to a signed zero.
            for (float limit : new float[] {1f, 20f, 1e-3f, 100f, 0f}) {
                Tensor cpuT = cpu(t, n);
                CPU.clipByValue(cpuT, limit);
                float[] expected = cpuT.toFloatArray();
                for (Layout layout : Layout.values()) {
                    String what = "clipByValue [" + n + "] limit " + limit + " " + layout;
                    Tensor gpuT = output(layout, DType.FLOAT32, n);
                    gpu.copyFromHost(t, gpuT);
                    gpu.clipByValue(gpuT, limit);
                    float[] actual = read(gpuT);
                    assertClose(what, expected, actual, i -> Tolerances.GPU_EXACT);
                    for (int i = 0; i < n; i++) {
                        assertEquals(Float.floatToIntBits(expected[i]), Float.floatToIntBits(actual[i]),
                                what + ": element " + i + " (the sign of a zero)");
                    }
                }
            }
        }
    }

    @Test
    void clipByGlobalNormMatchesTheCpu() {
        record Case(String what, float[] squaredNorms, float maxNorm) {
        }
        float[] many = new float[1500]; // more norms than the reduction's 1024 slots
        for (int i = 0; i < many.length; i++) {
            many[i] = (float) rng.nextDouble();
        }
        List<Case> cases = List.of(
                new Case("at the limit (sqrt(9 + 16) = 5)", new float[] {9f, 16f}, 5f),
                new Case("below the limit", new float[] {9f, 16f}, 5.5f),
                new Case("above the limit (factor 0.8)", new float[] {9f, 16f}, 4f),
                new Case("one norm above the limit", new float[] {2.25f}, 1f),
                new Case("1500 norms above the limit", many, 1f),
                new Case("1500 norms below the limit", many, 1000f),
                new Case("a NaN norm (left alone)", new float[] {1f, Float.NaN, 4f}, 1f),
                new Case("an infinite norm (factor 0)", new float[] {Float.POSITIVE_INFINITY, 1f}, 1f),
                new Case("no norms", new float[0], 1f));
        for (int n : new int[] {1, 3, 4097, 100_000}) {
            float[] t = inputs(n, 1);
            for (Case c : cases) {
                Tensor cpuT = cpu(t, n);
                CPU.clipByGlobalNorm(cpuT, cpu(c.squaredNorms, c.squaredNorms.length), c.maxNorm);
                float[] expected = cpuT.toFloatArray();
                boolean clipped = !Arrays.equals(expected, t);
                for (Layout layout : Layout.values()) {
                    Tensor gpuT = output(layout, DType.FLOAT32, n);
                    gpu.copyFromHost(t, gpuT);
                    gpu.clipByGlobalNorm(gpuT, input(c.squaredNorms, layout, c.squaredNorms.length), c.maxNorm);
                    assertClose("clipByGlobalNorm [" + n + "] " + c.what + " " + layout, expected, read(gpuT),
                            i -> clipped ? Tolerances.GPU_CLIP_NORM_REL * Math.abs(expected[i])
                                    : Tolerances.GPU_EXACT);
                }
            }
        }
    }

    @Test
    void adamUpdateMatchesTheCpu() {
        float beta1 = 0.9f;
        float beta2 = 0.999f;
        float epsilon = 1e-7f;
        float stepSize = (float) (1e-3 * Math.sqrt(1 - 0.999 * 0.999) / (1 - 0.9 * 0.9));
        double rel = Tolerances.GPU_OPTIMIZER_REL;
        for (int n : new int[] {1, 3, 1000, 4097}) {
            float[] p = inputs(n, 1);
            float[] g = inputs(n, 1);
            float[] m = inputs(n, 0.1);
            float[] v = new float[n];
            for (int i = 0; i < n; i++) {
                v[i] = i % 5 == 0 ? 0f : (float) Math.abs(rng.nextGaussian() * 0.01);
            }
            Tensor cp = cpu(p, n);
            Tensor cm = cpu(m, n);
            Tensor cv = cpu(v, n);
            CPU.adamUpdate(cp, cpu(g, n), cm, cv, beta1, beta2, epsilon, stepSize);
            float[] ep = cp.toFloatArray();
            float[] em = cm.toFloatArray();
            float[] ev = cv.toFloatArray();
            // Forward error bounds: each formula on the magnitudes of its inputs.
            double[] mScale = new double[n];
            double[] vScale = new double[n];
            double[] pAllowed = new double[n];
            for (int i = 0; i < n; i++) {
                mScale[i] = Math.abs(m[i]) + (1 - beta1) * (Math.abs(g[i]) + Math.abs(m[i]));
                vScale[i] = v[i] + (1 - beta2) * (sq(g[i]) + v[i]);
                double s = Math.sqrt(ev[i]);
                double update = Math.abs(p[i] - (double) ep[i]);
                pAllowed[i] = rel * (Math.abs(p[i]) + update) + stepSize * rel * mScale[i] / (s + epsilon)
                        + update * (Math.sqrt(ev[i] + rel * vScale[i]) - s) / (s + epsilon);
            }
            for (Layout layout : Layout.values()) {
                String what = "adam [" + n + "] " + layout;
                Tensor gp = output(layout, DType.FLOAT32, n);
                Tensor gm = output(layout, DType.FLOAT32, n);
                Tensor gv = output(layout, DType.FLOAT32, n);
                gpu.copyFromHost(p, gp);
                gpu.copyFromHost(m, gm);
                gpu.copyFromHost(v, gv);
                gpu.adamUpdate(gp, input(g, layout, n), gm, gv, beta1, beta2, epsilon, stepSize);
                assertClose(what + " m", em, read(gm), i -> rel * mScale[i]);
                assertClose(what + " v", ev, read(gv), i -> rel * vScale[i]);
                assertClose(what + " params", ep, read(gp), i -> pAllowed[i]);
            }
        }
    }

    /**
     * The measured optimizer steps (adam_update_norms, sgd_update_norms): the same parameters, moments and
     * velocity as the unmeasured kernels, bit for bit (both apply the same step functor); the weight and
     * update squares as a host loop in double computes them from the GPU's own before and after (the GPU
     * sums in double: GPU_SUM_REL), and as the CPU measures them (CPU_UPDATE_NORMS_REL).
     */
    @Test
    void measuredOptimizerStepsAreTheStepsAndTheirNorms() {
        // Segments of one element, empty, inside one chunk, and across the backend's 8192-element chunks.
        int n = 20_001;
        int[] starts = {0, 1, 1, 1025, 8191, 16_500, n};
        float[] p = inputs(n, 1);
        float[] g = inputs(n, 1);
        float[] m = inputs(n, 0.1);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) Math.abs(rng.nextGaussian() * 0.01);
        }
        // RMSprop's average gradient, when centered: as the rule keeps it, its square below the velocity
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((i % 2 == 0 ? 0.5 : -0.5) * Math.sqrt(v[i]));
        }
        int segments = starts.length - 1;
        for (int variant = 0; variant < 5; variant++) {
            for (Layout layout : Layout.values()) {
                String what = List.of("adam", "sgd", "sgd nesterov", "rmsprop momentum weight decay",
                        "rmsprop centered momentum weight decay").get(variant) + " " + layout;
                Tensor[] measured = {output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n),
                    output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n)};
                Tensor[] plain = {output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n),
                    output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n)};
                for (Tensor[] buffers : new Tensor[][] {measured, plain}) {
                    gpu.copyFromHost(p, buffers[0]);
                    gpu.copyFromHost(m, buffers[1]);
                    gpu.copyFromHost(v, buffers[2]);
                    gpu.copyFromHost(a, buffers[3]);
                }
                Tensor[] cpuBuffers = {cpu(m, n), cpu(v, n), cpu(a, n)};
                Tensor grads = input(g, layout, n);
                Tensor weightSquares = output(layout, DType.FLOAT32, segments);
                Tensor updateSquares = output(layout, DType.FLOAT32, segments);
                // The norms also go into row 1 of a table of 3 rows (weights, then updates); rows 0 and 2 stay NaN.
                Tensor table = own(gpu.fromHost(nans(3 * 2 * segments), 3, 2, segments));
                UpdateNorms norms = new UpdateNorms(own(gpu.fromHost(starts, starts.length)), weightSquares,
                        updateSquares, table, gpuInts(new int[] {1}, layout));
                Tensor cpuParams = cpu(p, n);
                Tensor cpuWeights = CPU.allocate(DType.FLOAT32, segments);
                Tensor cpuUpdates = CPU.allocate(DType.FLOAT32, segments);
                UpdateNorms cpuNorms = new UpdateNorms(CPU.fromHost(starts, starts.length), cpuWeights, cpuUpdates);
                if (variant == 0) {
                    gpu.adamUpdate(measured[0], grads, measured[1], measured[2], 0.9f, 0.999f, 1e-7f, 0.01f, norms);
                    gpu.adamUpdate(plain[0], grads, plain[1], plain[2], 0.9f, 0.999f, 1e-7f, 0.01f);
                    CPU.adamUpdate(cpuParams, cpu(g, n), cpu(m, n), cpu(v, n), 0.9f, 0.999f, 1e-7f, 0.01f, cpuNorms);
                } else if (variant >= 3) { // velocity: the non-negative v; momentum buffer: m; average gradient: a
                    boolean centered = variant == 4;
                    gpu.rmspropUpdate(measured[0], grads, measured[2], centered ? measured[3] : null, measured[1],
                            0.01f, 0.9f, 0.9f, 1e-7f, centered, 0.01f, norms);
                    gpu.rmspropUpdate(plain[0], grads, plain[2], centered ? plain[3] : null, plain[1], 0.01f, 0.9f,
                            0.9f, 1e-7f, centered, 0.01f);
                    CPU.rmspropUpdate(cpuParams, cpu(g, n), cpuBuffers[1], centered ? cpuBuffers[2] : null,
                            cpuBuffers[0], 0.01f, 0.9f, 0.9f, 1e-7f, centered, 0.01f, cpuNorms);
                    // The fused kernel writes each buffer where the CPU does: a swapped pointer would show here.
                    assertClose(what + " parameters against the CPU", cpuParams.toFloatArray(), read(measured[0]),
                            i -> Tolerances.GPU_EXACT);
                    assertClose(what + " momentum against the CPU", cpuBuffers[0].toFloatArray(), read(measured[1]),
                            i -> Tolerances.GPU_EXACT);
                    assertClose(what + " velocity against the CPU", cpuBuffers[1].toFloatArray(), read(measured[2]),
                            i -> Tolerances.GPU_EXACT);
                    assertClose(what + " average gradient against the CPU", centered ? cpuBuffers[2].toFloatArray()
                            : a, read(measured[3]), i -> Tolerances.GPU_EXACT);
                } else {
                    boolean nesterov = variant == 2;
                    float momentum = nesterov ? 0.9f : 0f;
                    gpu.sgdUpdate(measured[0], grads, measured[1], 0.05f, momentum, nesterov, norms);
                    gpu.sgdUpdate(plain[0], grads, plain[1], 0.05f, momentum, nesterov);
                    CPU.sgdUpdate(cpuParams, cpu(g, n), cpu(m, n), 0.05f, momentum, nesterov, cpuNorms);
                }
                for (int b = 0; b < 4; b++) {
                    float[] want = read(plain[b]);
                    assertClose(what + " buffer " + b, want, read(measured[b]), i -> Tolerances.GPU_EXACT);
                }
                float[] after = read(measured[0]);
                float[] weights = read(weightSquares);
                float[] updates = read(updateSquares);
                float[] rows = table.toFloatArray();
                assertArrayEquals(weights, Arrays.copyOfRange(rows, 2 * segments, 3 * segments), what + " table weights");
                assertArrayEquals(updates, Arrays.copyOfRange(rows, 3 * segments, 4 * segments), what + " table updates");
                for (int i = 0; i < 2 * segments; i++) {
                    assertTrue(Float.isNaN(rows[i]) && Float.isNaN(rows[4 * segments + i]), what + " rows 0 and 2");
                }
                float[] cpuWeightValues = cpuWeights.toFloatArray();
                float[] cpuUpdateValues = cpuUpdates.toFloatArray();
                for (int s = 0; s < segments; s++) {
                    double wantWeights = 0;
                    double wantUpdates = 0;
                    for (int i = starts[s]; i < starts[s + 1]; i++) {
                        double change = (double) after[i] - p[i];
                        wantWeights += (double) p[i] * p[i];
                        wantUpdates += change * change;
                    }
                    assertEquals(wantWeights, weights[s], Tolerances.GPU_SUM_REL * wantWeights, what + " weights " + s);
                    assertEquals(wantUpdates, updates[s], Tolerances.GPU_SUM_REL * wantUpdates, what + " updates " + s);
                    assertEquals(cpuWeightValues[s], weights[s], Tolerances.CPU_UPDATE_NORMS_REL * wantWeights,
                            what + " weights " + s + " against the CPU");
                    assertEquals(cpuUpdateValues[s], updates[s], Tolerances.CPU_UPDATE_NORMS_REL * wantUpdates
                            + Tolerances.GPU_OPTIMIZER_REL * wantWeights, what + " updates " + s + " against the CPU");
                }
            }
        }
    }

    /**
     * AMSGrad, Nadam, Adamax and Adagrad on the GPU against the CPU reference, bit for bit (both round every float
     * operation on its own, and compute the schedules' powers in double by the same squarings): three steps from
     * an update count of 41 (Nadam's u_product part way down), with a weight decay, every buffer once aligned and
     * once shifted; unmeasured (the element-wise kernels), measured ({@link UpdateNorms}) and ending a step
     * ({@link StepEnd}: the gradients' norms, the update's and the step counter, in the update's launch). The
     * count, Nadam's product and the step counter as the CPU leaves them; the norms as the CPU measures them
     * (CPU_UPDATE_NORMS_REL, as for the other optimizers) and the gradients' against a host sum (GPU_SUM_REL).
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"amsgrad", "nadam", "adamax", "adagrad"})
    void kerasOptimizerStepsOnTheGpuAreTheCpusBitForBit(String optimizer) {
        int n = 20_001; // segments of one element, empty, inside one chunk and across the 8192-element chunks
        int[] starts = {0, 1, 1, 1025, 8191, 16_500, n};
        int segments = starts.length - 1;
        float[] p = inputs(n, 1);
        float[] m = inputs(n, 0.1);
        float[] v = abs(inputs(n, 0.01)); // Adagrad's accumulator, Adamax's u: >= 0 as the rules keep them
        float[] h = abs(inputs(n, 0.01)); // AMSGrad's v_hat, above v at some elements and below at others
        float[][] g = {inputs(n, 1), inputs(n, 0.1), inputs(n, 1)};
        float weightDecay = 0.01f;
        for (Layout layout : Layout.values()) {
            for (int way = 0; way < 3; way++) {
                String what = optimizer + " " + layout + " " + List.of("unmeasured", "measured", "ending a step")
                        .get(way);
                Tensor[] buffers = {output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n),
                    output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n)};
                Tensor[] cpuBuffers = {cpu(p, n), cpu(m, n), cpu(v, n), cpu(h, n)};
                float[][] starting = {p, m, v, h};
                for (int b = 0; b < 4; b++) {
                    gpu.copyFromHost(starting[b], buffers[b]);
                }
                Tensor iterations = gpuInts(new int[] {41}, layout);
                Tensor cpuIterations = own(CPU.fromHost(new int[] {41}, 1));
                Tensor product = input(new float[] {0.3f}, layout, 1);
                Tensor cpuProduct = cpu(new float[] {0.3f}, 1);
                Tensor counter = gpuInts(new int[] {5}, layout);
                Tensor cpuCounter = own(CPU.fromHost(new int[] {5}, 1));
                Tensor gpuStarts = gpuInts(starts, layout);
                Tensor cpuStarts = own(CPU.fromHost(starts, starts.length));
                for (int step = 0; step < g.length; step++) {
                    String at = what + ", step " + (step + 1);
                    Tensor grads = input(g[step], layout, n);
                    Tensor cpuGrads = cpu(g[step], n);
                    Tensor weightSquares = output(layout, DType.FLOAT32, segments);
                    Tensor updateSquares = output(layout, DType.FLOAT32, segments);
                    Tensor gradientSquares = output(layout, DType.FLOAT32, segments);
                    Tensor cpuWeights = CPU.allocate(DType.FLOAT32, segments);
                    Tensor cpuUpdates = CPU.allocate(DType.FLOAT32, segments);
                    UpdateNorms norms = way == 0 ? null : new UpdateNorms(gpuStarts, weightSquares, updateSquares);
                    UpdateNorms cpuNorms = way == 0 ? null : new UpdateNorms(cpuStarts, cpuWeights, cpuUpdates);
                    StepEnd end = way == 2 ? new StepEnd(new GradientNorms(gpuStarts, gradientSquares, null, null),
                            norms, counter) : StepEnd.measuring(norms);
                    long before = gpu.queuedOperations();
                    kerasOptimizerStep(gpu, optimizer, buffers, grads, iterations, product, weightDecay, end);
                    if (way == 2) {
                        assertEquals(1, gpu.queuedOperations() - before, at + ": one launch");
                    }
                    kerasOptimizerStep(CPU, optimizer, cpuBuffers, cpuGrads, cpuIterations, cpuProduct, weightDecay,
                            way == 2 ? new StepEnd(null, cpuNorms, cpuCounter) : StepEnd.measuring(cpuNorms));
                    for (int b = 0; b < 4; b++) {
                        assertClose(at + ", buffer " + b, cpuBuffers[b].toFloatArray(), read(buffers[b]),
                                i -> Tolerances.GPU_EXACT);
                    }
                    assertArrayEquals(cpuIterations.toIntArray(), readInts(iterations), at + ": the update count");
                    assertArrayEquals(cpuProduct.toFloatArray(), read(product), at + ": Nadam's u_product");
                    assertArrayEquals(cpuCounter.toIntArray(), readInts(counter), at + ": the step counter");
                    if (way == 0) {
                        continue;
                    }
                    float[] weights = read(weightSquares);
                    float[] updates = read(updateSquares);
                    float[] cpuWeightValues = cpuWeights.toFloatArray();
                    float[] cpuUpdateValues = cpuUpdates.toFloatArray();
                    float[] gradientValues = way == 2 ? read(gradientSquares) : null;
                    for (int s = 0; s < segments; s++) {
                        double wantGradients = 0;
                        for (int i = starts[s]; i < starts[s + 1]; i++) {
                            wantGradients += (double) g[step][i] * g[step][i];
                        }
                        assertEquals(cpuWeightValues[s], weights[s], Tolerances.CPU_UPDATE_NORMS_REL
                                * Math.abs(cpuWeightValues[s]), at + ", weights " + s);
                        assertEquals(cpuUpdateValues[s], updates[s], Tolerances.CPU_UPDATE_NORMS_REL
                                * Math.abs(cpuUpdateValues[s]), at + ", updates " + s);
                        if (gradientValues != null) {
                            assertEquals(wantGradients, gradientValues[s], Tolerances.GPU_SUM_REL * wantGradients,
                                    at + ", gradients " + s);
                        }
                    }
                }
            }
        }
    }

    /**
     * One step of {@code optimizer} (amsgrad, nadam, adamax, adagrad) on {@code backend}; buffers: the
     * parameters, then the state (AMSGrad: m, v, v_hat; Nadam: m, v; Adamax: m, u; Adagrad: the accumulator).
     */
    private static void kerasOptimizerStep(Backend backend, String optimizer, Tensor[] buffers, Tensor grads,
                                           Tensor iterations, Tensor product, float weightDecay, StepEnd end) {
        switch (optimizer) {
            case "amsgrad" -> backend.adamUpdate(buffers[0], grads, buffers[1], buffers[2], buffers[3], 2e-3, 0.85,
                    0.995, 1e-7f, weightDecay, iterations, end);
            case "nadam" -> backend.nadamUpdate(buffers[0], grads, buffers[1], buffers[2], 2e-3f, 0.9, 0.999, 1e-7f,
                    weightDecay, iterations, product, end);
            case "adamax" -> backend.adamaxUpdate(buffers[0], grads, buffers[1], buffers[2], 2e-3f, 0.9, 0.999,
                    1e-7f, weightDecay, iterations, end);
            case "adagrad" -> backend.adagradUpdate(buffers[0], grads, buffers[2], 0.01f, 1e-7f, weightDecay, end);
            default -> throw new IllegalArgumentException(optimizer);
        }
    }

    /**
     * The end of a training step done by the optimizer's op ({@link StepEnd}: gradient norms, update norms, the
     * step counter; adam_update_measured_counter, sgd_update_measured) is one launch when its parts share their
     * segment starts, and gives the bits of the ops one by one: segment_sum_of_squares, the measured update,
     * advance_counters. The step-end parts the kernel does not fuse (other segment starts, a counter of two
     * elements) fall back to those ops, with the same results.
     */
    @Test
    void aStepEndInTheUpdateIsTheOpsOneByOneBitForBit() {
        int n = 20_001; // segments of one element, empty, inside one chunk and across the 8192-element chunks
        int[] starts = {0, 1, 1, 1025, 8191, 16_500, n};
        int segments = starts.length - 1;
        float[] p = inputs(n, 1);
        float[] g = inputs(n, 1);
        float[] m = inputs(n, 0.1);
        float[] v = abs(inputs(n, 0.01));
        Tensor segmentStarts = gpuInts(starts, Layout.ALIGNED);
        Tensor sameStarts = gpuInts(starts, Layout.SHIFTED); // the same segments in another tensor: not fused
        // {gradient norms, their table, update norms, counter, the counter's elements, other starts, fused}
        int[][] cases = {{1, 1, 0, 0, 1, 0, 1}, {1, 0, 1, 1, 1, 0, 1}, {0, 0, 1, 1, 1, 0, 1}, {1, 1, 1, 1, 1, 0, 1},
            {1, 1, 1, 1, 2, 0, 0}, {1, 1, 1, 0, 1, 1, 0}, {0, 0, 0, 1, 1, 0, 0}};
        for (String optimizer : List.of("adam", "adamw", "sgd", "sgd nesterov", "rmsprop")) {
            float weightDecay = optimizer.equals("adamw") ? 0.004f : optimizer.equals("rmsprop") ? 0.01f : 0f;
            for (int[] c : cases) {
                String what = optimizer + " " + Arrays.toString(c);
                Layout layout = c[1] == 1 ? Layout.SHIFTED : Layout.ALIGNED;
                float[][] results = new float[2][];
                int[][] counts = new int[2][];
                long[] ops = new long[2];
                for (int way = 0; way < 2; way++) { // 0: the step end in the update; 1: the ops one by one
                    Tensor[] buffers = {output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n),
                        output(layout, DType.FLOAT32, n)};
                    gpu.copyFromHost(p, buffers[0]);
                    gpu.copyFromHost(m, buffers[1]);
                    gpu.copyFromHost(v, buffers[2]);
                    Tensor grads = input(g, layout, n);
                    Tensor gradientSquares = own(gpu.fromHost(nans(segments), segments));
                    Tensor gradientTable = own(gpu.fromHost(nans(3 * segments), 3, segments));
                    Tensor weightAndUpdate = own(gpu.fromHost(nans(2 * segments), 2, segments));
                    Tensor updateTable = own(gpu.fromHost(nans(3 * 2 * segments), 3, 2, segments));
                    Tensor counter = gpuInts(c[4] == 1 ? new int[] {1} : new int[] {1, 7}, layout);
                    Tensor row = c[4] == 1 ? counter : gpuInts(new int[] {1}, layout);
                    Tensor iterations = gpuInts(new int[] {41}, layout);
                    GradientNorms gradientNorms = c[0] == 0 ? null : new GradientNorms(c[5] == 1 ? sameStarts
                            : segmentStarts, gradientSquares, c[1] == 1 ? gradientTable : null, c[1] == 1 ? row : null);
                    UpdateNorms updateNorms = c[2] == 0 ? null : new UpdateNorms(segmentStarts,
                            weightAndUpdate.rows(0, 1).reshape(segments), weightAndUpdate.rows(1, 1).reshape(segments),
                            updateTable, row);
                    StepEnd end = new StepEnd(gradientNorms, updateNorms, c[3] == 1 ? counter : null);
                    boolean nesterov = optimizer.equals("sgd nesterov");
                    float momentum = nesterov ? 0.9f : 0f;
                    long before = gpu.queuedOperations();
                    if (way == 0) {
                        if (optimizer.startsWith("adam")) {
                            gpu.adamUpdate(buffers[0], grads, buffers[1], buffers[2], 2e-3, 0.85, 0.995, 1e-7f,
                                    weightDecay, iterations, end);
                        } else if (optimizer.equals("rmsprop")) { // velocity: the non-negative v; momentum: m
                            gpu.rmspropUpdate(buffers[0], grads, buffers[2], null, buffers[1], 0.01f, 0.9f, 0.9f,
                                    1e-7f, false, weightDecay, end);
                        } else {
                            gpu.sgdUpdate(buffers[0], grads, buffers[1], 0.05f, momentum, nesterov, end);
                        }
                    } else {
                        if (gradientNorms != null && gradientNorms.table() != null) {
                            gpu.segmentSumOfSquares(grads, gradientNorms.segmentStarts(), gradientSquares,
                                    gradientTable, row);
                        } else if (gradientNorms != null) {
                            gpu.segmentSumOfSquares(grads, gradientNorms.segmentStarts(), gradientSquares);
                        }
                        if (optimizer.startsWith("adam")) {
                            gpu.adamUpdate(buffers[0], grads, buffers[1], buffers[2], 2e-3, 0.85, 0.995, 1e-7f,
                                    weightDecay, iterations, updateNorms);
                        } else if (optimizer.equals("rmsprop")) {
                            gpu.rmspropUpdate(buffers[0], grads, buffers[2], null, buffers[1], 0.01f, 0.9f, 0.9f,
                                    1e-7f, false, weightDecay, updateNorms);
                        } else {
                            gpu.sgdUpdate(buffers[0], grads, buffers[1], 0.05f, momentum, nesterov, updateNorms);
                        }
                        if (end.counter() != null) {
                            gpu.advanceCounters(counter);
                        }
                    }
                    ops[way] = gpu.queuedOperations() - before;
                    results[way] = concat(read(buffers[0]), read(buffers[1]), read(buffers[2]),
                            gradientSquares.toFloatArray(), gradientTable.toFloatArray(),
                            weightAndUpdate.toFloatArray(), updateTable.toFloatArray());
                    counts[way] = concat(readInts(counter), readInts(iterations));
                }
                assertArrayEquals(results[1], results[0], what + ": parameters, state, norms and tables");
                assertArrayEquals(counts[1], counts[0], what + ": the counter and the update count");
                if (c[6] == 1) {
                    assertEquals(1, ops[0], what + ": one launch");
                }
                if (c[3] == 1) {
                    assertEquals(2, counts[0][0], what + ": the counter advanced once");
                }
                if (c[1] == 1) {
                    float[] table = results[0];
                    int at = 3 * n + segments + segments; // row 1 of the gradient table
                    assertFalse(Float.isNaN(table[at]), what + ": the gradient table's row 1 (the counter before)");
                }
            }
        }
        // No parameter at all (segments without elements): one block over no chunk writes zero norms, stores
        // the row and advances the counter, in one launch.
        Tensor none = own(gpu.allocate(DType.FLOAT32, 0));
        Tensor emptyStarts = gpuInts(new int[] {0, 0, 0}, Layout.ALIGNED);
        Tensor squares = own(gpu.fromHost(nans(2), 2));
        Tensor table = own(gpu.fromHost(nans(4), 2, 2));
        Tensor counter = gpuInts(new int[] {1}, Layout.ALIGNED);
        Tensor iterations = gpuInts(new int[] {0}, Layout.ALIGNED);
        long before = gpu.queuedOperations();
        gpu.adamUpdate(none, none, none, none, 1e-3, 0.9, 0.999, 1e-7f, iterations,
                new StepEnd(new GradientNorms(emptyStarts, squares, table, counter), null, counter));
        assertEquals(1, gpu.queuedOperations() - before, "no parameter: still one launch");
        assertArrayEquals(new float[] {0, 0}, read(squares), "no parameter: zero norms");
        float[] rows = read(table);
        assertArrayEquals(new float[] {0, 0}, Arrays.copyOfRange(rows, 2, 4), "no parameter: row 1 stored");
        assertTrue(Float.isNaN(rows[0]) && Float.isNaN(rows[1]), "no parameter: row 0 untouched");
        assertArrayEquals(new int[] {2}, readInts(counter), "no parameter: the counter advanced");
        assertArrayEquals(new int[] {1}, readInts(iterations), "no parameter: the update counted");
    }

    /**
     * The fused forward of a dense layer: z + bias as the CPU adds it (one float addition: the same bits),
     * y within an activation's tolerance of the CPU; and the bits of the unfused GPU kernels
     * (add_row_vector, then ID_forward), which run the same float operations.
     */
    @ParameterizedTest(name = "{0} parameter {1}")
    @MethodSource("elementWiseKindsAndParameterModes")
    void biasActivationForwardMatchesTheCpuAndTheUnfusedKernels(ActivationKind kind, ParameterMode mode) {
        for (int[] shape : FUSED_SHAPES) {
            int n = shape[0] * shape[1];
            float[] z = inputs(n, 4);
            float[] bias = inputs(shape[1], 1);
            float[] param = parameters(kind, mode, shape[1]);
            Tensor cpuParam = param == null ? null : cpu(param, param.length);
            Tensor cpuZ = cpu(z, shape);
            Tensor cpuY = cpu(new float[n], shape);
            CPU.biasActivationForward(kind, cpuZ, cpu(bias, shape[1]), cpuParam, cpuY);
            float[] expectedZ = cpuZ.toFloatArray();
            float[] expectedY = cpuY.toFloatArray();
            for (Layout layout : Layout.values()) {
                String what = kind.id() + " " + mode + " " + Arrays.toString(shape) + " " + layout;
                Tensor gpuParam = param == null ? null : input(param, layout, param.length);
                Tensor gpuBias = input(bias, layout, shape[1]);
                Tensor fusedZ = output(layout, DType.FLOAT32, shape);
                Tensor fusedY = output(layout, DType.FLOAT32, shape);
                gpu.copyFromHost(z, fusedZ);
                gpu.biasActivationForward(kind, fusedZ, gpuBias, gpuParam, fusedY);
                float[] actualY = read(fusedY);
                assertClose(what + " z + bias", expectedZ, read(fusedZ), i -> Tolerances.GPU_EXACT);
                assertClose(what + " y", expectedY, actualY,
                        i -> Tolerances.GPU_ACTIVATION_ABS + Tolerances.GPU_ACTIVATION_REL * Math.abs(expectedY[i]));

                Tensor plainZ = output(layout, DType.FLOAT32, shape);
                Tensor plainY = output(layout, DType.FLOAT32, shape);
                gpu.copyFromHost(z, plainZ);
                gpu.addRowVectorAccumulate(plainZ, gpuBias);
                gpu.activationForward(kind, plainZ, gpuParam, plainY);
                assertClose(what + " y against add_row_vector + ID_forward", read(plainY), actualY,
                        i -> Tolerances.GPU_EXACT);
            }
        }
    }

    /**
     * The fused backward of a dense layer, with and without the profiler's statistics: dz within an
     * activation's tolerance of the CPU; the bias gradient within the sum of its terms' activation
     * tolerances plus GPU_SUM_REL of their magnitudes (each term is a GPU dz, then the sums add in double
     * in different orders); the statistics as accumulateUnitStatisticsMatchesTheCpu bounds them. Against
     * the unfused GPU kernels (ID_backward, column_sums, the statistics alone), the same bits: the same
     * float derivative, and column_sums adds in the same tiles and tree.
     */
    @ParameterizedTest(name = "{0} parameter {1}")
    @MethodSource("elementWiseKindsAndParameterModes")
    void biasActivationBackwardMatchesTheCpuAndTheUnfusedKernels(ActivationKind kind, ParameterMode mode) {
        for (int[] shape : FUSED_SHAPES) {
            int rows = shape[0];
            int cols = shape[1];
            int n = rows * cols;
            float[] z = inputs(n, 4);
            float[] y = inputs(n, 2);
            float[] dy = inputs(n, 1);
            float[] param = parameters(kind, mode, cols);
            float[] before = priorStatistics(cols);
            float threshold = 1e-3f;
            Tensor cpuParam = param == null ? null : cpu(param, param.length);
            Tensor cpuDz = cpu(new float[n], shape);
            Tensor cpuBias = cpu(new float[cols], cols);
            Tensor cpuStatistics = cpu(before, 4, cols);
            CPU.biasActivationBackward(kind, cpu(z, shape), cpuParam, cpu(y, shape), cpu(dy, shape), cpuDz, cpuBias,
                    threshold, cpuStatistics);
            float[] expectedDz = cpuDz.toFloatArray();
            float[] expectedBias = cpuBias.toFloatArray();
            float[] expectedStatistics = cpuStatistics.toFloatArray();
            double[] biasAllowed = new double[cols];
            for (int e = 0; e < n; e++) {
                biasAllowed[e % cols] += Tolerances.GPU_ACTIVATION_ABS * Math.max(1, Math.abs(dy[e]))
                        + (Tolerances.GPU_ACTIVATION_REL + Tolerances.GPU_SUM_REL) * Math.abs(expectedDz[e]);
            }
            double[] statisticsAllowed = unitStatisticsAllowed(kind, z, param, y, threshold, before, cols);
            for (Layout layout : Layout.values()) {
                String what = kind.id() + " " + mode + " " + Arrays.toString(shape) + " " + layout;
                Tensor zt = input(z, layout, shape);
                Tensor yt = input(y, layout, shape);
                Tensor dyt = input(dy, layout, shape);
                Tensor pt = param == null ? null : input(param, layout, param.length);
                Tensor dz = output(layout, DType.FLOAT32, shape);
                Tensor bias = output(layout, DType.FLOAT32, cols);
                Tensor statistics = output(layout, DType.FLOAT32, 4, cols);
                gpu.copyFromHost(before, statistics);
                gpu.biasActivationBackward(kind, zt, pt, yt, dyt, dz, bias, threshold, statistics);
                float[] fusedDz = read(dz);
                float[] fusedBias = read(bias);
                float[] fusedStatistics = read(statistics);
                assertClose(what + " dz", expectedDz, fusedDz,
                        i -> Tolerances.GPU_ACTIVATION_ABS * Math.max(1, Math.abs(dy[i]))
                                + Tolerances.GPU_ACTIVATION_REL * Math.abs(expectedDz[i]));
                assertClose(what + " bias gradient", expectedBias, fusedBias, j -> biasAllowed[j]);
                assertClose(what + " statistics", expectedStatistics, fusedStatistics, i -> statisticsAllowed[i]);

                Tensor plainDz = output(layout, DType.FLOAT32, shape);
                Tensor plainBias = output(layout, DType.FLOAT32, cols);
                Tensor plainStatistics = output(layout, DType.FLOAT32, 4, cols);
                gpu.copyFromHost(before, plainStatistics);
                gpu.activationBackward(kind, zt, pt, dyt, plainDz);
                gpu.columnSums(plainDz, plainBias);
                gpu.accumulateUnitStatistics(kind, zt, pt, yt, threshold, plainStatistics);
                assertClose(what + " dz against ID_backward", read(plainDz), fusedDz, i -> Tolerances.GPU_EXACT);
                assertClose(what + " bias gradient against column_sums", read(plainBias), fusedBias,
                        i -> Tolerances.GPU_EXACT);
                assertClose(what + " statistics against the statistics alone", read(plainStatistics),
                        fusedStatistics, i -> Tolerances.GPU_EXACT);

                Tensor unprofiledDz = output(layout, DType.FLOAT32, shape);
                Tensor unprofiledBias = output(layout, DType.FLOAT32, cols);
                gpu.biasActivationBackward(kind, zt, pt, null, dyt, unprofiledDz, unprofiledBias, threshold, null);
                assertClose(what + " dz without statistics", fusedDz, read(unprofiledDz), i -> Tolerances.GPU_EXACT);
                assertClose(what + " bias gradient without statistics", fusedBias, read(unprofiledBias),
                        i -> Tolerances.GPU_EXACT);
            }
        }
    }

    @ParameterizedTest(name = "momentum={0} nesterov={1}")
    @CsvSource({"0, false", "0.9, false", "0.9, true"})
    void sgdUpdateMatchesTheCpu(float momentum, boolean nesterov) {
        float lr = 0.05f;
        double rel = Tolerances.GPU_OPTIMIZER_REL;
        for (int n : new int[] {1, 3, 1000, 4097}) {
            float[] p = inputs(n, 1);
            float[] g = inputs(n, 1);
            float[] vel = inputs(n, 0.1);
            Tensor cp = cpu(p, n);
            Tensor cv = cpu(vel, n);
            CPU.sgdUpdate(cp, cpu(g, n), momentum == 0 ? null : cv, lr, momentum, nesterov);
            float[] ep = cp.toFloatArray();
            float[] ev = cv.toFloatArray();
            double[] vAllowed = new double[n];
            double[] pAllowed = new double[n];
            for (int i = 0; i < n; i++) {
                vAllowed[i] = momentum == 0 ? 0 : rel * (momentum * Math.abs(vel[i]) + lr * Math.abs(g[i]));
                pAllowed[i] = rel * (Math.abs(p[i]) + (1 + momentum) * Math.abs(ev[i]) + lr * Math.abs(g[i]))
                        + (1 + momentum) * vAllowed[i];
            }
            for (Layout layout : Layout.values()) {
                String what = "sgd momentum " + momentum + " nesterov " + nesterov + " [" + n + "] " + layout;
                Tensor gp = output(layout, DType.FLOAT32, n);
                Tensor gv = output(layout, DType.FLOAT32, n);
                gpu.copyFromHost(p, gp);
                gpu.copyFromHost(vel, gv);
                // Without momentum the velocity is passed anyway and must stay untouched, as on the CPU.
                gpu.sgdUpdate(gp, input(g, layout, n), gv, lr, momentum, nesterov);
                assertClose(what + " params", ep, read(gp), i -> pAllowed[i]);
                assertClose(what + " velocity", ev, read(gv), i -> vAllowed[i]);
            }
        }
    }

    /**
     * RMSprop (rmsprop_update) against the CPU in each form: plain, centered, with momentum, and all of them with
     * a weight decay; sizes around the 16-byte groups, both layouts. A buffer the form does not use is passed
     * anyway and must stay untouched, as on the CPU. Forward error bounds on the magnitudes of each formula.
     */
    @ParameterizedTest(name = "centered={0} momentum={1} weightDecay={2}")
    @CsvSource({"false, 0, 0", "true, 0, 0", "false, 0.9, 0", "false, 0, 0.01", "true, 0.5, 0.01"})
    void rmspropUpdateMatchesTheCpu(boolean centered, float momentum, float weightDecay) {
        float lr = 0.01f;
        float rho = 0.9f;
        float epsilon = 1e-7f;
        double rel = Tolerances.GPU_OPTIMIZER_REL;
        for (int n : new int[] {1, 3, 1000, 4097}) {
            float[] p = inputs(n, 1);
            float[] g = inputs(n, 1);
            float[] a = inputs(n, 0.01);
            float[] v = abs(inputs(n, 0.01));
            for (int i = 0; i < n; i++) {
                v[i] = Math.max(v[i], 2 * a[i] * a[i]); // a velocity of at least the squared mean, as in training
            }
            float[] b = inputs(n, 0.01);
            Tensor cp = cpu(p, n);
            Tensor cv = cpu(v, n);
            Tensor ca = cpu(a, n);
            Tensor cb = cpu(b, n);
            CPU.rmspropUpdate(cp, cpu(g, n), cv, ca, cb, lr, rho, momentum, epsilon, centered, weightDecay);
            float[] ep = cp.toFloatArray();
            float[] ev = cv.toFloatArray();
            float[] ea = ca.toFloatArray();
            float[] eb = cb.toFloatArray();
            double[] vAllowed = new double[n];
            double[] aAllowed = new double[n];
            double[] bAllowed = new double[n];
            double[] pAllowed = new double[n];
            for (int i = 0; i < n; i++) {
                double vScale = rho * v[i] + (1 - rho) * sq(g[i]);
                double aScale = rho * Math.abs(a[i]) + (1 - rho) * Math.abs(g[i]);
                vAllowed[i] = rel * vScale;
                aAllowed[i] = centered ? rel * aScale : 0;
                double denominator = centered ? ev[i] - sq(ea[i]) + epsilon : ev[i] + epsilon;
                double denominatorError = rel * (vScale + (centered ? sq(aScale) : 0) + epsilon);
                double increment = lr * Math.abs(g[i]) / Math.sqrt(denominator);
                double incrementAllowed = increment * (3 * rel + denominatorError / denominator);
                double step = momentum != 0 ? momentum * Math.abs(b[i]) + increment : increment;
                bAllowed[i] = momentum != 0 ? rel * step + incrementAllowed : 0;
                pAllowed[i] = rel * (Math.abs(p[i]) + Math.abs(p[i]) * weightDecay * lr + step)
                        + (momentum != 0 ? bAllowed[i] : incrementAllowed);
            }
            for (Layout layout : Layout.values()) {
                String what = "rmsprop centered " + centered + " momentum " + momentum + " weight decay "
                        + weightDecay + " [" + n + "] " + layout;
                Tensor gp = output(layout, DType.FLOAT32, n);
                Tensor gv = output(layout, DType.FLOAT32, n);
                Tensor ga = output(layout, DType.FLOAT32, n);
                Tensor gb = output(layout, DType.FLOAT32, n);
                gpu.copyFromHost(p, gp);
                gpu.copyFromHost(v, gv);
                gpu.copyFromHost(a, ga);
                gpu.copyFromHost(b, gb);
                gpu.rmspropUpdate(gp, input(g, layout, n), gv, ga, gb, lr, rho, momentum, epsilon, centered,
                        weightDecay);
                assertClose(what + " params", ep, read(gp), i -> pAllowed[i]);
                assertClose(what + " velocity", ev, read(gv), i -> vAllowed[i]);
                assertClose(what + " average gradient", ea, read(ga), i -> aAllowed[i]);
                assertClose(what + " momentum", eb, read(gb), i -> bAllowed[i]);
            }
        }
    }

    /**
     * Weight decay in Adam's counter form (adam_update_counter: AdamW) and in SGD (sgd_update), against the CPU:
     * the decay p wd lr is one more term of the same error bound; its effect (1e-2 of p here) is far above it.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"adamw", "sgd", "sgd momentum", "sgd nesterov"})
    void weightDecayMatchesTheCpu(String optimizer) {
        float weightDecay = 0.5f;
        float lr = 0.02f;
        double rel = Tolerances.GPU_OPTIMIZER_REL;
        for (int n : new int[] {1, 3, 1000, 4097}) {
            float[] p = inputs(n, 1);
            float[] g = inputs(n, 1);
            float[] m = inputs(n, 0.1);
            float[] v = abs(inputs(n, 0.01));
            Tensor cp = cpu(p, n);
            Tensor cm = cpu(m, n);
            Tensor cv = cpu(v, n);
            Tensor cpuCount = CPU.fromHost(new int[] {3}, 1);
            float momentum = optimizer.equals("sgd") ? 0f : 0.9f;
            boolean nesterov = optimizer.equals("sgd nesterov");
            if (optimizer.equals("adamw")) {
                CPU.adamUpdate(cp, cpu(g, n), cm, cv, lr, 0.9, 0.999, 1e-7f, weightDecay, cpuCount, (UpdateNorms) null);
            } else {
                CPU.sgdUpdate(cp, cpu(g, n), cm, lr, momentum, nesterov, weightDecay, (UpdateNorms) null);
            }
            cpuCount.close();
            float[] ep = cp.toFloatArray();
            float[] em = cm.toFloatArray();
            float[] ev = cv.toFloatArray();
            float stepSize = Backend.adamStepSize(lr, 0.9, 0.999, 4);
            double[] mAllowed = new double[n];
            double[] vAllowed = new double[n];
            double[] pAllowed = new double[n];
            for (int i = 0; i < n; i++) {
                double decay = Math.abs(p[i]) * weightDecay * lr;
                if (optimizer.equals("adamw")) {
                    double mScale = Math.abs(m[i]) + 0.1 * (Math.abs(g[i]) + Math.abs(m[i]));
                    double vScale = v[i] + 0.001 * (sq(g[i]) + v[i]);
                    mAllowed[i] = rel * mScale;
                    vAllowed[i] = rel * vScale;
                    double s = Math.sqrt(ev[i]);
                    double update = stepSize * Math.abs(em[i]) / (s + 1e-7);
                    pAllowed[i] = rel * (Math.abs(p[i]) + decay + update) + stepSize * rel * mScale / (s + 1e-7)
                            + update * (Math.sqrt(ev[i] + rel * vScale) - s) / (s + 1e-7);
                } else {
                    mAllowed[i] = momentum == 0 ? 0 : rel * (momentum * Math.abs(m[i]) + lr * Math.abs(g[i]));
                    vAllowed[i] = 0;
                    pAllowed[i] = rel * (Math.abs(p[i]) + decay + (1 + momentum) * Math.abs(em[i])
                            + lr * Math.abs(g[i])) + (1 + momentum) * mAllowed[i];
                }
            }
            for (Layout layout : Layout.values()) {
                String what = optimizer + " [" + n + "] " + layout;
                Tensor gp = output(layout, DType.FLOAT32, n);
                Tensor gm = output(layout, DType.FLOAT32, n);
                Tensor gv = output(layout, DType.FLOAT32, n);
                gpu.copyFromHost(p, gp);
                gpu.copyFromHost(m, gm);
                gpu.copyFromHost(v, gv);
                if (optimizer.equals("adamw")) {
                    Tensor count = gpuInts(new int[] {3}, layout);
                    gpu.adamUpdate(gp, input(g, layout, n), gm, gv, lr, 0.9, 0.999, 1e-7f, weightDecay, count,
                            (UpdateNorms) null);
                    assertArrayEquals(new int[] {4}, readInts(count), what + ": the update is counted");
                } else {
                    gpu.sgdUpdate(gp, input(g, layout, n), gm, lr, momentum, nesterov, weightDecay,
                            (UpdateNorms) null);
                }
                assertClose(what + " params", ep, read(gp), i -> pAllowed[i]);
                assertClose(what + " m or velocity", em, read(gm), i -> mAllowed[i]);
                assertClose(what + " v", ev, read(gv), i -> vAllowed[i]);
            }
        }
    }

    // ---- data -----------------------------------------------------------------------------------------

    @Test
    void gatherRowsMatchesTheCpuForBytesAndFloats() {
        int sourceRows = 1000;
        int cols = 784;
        byte[] pixels = randomBytes(sourceRows * cols);
        int[] indices = new int[sourceRows + 300];
        for (int i = 0; i < indices.length; i++) {
            indices[i] = rng.nextInt(sourceRows);
        }
        float scale = 1f / 255;
        for (int[] rowsAndFirst : new int[][] {{1, 0}, {3, 7}, {256, 1000}}) {
            int rows = rowsAndFirst[0];
            int first = rowsAndFirst[1];
            Tensor cpuOut = cpu(new float[rows * cols], rows, cols);
            CPU.gatherRows(CPU.fromHost(pixels, sourceRows, cols), CPU.fromHost(indices, indices.length), first, scale,
                    cpuOut);
            float[] floats = inputs(4097 * 3, 2);
            Tensor cpuFloatOut = cpu(new float[rows * 3], rows, 3);
            int[] floatIndices = rng.ints(indices.length, 0, 4097).toArray();
            CPU.gatherRows(cpu(floats, 4097, 3), CPU.fromHost(floatIndices, floatIndices.length), first, -0.5f,
                    cpuFloatOut);
            for (Layout layout : Layout.values()) {
                String what = "gather " + rows + " rows from " + first + " " + layout;
                Tensor source = own(gpu.allocate(DType.UINT8, sourceRows * cols + 1)).view(layout.offset, sourceRows,
                        cols);
                gpu.copy(own(gpu.fromHost(pixels, sourceRows, cols)), source);
                Tensor out = output(layout, DType.FLOAT32, rows, cols);
                gpu.gatherRows(source, gpuInts(indices, layout), first, scale, out);
                assertClose(what + " UINT8", cpuOut.toFloatArray(), read(out), i -> Tolerances.GPU_EXACT);
                Tensor floatOut = output(layout, DType.FLOAT32, rows, 3);
                gpu.gatherRows(input(floats, layout, 4097, 3), gpuInts(floatIndices, layout), first, -0.5f, floatOut);
                assertClose(what + " FLOAT32", cpuFloatOut.toFloatArray(), read(floatOut), i -> Tolerances.GPU_EXACT);
            }
        }
    }

    // ---- contract -------------------------------------------------------------------------------------

    @Test
    void shapeErrorsSayWhatTheCpuSays() {
        List<Executable[]> cases = new ArrayList<>();
        cases.add(pair(b -> b.gemm(false, false, 1f, b.allocate(DType.FLOAT32, 2, 3), b.allocate(DType.FLOAT32, 4, 5),
                0f, b.allocate(DType.FLOAT32, 2, 5))));
        cases.add(pair(b -> b.gemm(true, true, 1f, b.allocate(DType.FLOAT32, 3, 2), b.allocate(DType.FLOAT32, 5, 3),
                0f, b.allocate(DType.FLOAT32, 5, 2))));
        cases.add(pair(b -> b.activationForward(ActivationKind.PRELU, b.allocate(DType.FLOAT32, 2, 3),
                b.allocate(DType.FLOAT32, 2), b.allocate(DType.FLOAT32, 2, 3))));
        cases.add(pair(b -> b.activationForward(ActivationKind.ELU, b.allocate(DType.FLOAT32, 2, 3), null,
                b.allocate(DType.FLOAT32, 2, 3))));
        cases.add(pair(b -> b.activationBackward(ActivationKind.RELU, b.allocate(DType.FLOAT32, 2, 3), null,
                b.allocate(DType.FLOAT32, 3, 2), b.allocate(DType.FLOAT32, 2, 3))));
        cases.add(pair(b -> b.activationParameterGradient(ActivationKind.RELU, b.allocate(DType.FLOAT32, 2, 3),
                b.allocate(DType.FLOAT32, 1), b.allocate(DType.FLOAT32, 2, 3), b.allocate(DType.FLOAT32, 1))));
        cases.add(pair(b -> b.activationForward(ActivationKind.SOFTMAX, b.allocate(DType.FLOAT32, 2, 3), null,
                b.allocate(DType.FLOAT32, 2, 3))));
        cases.add(pair(b -> b.maxoutForward(b.allocate(DType.FLOAT32, 2, 5), 2, b.allocate(DType.FLOAT32, 2, 2),
                b.allocate(DType.INT32, 2, 2))));
        cases.add(pair(b -> b.maxoutForward(b.allocate(DType.FLOAT32, 2, 6), 2, b.allocate(DType.FLOAT32, 2, 3),
                b.allocate(DType.FLOAT32, 2, 3))));
        cases.add(pair(b -> b.softmaxCrossEntropy(b.allocate(DType.FLOAT32, 2, 3), b.allocate(DType.FLOAT32, 2, 3),
                1f, b.allocate(DType.FLOAT32, 2, 3), b.allocate(DType.FLOAT32, 3))));
        cases.add(pair(b -> b.columnSums(b.allocate(DType.FLOAT32, 2, 3), b.allocate(DType.FLOAT32, 2))));
        cases.add(pair(b -> b.biasActivationForward(ActivationKind.RELU, b.allocate(DType.FLOAT32, 2, 3),
                b.allocate(DType.FLOAT32, 2), null, b.allocate(DType.FLOAT32, 2, 3))));
        cases.add(pair(b -> b.biasActivationForward(ActivationKind.ELU, b.allocate(DType.FLOAT32, 2, 3),
                b.allocate(DType.FLOAT32, 3), null, b.allocate(DType.FLOAT32, 2, 3))));
        cases.add(pair(b -> b.biasActivationBackward(ActivationKind.RELU, b.allocate(DType.FLOAT32, 2, 3), null, null,
                null, null, b.allocate(DType.FLOAT32, 3), 1e-3f, null)));
        cases.add(pair(b -> b.biasActivationBackward(ActivationKind.RELU, b.allocate(DType.FLOAT32, 2, 3), null, null,
                b.allocate(DType.FLOAT32, 2, 3), b.allocate(DType.FLOAT32, 2, 3), b.allocate(DType.FLOAT32, 2), 1e-3f,
                null)));
        cases.add(pair(b -> b.sgdUpdate(b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 3), null, 0.1f, 0.9f,
                false)));
        cases.add(pair(b -> b.gatherRows(b.allocate(DType.UINT8, 4, 3), b.allocate(DType.INT32, 5), 3, 1f,
                b.allocate(DType.FLOAT32, 3, 3))));
        cases.add(pair(b -> b.copy(b.allocate(DType.FLOAT32, 3), b.allocate(DType.INT32, 3))));
        cases.add(pair(b -> b.segmentSumOfSquares(b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 2),
                b.allocate(DType.FLOAT32, 1))));
        cases.add(pair(b -> b.segmentSumOfSquares(b.allocate(DType.FLOAT32, 3), b.allocate(DType.INT32, 3),
                b.allocate(DType.FLOAT32, 1))));
        cases.add(pair(b -> b.accumulateUnitStatistics(ActivationKind.RELU, b.allocate(DType.FLOAT32, 2, 3), null,
                b.allocate(DType.FLOAT32, 3, 2), 1e-3f, b.allocate(DType.FLOAT32, 4, 3))));
        cases.add(pair(b -> b.accumulateUnitStatistics(ActivationKind.RELU, b.allocate(DType.FLOAT32, 2, 3), null,
                b.allocate(DType.FLOAT32, 2, 3), 1e-3f, b.allocate(DType.FLOAT32, 4, 2))));
        cases.add(pair(b -> b.accumulateUnitStatistics(ActivationKind.SOFTMAX, b.allocate(DType.FLOAT32, 2, 3), null,
                b.allocate(DType.FLOAT32, 2, 3), 1e-3f, b.allocate(DType.FLOAT32, 4, 3))));
        cases.add(pair(b -> b.accumulateUnitStatistics(ActivationKind.PRELU, b.allocate(DType.FLOAT32, 2, 3), null,
                b.allocate(DType.FLOAT32, 2, 3), 1e-3f, b.allocate(DType.FLOAT32, 4, 3))));
        cases.add(pair(b -> b.accumulateUnitStatistics(ActivationKind.ELU, b.allocate(DType.FLOAT32, 2, 3),
                b.allocate(DType.FLOAT32, 2), b.allocate(DType.FLOAT32, 2, 3), 1e-3f,
                b.allocate(DType.FLOAT32, 4, 3))));
        cases.add(pair(b -> b.accumulateUnitStatistics(ActivationKind.RELU, b.allocate(DType.FLOAT32, 2, 3), null,
                b.allocate(DType.FLOAT32, 2, 3), 1e-3f, b.allocate(DType.INT32, 4, 3))));
        cases.add(pair(b -> b.clipByValue(b.allocate(DType.INT32, 3), 1f)));
        cases.add(pair(b -> b.clipByGlobalNorm(b.allocate(DType.FLOAT32, 3), b.allocate(DType.INT32, 2), 1f)));
        // Batch normalization writing over another operand: y over x, dx over dy (a row apart), y partly over x.
        cases.add(pair(b -> {
            Tensor x = b.allocate(DType.FLOAT32, 2, 3);
            b.batchNormTrainingForward(x, b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 3), 0.9, 1e-3f,
                    b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 3),
                    b.allocate(DType.FLOAT32, 3), x);
        }));
        cases.add(pair(b -> {
            Tensor rows = b.allocate(DType.FLOAT32, 3, 3);
            b.batchNormBackward(b.allocate(DType.FLOAT32, 2, 3), b.allocate(DType.FLOAT32, 3),
                    b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 3), rows.rows(0, 2), rows.rows(1, 2),
                    b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 3));
        }));
        cases.add(pair(b -> {
            Tensor rows = b.allocate(DType.FLOAT32, 3, 3);
            b.batchNormInferenceForward(rows.rows(1, 2), b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 3),
                    b.allocate(DType.FLOAT32, 3), b.allocate(DType.FLOAT32, 3), 1e-3f, rows.rows(0, 2));
        }));
        for (int c = 0; c < cases.size(); c++) {
            Throwable onCpu = assertThrows(RuntimeException.class, cases.get(c)[0], "case " + c + " on the CPU");
            Throwable onGpu = assertThrows(RuntimeException.class, cases.get(c)[1], "case " + c + " on the GPU");
            assertEquals(onCpu.getClass(), onGpu.getClass(), "case " + c + ": " + onGpu);
            assertEquals(onCpu.getMessage(), onGpu.getMessage().replace(" on cuda", " on cpu"), "case " + c);
        }
    }

    @Test
    void steadyStateTrainingTakesNoMoreDeviceMemory() {
        try (Sequential model = chapterLikeModel(gpu, Mlp.HiddenUnits.of("relu"), Loss.CATEGORICAL_CROSSENTROPY)) {
            float[][] x = new float[1][64 * 784];
            float[][] t = new float[1][64 * 10];
            fillBatch(x[0], t[0], 64);
            Tensor xb = own(gpu.fromHost(x[0], 64, 784));
            Tensor tb = own(gpu.fromHost(t[0], 64, 10));
            Tensor totals = own(gpu.allocate(DType.FLOAT32, 2));
            Runnable round = () -> {
                model.computeGradients(xb, tb, totals);
                model.applyGradients();
                // evaluate() style: a smaller batch, and tensors made and closed each time.
                try (Tensor x17 = gpu.fromHost(Arrays.copyOf(x[0], 17 * 784), 17, 784);
                     Tensor t17 = gpu.fromHost(Arrays.copyOf(t[0], 17 * 10), 17, 10)) {
                    model.accumulateLoss(x17, t17, totals);
                }
                gpu.synchronize();
            };
            round.run();
            long reserved = gpu.reservedBytes();
            long live = gpu.liveBytes();
            for (int i = 0; i < 20; i++) {
                round.run();
            }
            assertEquals(reserved, gpu.reservedBytes(), "device memory grew in steady state");
            assertEquals(live, gpu.liveBytes(), "live device memory grew in steady state");
        }
    }

    /**
     * One step of a 784-64-32-10 ReLU MLP (computeGradients, applyGradients) launches: forward, 3 GEMMs, 2
     * fused bias + ReLU (the output layer: its GEMM alone); the loss, 1 kernel (which adds the output
     * bias, and whose last block adds the totals and the output bias gradient); backward, the output
     * layer's 2 GEMMs, the second
     * layer's fused ReLU backward + bias gradient and 2 GEMMs, the first layer's fused backward and 1 GEMM
     * (no dx); Adam, 1 (the update, which also counts itself in its device step count). With the profiler, nothing
     * more: the statistics ride on the backward kernels, and the update norms on Adam's kernel, whose last
     * block adds the chunks' partial sums.
     */
    @Test
    void oneTrainingStepLaunchesOneKernelPerFusedStage() {
        int expected = (3 + 2) + 1 + (2 + 3 + 2) + 1;
        try (Sequential model = chapterLikeModel(gpu, Mlp.HiddenUnits.of("relu"), Loss.CATEGORICAL_CROSSENTROPY)) {
            float[] x = new float[64 * 784];
            float[] t = new float[64 * 10];
            fillBatch(x, t, 64);
            Tensor xb = own(gpu.fromHost(x, 64, 784));
            Tensor tb = own(gpu.fromHost(t, 64, 10));
            Tensor totals = own(gpu.allocate(DType.FLOAT32, 2));
            model.computeGradients(xb, tb, totals); // the first step may size the loss scratch
            model.applyGradients();
            long before = gpu.queuedOperations();
            model.computeGradients(xb, tb, totals);
            model.applyGradients();
            assertEquals(expected, gpu.queuedOperations() - before, "kernels and cuBLAS calls (no copies) of one step");

            int hidden = 2;
            Tensor[] statistics = {own(gpu.allocate(DType.FLOAT32, 4, 64)), own(gpu.allocate(DType.FLOAT32, 4, 32))};
            for (int i = 0; i < hidden; i++) {
                assertTrue(model.layers().get(i).watchUnits(statistics[i], 0.01f));
            }
            int[] starts = new int[model.parameterGroups().size() + 1];
            for (int g = 0; g < starts.length - 1; g++) {
                starts[g] = model.parameterGroups().get(g).offset();
            }
            starts[starts.length - 1] = (int) model.parameters().size();
            UpdateNorms norms = new UpdateNorms(own(gpu.fromHost(starts, starts.length)),
                    own(gpu.allocate(DType.FLOAT32, starts.length - 1)), own(gpu.allocate(DType.FLOAT32,
                    starts.length - 1)));
            before = gpu.queuedOperations();
            model.computeGradients(xb, tb, totals);
            model.applyGradients(norms);
            assertEquals(expected, gpu.queuedOperations() - before, "kernels and cuBLAS calls of one profiled step");
            for (int i = 0; i < hidden; i++) {
                model.layers().get(i).watchUnits(null, 0f);
            }
        }
    }

    @Test
    void aSecondBackendSharesTheDeviceAndClosesOnItsOwn() {
        Tensor mine = own(gpu.fromHost(new float[] {1, 2, 3}, 3));
        CudaBackend other = new CudaBackend();
        Tensor theirs = other.fromHost(new float[] {4, 5}, 2);
        assertArrayEquals(new float[] {4, 5}, theirs.toFloatArray());
        assertThrows(IllegalArgumentException.class, () -> gpu.copy(theirs, own(gpu.allocate(DType.FLOAT32, 2))),
                "a tensor of another backend");
        other.close();
        other.close();
        assertThrows(IllegalStateException.class, () -> other.allocate(DType.FLOAT32, 1));
        theirs.close(); // after its backend: harmless
        assertArrayEquals(new float[] {1, 2, 3}, mine.toFloatArray(), "the first backend still works");
    }

    @Test
    void describesTheDevice() {
        String d = gpu.description();
        assertTrue(d.contains(gpu.device().name()) && d.contains("compute capability") && d.contains("cuBLAS")
                && d.contains("driver"), d);
        assertEquals("cuda", gpu.name());
        assertTrue(gpu.device().multiprocessors() > 0 && gpu.device().totalMemoryBytes() > 0, d);
    }

    // ---- the step's changing values on the device, and graphs -------------------------------------------

    @Test
    void counterFormsOfGatherAndRowStoreMatchTheCpuExactly() {
        int sourceRows = 300;
        int cols = 7;
        byte[] pixels = randomBytes(sourceRows * cols);
        float[] floats = inputs(sourceRows * cols, 2);
        int[] indices = rng.ints(sourceRows, 0, sourceRows).toArray();
        Tensor cpuBytes = own(CPU.fromHost(pixels, sourceRows, cols));
        Tensor cpuFloats = cpu(floats, sourceRows, cols);
        Tensor cpuIndices = own(CPU.fromHost(indices, indices.length));
        for (int[] countAndRows : new int[][] {{0, 64}, {3, 64}, {4, 44}}) { // 300 rows in 64s: the last has 44
            int count = countAndRows[0];
            int rows = countAndRows[1];
            Tensor cpuCounter = own(CPU.fromHost(new int[] {count}, 1));
            Tensor wantBytes = cpu(new float[rows * cols], rows, cols);
            Tensor wantFloats = cpu(new float[rows * cols], rows, cols);
            CPU.gatherRows(cpuBytes, cpuIndices, cpuCounter, 64, 0.5f, wantBytes);
            CPU.gatherRows(cpuFloats, cpuIndices, cpuCounter, 64, -1f, wantFloats);
            for (Layout layout : Layout.values()) {
                String what = "gather at count " + count + " " + layout;
                Tensor bytes = own(gpu.allocate(DType.UINT8, sourceRows * cols + 1)).view(layout.offset, sourceRows,
                        cols);
                gpu.copy(own(gpu.fromHost(pixels, sourceRows, cols)), bytes);
                Tensor counter = gpuInts(new int[] {count}, layout);
                Tensor out = output(layout, DType.FLOAT32, rows, cols);
                gpu.gatherRows(bytes, gpuInts(indices, layout), counter, 64, 0.5f, out);
                assertClose(what + " UINT8", wantBytes.toFloatArray(), read(out), i -> Tolerances.GPU_EXACT);
                Tensor floatOut = output(layout, DType.FLOAT32, rows, cols);
                gpu.gatherRows(input(floats, layout, sourceRows, cols), gpuInts(indices, layout), counter, 64, -1f,
                        floatOut);
                assertClose(what + " FLOAT32", wantFloats.toFloatArray(), read(floatOut), i -> Tolerances.GPU_EXACT);
                // Both at once, as a training batch (features of 7 columns, targets of 3: different widths).
                Tensor targets = input(floats, layout, sourceRows * cols / 3, 3);
                Tensor batchFeatures = output(layout, DType.FLOAT32, rows, cols);
                Tensor batchTargets = output(layout, DType.FLOAT32, rows, 3);
                Tensor wantTargets = cpu(new float[rows * 3], rows, 3);
                CPU.gatherRows(cpu(floats, sourceRows * cols / 3, 3), cpuIndices, cpuCounter, 64, 1f, wantTargets);
                gpu.gatherBatch(bytes, 0.5f, targets, gpuInts(indices, layout), counter, 64, batchFeatures,
                        batchTargets);
                assertClose(what + " batch features", wantBytes.toFloatArray(), read(batchFeatures),
                        i -> Tolerances.GPU_EXACT);
                assertClose(what + " batch targets", wantTargets.toFloatArray(), read(batchTargets),
                        i -> Tolerances.GPU_EXACT);
            }
        }
        // The next batch fetched ahead: 300 rows in batches of 64 (the last has 44 rows), then one past the end,
        // each fetch advancing the counter; the rows a fetch does not fill keep what they held.
        for (Layout layout : Layout.values()) {
            Tensor features = own(gpu.allocate(DType.UINT8, sourceRows * cols + 1)).view(layout.offset, sourceRows,
                    cols);
            gpu.copy(own(gpu.fromHost(pixels, sourceRows, cols)), features);
            Tensor targets = input(floats, layout, sourceRows * cols / 3, 3);
            Tensor gpuIndices = gpuInts(indices, layout);
            Tensor counter = gpuInts(new int[] {0}, layout);
            Tensor cpuCounter = own(CPU.fromHost(new int[] {0}, 1));
            Tensor x = output(layout, DType.FLOAT32, 64, cols);
            Tensor y = output(layout, DType.FLOAT32, 64, 3);
            Tensor cpuX = cpu(filled(64 * cols, -9f), 64, cols);
            Tensor cpuY = cpu(filled(64 * 3, -9f), 64, 3);
            gpu.fill(x, -9f);
            gpu.fill(y, -9f);
            for (int count = 0; count < 6; count++) {
                String what = "gatherNextBatch at count " + count + " " + layout;
                CPU.gatherNextBatch(cpuBytes, 0.5f, cpu(floats, sourceRows * cols / 3, 3), cpuIndices, cpuCounter, 64,
                        cpuX, cpuY);
                gpu.gatherNextBatch(features, 0.5f, targets, gpuIndices, counter, 64, x, y);
                assertClose(what + ": features", cpuX.toFloatArray(), read(x), i -> Tolerances.GPU_EXACT);
                assertClose(what + ": targets", cpuY.toFloatArray(), read(y), i -> Tolerances.GPU_EXACT);
                assertArrayEquals(new int[] {count + 1}, readInts(counter), what + ": the counter");
            }
            // A negative counter (the CPU refuses it): nothing gathered, the counter still advanced.
            float[] xBefore = read(x);
            float[] yBefore = read(y);
            gpu.copyFromHost(new int[] {-1}, counter);
            gpu.gatherNextBatch(features, 0.5f, targets, gpuIndices, counter, 64, x, y);
            assertArrayEquals(xBefore, read(x), "a negative counter gathers no features " + layout);
            assertArrayEquals(yBefore, read(y), "a negative counter gathers no targets " + layout);
            assertArrayEquals(new int[] {0}, readInts(counter), "a negative counter advances " + layout);
        }
        float[] src = inputs(1025, 1);
        for (Layout layout : Layout.values()) {
            Tensor table = output(layout, DType.FLOAT32, 3, 1025);
            gpu.fill(table, 7f);
            Tensor row = gpuInts(new int[] {2}, layout);
            gpu.copyToRow(input(src, layout, 1025), table, row);
            float[] expected = new float[3 * 1025];
            Arrays.fill(expected, 7f);
            System.arraycopy(src, 0, expected, 2 * 1025, 1025);
            assertClose("copyToRow " + layout, expected, read(table), i -> Tolerances.GPU_EXACT);
            gpu.copyFromHost(new int[] {3}, row);
            gpu.copyToRow(input(src, layout, 1025), table, row);
            assertClose("copyToRow outside the table writes nothing " + layout, expected, read(table),
                    i -> Tolerances.GPU_EXACT);
            Tensor counters = gpuInts(new int[] {0, 41, -1, 7}, layout);
            gpu.advanceCounters(counters);
            assertArrayEquals(new int[] {1, 42, 0, 8}, readInts(counters), "advanceCounters " + layout);
        }
    }

    /**
     * The Adam update with its step size from the device's count has the bits of the host-scalar update given
     * the host's step size: the device computes the bias correction with the host's operations.
     */
    @Test
    void adamUpdateAtACounterIsTheHostScalarUpdateBitForBit() {
        int n = 4099;
        int[] starts = {0, 3, 3, 4000, n};
        float[] p = inputs(n, 1);
        float[] g = inputs(n, 1);
        float[] m = inputs(n, 0.1);
        float[] v = abs(inputs(n, 0.01));
        for (int iterations : new int[] {0, 1, 9, 12_344, 1_000_000}) {
            float stepSize = Backend.adamStepSize(2e-3, 0.85, 0.995, iterations + 1L);
            for (boolean measured : new boolean[] {false, true}) {
                Layout layout = measured ? Layout.SHIFTED : Layout.ALIGNED;
                String what = "iterations " + iterations + (measured ? " measured" : "") + " " + layout;
                Tensor[] host = {output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n),
                    output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, 2, 4)};
                Tensor[] counted = {output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, n),
                    output(layout, DType.FLOAT32, n), output(layout, DType.FLOAT32, 2, 4)};
                for (Tensor[] buffers : new Tensor[][] {host, counted}) {
                    gpu.copyFromHost(p, buffers[0]);
                    gpu.copyFromHost(m, buffers[1]);
                    gpu.copyFromHost(v, buffers[2]);
                    gpu.fill(buffers[3], 0f);
                }
                Tensor grads = input(g, layout, n);
                Tensor count = gpuInts(new int[] {iterations}, layout);
                Tensor segmentStarts = gpuInts(starts, layout);
                gpu.adamUpdate(host[0], grads, host[1], host[2], (float) 0.85, (float) 0.995, 1e-7f, stepSize,
                        measured ? norms(segmentStarts, host[3]) : null);
                gpu.adamUpdate(counted[0], grads, counted[1], counted[2], 2e-3, 0.85, 0.995, 1e-7f, count,
                        measured ? norms(segmentStarts, counted[3]) : null);
                for (int b = 0; b < 4; b++) {
                    float[] want = read(host[b]);
                    assertClose(what + " buffer " + b, want, read(counted[b]), i -> Tolerances.GPU_EXACT);
                }
                assertArrayEquals(new int[] {iterations + 1}, readInts(count), what + ": the update is counted");
            }
        }
    }

    /**
     * Adam, and AMSGrad with a weight decay, under a per-step schedule (a warmup of 4 updates from 1e-4, then a
     * cosine over 6 down to 0.1 of the rate), over 12 consecutive updates with fresh gradients, across the warmup's
     * end and the cosine's: the GPU's parameters and moments are the CPU's bit for bit after every update (and its
     * norms close), the device computing each update's rate from its own count as the host does.
     */
    @Test
    void adamUnderAStepScheduleMatchesTheCpuBitForBitAcrossTheWarmup() {
        int n = 4099;
        int[] starts = {0, 3, 3, 4000, n};
        StepSchedule schedule = StepSchedule.cosineDecay(1e-4, 4, 6, 0.1);
        for (boolean amsgrad : new boolean[] {false, true}) {
            for (boolean measured : new boolean[] {false, true}) {
                Layout layout = measured ? Layout.SHIFTED : Layout.ALIGNED;
                float weightDecay = amsgrad ? 0.004f : 0f;
                float[][] initial = {inputs(n, 1), inputs(n, 0.1), abs(inputs(n, 0.01)), abs(inputs(n, 0.01))};
                Tensor[] onCpu = new Tensor[4];
                Tensor[] onGpu = new Tensor[4];
                for (int b = 0; b < 4; b++) {
                    onCpu[b] = cpu(initial[b], n);
                    onGpu[b] = output(layout, DType.FLOAT32, n);
                    gpu.copyFromHost(initial[b], onGpu[b]);
                }
                Tensor cpuNorms = cpu(new float[8], 2, 4);
                Tensor gpuNorms = output(layout, DType.FLOAT32, 2, 4);
                Tensor cpuCount = own(CPU.fromHost(new int[] {0}, 1));
                Tensor gpuCount = gpuInts(new int[] {0}, layout);
                Tensor cpuStarts = own(CPU.fromHost(starts, starts.length));
                Tensor gpuStarts = gpuInts(starts, layout);
                for (int step = 0; step < 12; step++) {
                    float[] g = inputs(n, 1);
                    CPU.adamUpdate(onCpu[0], cpu(g, n), onCpu[1], onCpu[2], amsgrad ? onCpu[3] : null, 2e-3, schedule,
                            0.9, 0.999, 1e-7f, weightDecay, cpuCount, measured ? norms(cpuStarts, cpuNorms) : null);
                    gpu.adamUpdate(onGpu[0], input(g, layout, n), onGpu[1], onGpu[2], amsgrad ? onGpu[3] : null, 2e-3,
                            schedule, 0.9, 0.999, 1e-7f, weightDecay, gpuCount,
                            measured ? norms(gpuStarts, gpuNorms) : null);
                    String what = (amsgrad ? "AMSGrad" : "Adam") + (measured ? " measured" : "") + ", update " + step
                            + " at rate " + schedule.rate(2e-3, step);
                    for (int b = 0; b < (amsgrad ? 4 : 3); b++) {
                        assertClose(what + ", buffer " + b, onCpu[b].toFloatArray(), read(onGpu[b]),
                                i -> Tolerances.GPU_EXACT);
                    }
                    if (measured) { // sums in other orders (the CPU's float lanes): close, not the same bits
                        float[] want = cpuNorms.toFloatArray();
                        assertClose(what + ", weight and update norms", want, read(gpuNorms),
                                i -> Tolerances.CPU_UPDATE_NORMS_REL * Math.abs(want[i]));
                    }
                    assertArrayEquals(new int[] {step + 1}, readInts(gpuCount), what + ": counted");
                }
            }
        }
    }

    /**
     * Nadam and Adamax, each with a weight decay, under the per-step schedule of
     * {@link #adamUnderAStepScheduleMatchesTheCpuBitForBitAcrossTheWarmup}, over 12 updates across both its ends:
     * the GPU's parameters and state are the CPU's bit for bit after every update (Nadam's u_product too).
     */
    @Test
    void nadamAndAdamaxUnderAStepScheduleMatchTheCpuBitForBit() {
        int n = 4099;
        int[] starts = {0, 3, 3, 4000, n};
        StepSchedule schedule = StepSchedule.cosineDecay(1e-4, 4, 6, 0.1);
        for (boolean nadam : new boolean[] {true, false}) {
            for (boolean measured : new boolean[] {false, true}) {
                Layout layout = measured ? Layout.SHIFTED : Layout.ALIGNED;
                float[][] initial = {inputs(n, 1), inputs(n, 0.1), abs(inputs(n, 0.01))};
                Tensor[] onCpu = new Tensor[3];
                Tensor[] onGpu = new Tensor[3];
                for (int b = 0; b < 3; b++) {
                    onCpu[b] = cpu(initial[b], n);
                    onGpu[b] = output(layout, DType.FLOAT32, n);
                    gpu.copyFromHost(initial[b], onGpu[b]);
                }
                Tensor cpuNorms = cpu(new float[8], 2, 4);
                Tensor gpuNorms = output(layout, DType.FLOAT32, 2, 4);
                Tensor cpuCount = own(CPU.fromHost(new int[] {0}, 1));
                Tensor gpuCount = gpuInts(new int[] {0}, layout);
                Tensor cpuProduct = cpu(new float[] {1f}, 1);
                Tensor gpuProduct = input(new float[] {1f}, layout, 1);
                Tensor cpuStarts = own(CPU.fromHost(starts, starts.length));
                Tensor gpuStarts = gpuInts(starts, layout);
                for (int step = 0; step < 12; step++) {
                    float[] g = inputs(n, 1);
                    UpdateNorms cpuMeasure = measured ? norms(cpuStarts, cpuNorms) : null;
                    UpdateNorms gpuMeasure = measured ? norms(gpuStarts, gpuNorms) : null;
                    if (nadam) {
                        CPU.nadamUpdate(onCpu[0], cpu(g, n), onCpu[1], onCpu[2], 2e-3f, schedule, 0.9, 0.999, 1e-7f,
                                0.004f, cpuCount, cpuProduct, cpuMeasure);
                        gpu.nadamUpdate(onGpu[0], input(g, layout, n), onGpu[1], onGpu[2], 2e-3f, schedule, 0.9,
                                0.999, 1e-7f, 0.004f, gpuCount, gpuProduct, gpuMeasure);
                    } else {
                        CPU.adamaxUpdate(onCpu[0], cpu(g, n), onCpu[1], onCpu[2], 2e-3f, schedule, 0.9, 0.999, 1e-7f,
                                0.004f, cpuCount, cpuMeasure);
                        gpu.adamaxUpdate(onGpu[0], input(g, layout, n), onGpu[1], onGpu[2], 2e-3f, schedule, 0.9,
                                0.999, 1e-7f, 0.004f, gpuCount, gpuMeasure);
                    }
                    String what = (nadam ? "Nadam" : "Adamax") + (measured ? " measured" : "") + ", update " + step;
                    for (int b = 0; b < 3; b++) {
                        assertClose(what + ", buffer " + b, onCpu[b].toFloatArray(), read(onGpu[b]),
                                i -> Tolerances.GPU_EXACT);
                    }
                    if (nadam) {
                        assertClose(what + ", u_product", cpuProduct.toFloatArray(), gpuProduct.toFloatArray(),
                                i -> Tolerances.GPU_EXACT);
                    }
                    assertArrayEquals(new int[] {step + 1}, readInts(gpuCount), what + ": counted");
                }
            }
        }
    }

    /**
     * SGD (plain, with momentum, with Nesterov momentum), RMSprop (centered, with momentum) and Adagrad, each with a
     * weight decay, under the per-step schedule of {@link #adamUnderAStepScheduleMatchesTheCpuBitForBitAcrossTheWarmup},
     * over 12 updates across both its ends: the GPU's parameters and state are the CPU's bit for bit after every
     * update, and each update is counted once, by the grid's last block (the plain kernels over many blocks, the
     * measured ones over chunks). Without a count the same kernels take the rate as given (the other tests).
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"sgd", "sgd-momentum", "sgd-nesterov", "rmsprop", "adagrad"})
    void sgdRmspropAndAdagradUnderAStepScheduleMatchTheCpuBitForBit(String optimizer) {
        int n = 4099;
        int[] starts = {0, 3, 3, 4000, n};
        StepSchedule schedule = StepSchedule.cosineDecay(1e-4, 4, 6, 0.1);
        for (boolean measured : new boolean[] {false, true}) {
            Layout layout = measured ? Layout.SHIFTED : Layout.ALIGNED;
            // The parameters, then the state: SGD's velocity; RMSprop's velocity, average gradient and momentum
            // from 0, as in a run (the velocity then stays above the average's square); Adagrad's accumulator.
            float[][] initial = switch (optimizer) {
                case "sgd" -> new float[][] {inputs(n, 1)};
                case "rmsprop" -> new float[][] {inputs(n, 1), new float[n], new float[n], new float[n]};
                case "adagrad" -> new float[][] {inputs(n, 1), abs(inputs(n, 0.1))};
                default -> new float[][] {inputs(n, 1), inputs(n, 0.01)};
            };
            int buffers = initial.length;
            Tensor[] onCpu = new Tensor[buffers];
            Tensor[] onGpu = new Tensor[buffers];
            for (int b = 0; b < buffers; b++) {
                onCpu[b] = cpu(initial[b], n);
                onGpu[b] = output(layout, DType.FLOAT32, n);
                gpu.copyFromHost(initial[b], onGpu[b]);
            }
            Tensor cpuNorms = cpu(new float[8], 2, 4);
            Tensor gpuNorms = output(layout, DType.FLOAT32, 2, 4);
            Tensor cpuCount = own(CPU.fromHost(new int[] {0}, 1));
            Tensor gpuCount = gpuInts(new int[] {0}, layout);
            Tensor cpuStarts = own(CPU.fromHost(starts, starts.length));
            Tensor gpuStarts = gpuInts(starts, layout);
            for (int step = 0; step < 12; step++) {
                float[] g = inputs(n, 1);
                UpdateNorms cpuMeasure = measured ? norms(cpuStarts, cpuNorms) : null;
                UpdateNorms gpuMeasure = measured ? norms(gpuStarts, gpuNorms) : null;
                switch (optimizer) {
                    case "rmsprop" -> {
                        CPU.rmspropUpdate(onCpu[0], cpu(g, n), onCpu[1], onCpu[2], onCpu[3], 2e-3f, schedule, 0.9f,
                                0.5f, 1e-7f, true, 0.004f, cpuCount, cpuMeasure);
                        gpu.rmspropUpdate(onGpu[0], input(g, layout, n), onGpu[1], onGpu[2], onGpu[3], 2e-3f,
                                schedule, 0.9f, 0.5f, 1e-7f, true, 0.004f, gpuCount, gpuMeasure);
                    }
                    case "adagrad" -> {
                        CPU.adagradUpdate(onCpu[0], cpu(g, n), onCpu[1], 2e-2f, schedule, 1e-7f, 0.004f, cpuCount,
                                cpuMeasure);
                        gpu.adagradUpdate(onGpu[0], input(g, layout, n), onGpu[1], 2e-2f, schedule, 1e-7f, 0.004f,
                                gpuCount, gpuMeasure);
                    }
                    default -> {
                        float momentum = optimizer.equals("sgd") ? 0f : 0.9f;
                        boolean nesterov = optimizer.equals("sgd-nesterov");
                        CPU.sgdUpdate(onCpu[0], cpu(g, n), buffers > 1 ? onCpu[1] : null, 5e-2f, schedule, momentum,
                                nesterov, 0.004f, cpuCount, cpuMeasure);
                        gpu.sgdUpdate(onGpu[0], input(g, layout, n), buffers > 1 ? onGpu[1] : null, 5e-2f, schedule,
                                momentum, nesterov, 0.004f, gpuCount, gpuMeasure);
                    }
                }
                String what = optimizer + (measured ? " measured" : "") + ", update " + step;
                for (int b = 0; b < buffers; b++) {
                    assertClose(what + ", buffer " + b, onCpu[b].toFloatArray(), read(onGpu[b]),
                            i -> Tolerances.GPU_EXACT);
                }
                assertArrayEquals(new int[] {step + 1}, readInts(gpuCount), what + ": counted");
                assertArrayEquals(new int[] {step + 1}, cpuCount.toIntArray(), what + ": counted on the CPU");
            }
        }
    }

    /**
     * A count of an empty buffer is still counted (one block runs over no element), and a schedule without a
     * count is refused, naming the op, before anything runs.
     */
    @Test
    void aCountedUpdateOfNoElementCountsAndAScheduleNeedsACount() {
        Tensor count = gpuInts(new int[] {7}, Layout.ALIGNED);
        Tensor empty = output(Layout.ALIGNED, DType.FLOAT32, 0);
        StepSchedule schedule = StepSchedule.warmup(0, 3);
        gpu.sgdUpdate(empty, empty, null, 0.1f, schedule, 0f, false, 0f, count, (UpdateNorms) null);
        gpu.rmspropUpdate(empty, empty, empty, null, null, 0.1f, schedule, 0.9f, 0f, 1e-7f, false, 0f, count,
                (UpdateNorms) null);
        gpu.adagradUpdate(empty, empty, empty, 0.1f, schedule, 1e-7f, 0f, count, (UpdateNorms) null);
        assertArrayEquals(new int[] {10}, readInts(count));
        Tensor p = output(Layout.ALIGNED, DType.FLOAT32, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpu.sgdUpdate(p, p, null, 0.1f, schedule, 0f, false, 0f, null, (UpdateNorms) null));
        assertTrue(e.getMessage().contains("sgdUpdate: a per-step learning-rate schedule needs the step count"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CPU.adagradUpdate(cpu(new float[3], 3), cpu(new float[3], 3), cpu(new float[3], 3), 0.1f,
                        schedule, 1e-7f, 0f, null, (UpdateNorms) null));
        assertTrue(e.getMessage().contains("adagradUpdate: a per-step learning-rate schedule needs the step count"),
                e.getMessage());
    }

    /** A count at 2^31 - 1 stays there on the GPU, as on the CPU, rather than wrapping to a negative step. */
    @Test
    void theUpdateCountStaysAtItsLargestValue() {
        Tensor empty = output(Layout.ALIGNED, DType.FLOAT32, 0);
        StepSchedule schedule = StepSchedule.warmup(0, 3);
        Tensor count = gpuInts(new int[] {Integer.MAX_VALUE - 1}, Layout.ALIGNED);
        gpu.sgdUpdate(empty, empty, null, 0.1f, schedule, 0f, false, 0f, count, (UpdateNorms) null);
        gpu.adagradUpdate(empty, empty, empty, 0.1f, schedule, 1e-7f, 0f, count, (UpdateNorms) null);
        gpu.rmspropUpdate(empty, empty, empty, null, null, 0.1f, schedule, 0.9f, 0f, 1e-7f, false, 0f, count,
                (UpdateNorms) null);
        assertArrayEquals(new int[] {Integer.MAX_VALUE}, readInts(count));
    }

    private static UpdateNorms norms(Tensor segmentStarts, Tensor weightAndUpdate) {
        int segments = weightAndUpdate.columnCount();
        return new UpdateNorms(segmentStarts, weightAndUpdate.rows(0, 1).reshape(segments),
                weightAndUpdate.rows(1, 1).reshape(segments));
    }

    /**
     * A captured step runs nothing until launched; each launch replays it, its counter moving on the device:
     * the same results as the same ops queued eagerly. The graph outlives nothing: closing it twice is harmless.
     */
    @Test
    void aCapturedStepReplaysAsEagerSteps() {
        int rows = 5;
        int cols = 3;
        int steps = 4;
        float[] data = inputs(steps * rows * cols, 1);
        int[] order = rng.ints(steps * rows, 0, steps * rows).toArray();
        float[][] results = new float[2][];
        for (int mode = 0; mode < 2; mode++) {
            Tensor source = own(gpu.fromHost(data, steps * rows, cols));
            Tensor indices = own(gpu.fromHost(order, order.length));
            Tensor counter = own(gpu.allocate(DType.INT32, 1));
            Tensor batch = own(gpu.allocate(DType.FLOAT32, rows, cols));
            Tensor sums = own(gpu.allocate(DType.FLOAT32, cols));
            Tensor table = own(gpu.fromHost(nans(steps * cols), steps, cols));
            Runnable step = () -> {
                gpu.gatherRows(source, indices, counter, rows, 1f, batch);
                gpu.columnSums(batch, sums);
                gpu.copyToRow(sums, table, counter);
                gpu.advanceCounters(counter);
            };
            if (mode == 0) {
                for (int s = 0; s < steps; s++) {
                    step.run();
                }
            } else {
                try (var graph = gpu.capture(step)) {
                    assertArrayEquals(new int[] {0}, counter.toIntArray(), "capturing runs nothing");
                    for (int s = 0; s < steps; s++) {
                        graph.launch();
                    }
                    graph.close();
                }
            }
            assertArrayEquals(new int[] {steps}, counter.toIntArray());
            results[mode] = table.toFloatArray();
        }
        assertClose("graph replays against eager steps", results[0], results[1], i -> Tolerances.GPU_EXACT);
    }

    /**
     * Work queued aside (the side stream) starts after what was queued before it and is seen by what is
     * queued after the join, eagerly and inside a captured graph (where the side stream joins the capture
     * and the join ends its branch); and nothing may be queued aside from aside.
     */
    @Test
    void workQueuedAsideRunsAfterTheForkAndBeforeWhatFollowsTheJoin() {
        Tensor a = own(gpu.allocate(DType.FLOAT32, 64, 32));
        Tensor b = own(gpu.fromHost(filled(32 * 16, 0.5f), 32, 16));
        Tensor product = own(gpu.allocate(DType.FLOAT32, 64, 16));
        Tensor sums = own(gpu.allocate(DType.FLOAT32, 16));
        Tensor other = own(gpu.allocate(DType.FLOAT32, 1000));
        Runnable step = () -> {
            gpu.fill(a, 2f); // before the fork: the work aside must see it
            gpu.aside(() -> gpu.gemm(false, false, 1f, a, b, 0f, product));
            gpu.fill(other, 3f); // beside the work aside
            gpu.joinAside();
            gpu.columnSums(product, sums); // after the join: must see the product
        };
        float[] expected = filled(16, 64 * 32 * 2f * 0.5f);
        step.run();
        assertArrayEquals(expected, sums.toFloatArray(), "eager");
        assertArrayEquals(filled(1000, 3f), other.toFloatArray());
        gpu.fill(sums, Float.NaN);
        gpu.fill(product, Float.NaN);
        try (var graph = gpu.capture(step)) {
            graph.launch();
            assertArrayEquals(expected, sums.toFloatArray(), "a captured graph");
        }
        gpu.fill(product, Float.NaN);
        gpu.aside(() -> gpu.fill(product, 1f)); // not joined: a wait still waits for the side stream
        assertArrayEquals(filled(64 * 16, 1f), product.toFloatArray(), "a read waits for the work aside");
        assertThrows(IllegalStateException.class, () -> gpu.aside(() -> gpu.aside(() -> { })), "aside does not nest");
        // A reduction or a loss would share the main stream's scratch: not aside.
        IllegalStateException shared = assertThrows(IllegalStateException.class, () -> gpu.aside(
                () -> gpu.segmentSumOfSquares(other, own(gpu.fromHost(new int[] {0, 1000}, 2)), sums.view(0, 1))));
        assertTrue(shared.getMessage().contains("cannot be queued aside"), shared.getMessage());
        gpu.joinAside();
    }

    @Test
    void timedOpsAreListedInQueueOrderWithTheirDeviceTimesAndTheWorkStillRuns() {
        Tensor a = own(gpu.fromHost(inputs(256 * 64, 1), 256, 64));
        Tensor b = own(gpu.fromHost(inputs(64 * 32, 1), 64, 32));
        Tensor c = own(gpu.allocate(DType.FLOAT32, 256, 32));
        Tensor sums = own(gpu.allocate(DType.FLOAT32, 32));
        gpu.startTimingOps();
        assertThrows(IllegalStateException.class, gpu::startTimingOps, "timing does not nest");
        assertThrows(IllegalStateException.class, () -> gpu.capture(() -> gpu.fill(sums, 0f)),
                "no capture while ops are timed");
        Tensor beside = own(gpu.allocate(DType.FLOAT32, 100));
        gpu.gemm(false, false, 1f, a, b, 0f, c);
        gpu.aside(() -> gpu.fill(beside, 1f));
        gpu.columnSums(c, sums);
        gpu.joinAside();
        gpu.copy(sums, sums); // onto itself: no op queued, none timed
        List<CudaBackend.OpTime> times = gpu.stopTimingOps();
        assertEquals(List.of("gemm 256x64x32", "fill_f32", "column_sums"),
                times.stream().map(CudaBackend.OpTime::name).toList());
        assertEquals(List.of(false, true, false), times.stream().map(CudaBackend.OpTime::aside).toList());
        for (CudaBackend.OpTime t : times) {
            assertTrue(t.milliseconds() >= 0 && Float.isFinite((float) t.milliseconds()), t.toString());
        }
        double[] expected = new double[32];
        double[] magnitude = new double[32];
        float[] product = c.toFloatArray();
        for (int i = 0; i < 256; i++) {
            for (int j = 0; j < 32; j++) {
                expected[j] += product[i * 32 + j];
                magnitude[j] += Math.abs(product[i * 32 + j]);
            }
        }
        float[] expectedFloats = new float[32];
        for (int j = 0; j < 32; j++) {
            expectedFloats[j] = (float) expected[j];
        }
        assertClose("column sums of the timed GEMM", expectedFloats, sums.toFloatArray(),
                j -> Tolerances.GPU_SUM_REL * magnitude[j]);
        assertThrows(IllegalStateException.class, gpu::stopTimingOps, "timing has stopped");
        gpu.fill(sums, 1f);
        assertArrayEquals(new float[] {1, 1, 1}, Arrays.copyOf(sums.toFloatArray(), 3), "the backend goes on");
    }

    @Test
    void aStepThatReadsOrAllocatesFailsItsCaptureAndTheBackendGoesOn() {
        Tensor x = own(gpu.allocate(DType.FLOAT32, 4));
        CudaException read = assertThrows(CudaException.class, () -> gpu.capture(() -> {
            gpu.fill(x, 1f);
            x.toFloatArray();
        }));
        assertEquals("toHostFloats", read.op(), read.getMessage());
        assertEquals("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", read.errorName());
        assertTrue(read.getMessage().contains("captured into a CUDA graph"), read.getMessage());
        CudaException allocate = assertThrows(CudaException.class,
                () -> gpu.capture(() -> gpu.allocate(DType.FLOAT32, 3)));
        assertEquals("allocate", allocate.op(), allocate.getMessage());
        gpu.fill(x, 2f);
        assertArrayEquals(new float[] {2, 2, 2, 2}, x.toFloatArray(), "the capture was ended: the stream runs again");
    }

    // ---- a whole model --------------------------------------------------------------------------------

    static Stream<Arguments> models() {
        return Stream.of(
                Arguments.of("relu", Loss.CATEGORICAL_CROSSENTROPY),
                Arguments.of("prelu", Loss.MEAN_SQUARED_ERROR),
                Arguments.of("maxout", Loss.CATEGORICAL_CROSSENTROPY),
                Arguments.of("tanh", Loss.MEAN_SQUARED_ERROR));
    }

    @ParameterizedTest(name = "{0} hidden units, {1}")
    @MethodSource("models")
    void aSmallMlpTrainsAsOnTheCpu(String hidden, Loss loss) {
        Mlp.HiddenUnits units = hidden.equals(Mlp.MAXOUT) ? new Mlp.HiddenUnits(Mlp.MAXOUT, Double.NaN, false, 3)
                : Mlp.HiddenUnits.of(hidden);
        int[] batches = {64, 64, 64, 64, 17};
        float[][] xs = new float[batches.length][];
        float[][] ts = new float[batches.length][];
        for (int s = 0; s < batches.length; s++) {
            xs[s] = new float[batches[s] * 784];
            ts[s] = new float[batches[s] * 10];
            fillBatch(xs[s], ts[s], batches[s]);
        }
        Training onCpu = train(CPU, units, loss, batches, xs, ts);
        Training onGpu = train(gpu, units, loss, batches, xs, ts);
        assertClose(hidden + " " + loss.id() + " losses per step", onCpu.losses, onGpu.losses,
                i -> Tolerances.GPU_MLP_LOSS_REL * Math.abs(onCpu.losses[i]));
        assertClose(hidden + " " + loss.id() + " parameters after " + batches.length + " steps", onCpu.parameters,
                onGpu.parameters, i -> Tolerances.GPU_MLP_PARAMETER_ABS);
    }

    /**
     * Training with the step captured as a CUDA graph (a graph for the full batches and one for the last,
     * smaller batch) gives the parameters, profile and metrics of eager steps, bit for bit: both queue the
     * same kernels with the same arguments. So do graphs of several steps: 3 per graph (graphs of three
     * steps, of the seventh full batch and of the last batch), and 1000 (the seven full batches as one graph).
     * With label smoothing, the batches gather the smoothed targets the same way.
     */
    @ParameterizedTest(name = "{0}, {1} steps per graph, dropout {2}, batch norm {3}, label smoothing {4}")
    @CsvSource({"adam, 1, 0, false, 0", "sgd, 1, 0, false, 0", "rmsprop, 1, 0, false, 0", "adam, 3, 0, false, 0",
        "sgd, 3, 0, false, 0", "rmsprop, 3, 0, false, 0", "adam, 1000, 0, false, 0", "adam, 1, 0.3, false, 0",
        "sgd, 3, 0.3, false, 0", "rmsprop, 1, 0, true, 0", "sgd, 3, 0.3, true, 0", "adam, 3, 0, false, 0.1",
        "nadam, 1, 0, false, 0", "nadam, 3, 0, false, 0", "adamax, 3, 0, false, 0", "adagrad, 1, 0, false, 0",
        "amsgrad, 3, 0, false, 0", "adam-warmup, 2, 0, false, 0", "adam-warmup, 1, 0.3, false, 0",
        "nadam-warmup, 2, 0, false, 0", "adamax-warmup, 2, 0, false, 0", "sgd-warmup, 2, 0, false, 0",
        "sgd-warmup, 1, 0.3, false, 0", "rmsprop-warmup, 2, 0, false, 0", "adagrad-warmup, 2, 0, false, 0"})
    void graphTrainingGivesTheEagerParametersBitForBit(String optimizer, int stepsPerGraph, double dropout,
                                                       boolean batchNorm, double labelSmoothing) {
        Dataset train = MnistSubset.load().train().take(1000); // batches of 128: seven, then one of 104
        History[] histories = new History[2];
        float[][] parameters = new float[2][];
        float[][] movingStatistics = new float[2][];
        List<Object> optimizerCounts = new ArrayList<>();
        for (int mode = 0; mode < 2; mode++) {
            try (Sequential model = Mlp.build(gpu, SEED, 784, new int[] {64, 32}, 10, Mlp.HiddenUnits.of("relu"),
                    Initializer.glorotUniform(), dropout, batchNorm).compile(switch (optimizer) {
                        case "adam" -> new Adam(2e-3);
                        // A per-step schedule: the warmup ends in the first epoch (step 5), the cosine in the
                        // third (step 17), both inside a graph of 2 steps; the rate comes from the device's count.
                        case "adam-warmup" -> withSchedule(new Adam(2e-3, 0.9, 0.999, 1e-7, 0.004),
                                StepSchedule.cosineDecay(1e-4, 5, 12, 0.1));
                        case "nadam-warmup" -> withSchedule(new Nadam(2e-3, 0.9, 0.999, 1e-7, 0.004),
                                StepSchedule.cosineDecay(1e-4, 5, 12, 0.1));
                        case "adamax-warmup" -> withSchedule(new Adamax(2e-3, 0.9, 0.999, 1e-7, 0.004),
                                StepSchedule.cosineDecay(1e-4, 5, 12, 0.1));
                        case "sgd-warmup" -> withSchedule(new Sgd(0.05, 0.9, true, 0.004),
                                StepSchedule.cosineDecay(0.005, 5, 12, 0.1));
                        case "rmsprop-warmup" -> withSchedule(new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0.01),
                                StepSchedule.cosineDecay(1e-4, 5, 12, 0.1));
                        case "adagrad-warmup" -> withSchedule(new Adagrad(1e-2, 0.1, 1e-7, 0.004),
                                StepSchedule.cosineDecay(1e-3, 5, 12, 0.1));
                        case "rmsprop" -> new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0.01); // every buffer, decay
                        case "amsgrad" -> new Adam(2e-3, 0.9, 0.999, 1e-7, 0.004, true);
                        case "nadam" -> new Nadam(2e-3, 0.9, 0.999, 1e-7, 0.004); // u_product on the device
                        case "adamax" -> new Adamax(2e-3, 0.9, 0.999, 1e-7, 0.004);
                        case "adagrad" -> new Adagrad(1e-2, 0.1, 1e-7, 0.004);
                        default -> new Sgd(0.05, 0.9, true);
                    }, Loss.CATEGORICAL_CROSSENTROPY, labelSmoothing, "accuracy")) {
                histories[mode] = model.fit(train, FitOptions.builder().batchSize(128).epochs(3).verbose(0)
                        .graph(mode == 1).stepsPerGraph(stepsPerGraph).build());
                parameters[mode] = model.parameters().toFloatArray();
                movingStatistics[mode] = model.state() == null ? new float[0] : model.state().toFloatArray();
                optimizerCounts.add(List.of(model.optimizer().iterations(), model.optimizer().stateScalars()));
            }
        }
        assertEquals(optimizerCounts.get(0), optimizerCounts.get(1), "the step count and scalar state");
        assertFalse(histories[0].graphs());
        assertTrue(histories[1].graphs(), "CudaBackend captures the step, the profiler being graph-safe");
        assertEquals(Math.min(stepsPerGraph, 7), histories[1].stepsPerGraph(), "at most the 7 full batches");
        assertClose(optimizer + ": parameters, graph against eager", parameters[0], parameters[1],
                i -> Tolerances.GPU_EXACT);
        assertClose(optimizer + ": moving statistics, graph against eager", movingStatistics[0], movingStatistics[1],
                i -> Tolerances.GPU_EXACT);
        assertEquals(histories[0].metrics(), histories[1].metrics());
        List<Profile.StepStatistics> eager = histories[0].profile().steps();
        List<Profile.StepStatistics> graphs = histories[1].profile().steps();
        assertEquals(24, graphs.size());
        for (int i = 0; i < eager.size(); i++) {
            assertArrayEquals(eager.get(i).gradientNorms(), graphs.get(i).gradientNorms(), "gradient norms " + i);
            assertArrayEquals(eager.get(i).weightNorms(), graphs.get(i).weightNorms(), "weight norms " + i);
            assertArrayEquals(eager.get(i).updateNorms(), graphs.get(i).updateNorms(), "update norms " + i);
        }
        // 5 ops per Dense layer, as OpsPerStepTest counts them for the chapter MLP's 5 (its GEMM, dW and dx
        // GEMMs, fused forward and backward, less the first layer's dx, the last layer's activation kernels;
        // plus the loss, the next batch's fetch and the optimizer): 15 for these 3 layers; a dropout after each
        // hidden layer adds its forward and backward kernels, batch normalization 4 (OpsPerStepTest).
        assertEquals(15 + (dropout > 0 ? 2 * 2 : 0) + (batchNorm ? 2 * 4 : 0), histories[0].operationsPerStep(),
                "queued by one eager step");
        assertEquals(histories[0].operationsPerStep(), histories[1].operationsPerStep());
    }

    private static Optimizer withSchedule(Optimizer optimizer, StepSchedule schedule) {
        optimizer.setStepSchedule(schedule);
        return optimizer;
    }

    /**
     * fit with label smoothing on the GPU: the smoothed targets are uploaded once and gathered per batch as one-hot
     * ones are, so the logged loss and val_loss per epoch are the CPU's smoothed ones, and so are the parameters
     * (within the whole-model tolerances); evaluate reports the last val_loss, bit for bit, which is above the
     * smoothed targets' entropy (about 0.5003, the least a smoothed loss can be).
     */
    @Test
    void fitWithLabelSmoothingLogsTheCpusSmoothedLosses() {
        Dataset train = MnistSubset.load().train().take(600);
        Dataset test = MnistSubset.load().test().take(200);
        Backend[] backends = {CPU, gpu};
        History[] histories = new History[2];
        float[][] parameters = new float[2][];
        double[] evaluated = new double[2];
        for (int b = 0; b < 2; b++) {
            try (Sequential model = Mlp.build(backends[b], SEED, 784, new int[] {64, 32}, 10,
                    Mlp.HiddenUnits.of("relu"), Initializer.glorotUniform())
                    .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY, 0.1, "accuracy")) {
                histories[b] = model.fit(train, FitOptions.builder().batchSize(100).epochs(2).validation(test)
                        .verbose(0).build());
                parameters[b] = model.parameters().toFloatArray();
                evaluated[b] = model.evaluate(test, 100).loss();
            }
        }
        for (String metric : List.of("loss", "val_loss")) {
            float[] cpu = toFloats(histories[0].get(metric));
            float[] onGpu = toFloats(histories[1].get(metric));
            assertClose("label smoothing 0.1: " + metric + " per epoch", cpu, onGpu,
                    i -> Tolerances.GPU_MLP_LOSS_REL * Math.abs(cpu[i]));
        }
        assertClose("label smoothing 0.1: parameters after 2 epochs", parameters[0], parameters[1],
                i -> Tolerances.GPU_MLP_PARAMETER_ABS);
        assertEquals(histories[1].last("val_loss"), evaluated[1], "evaluate gives the GPU's last val_loss");
        double entropy = -(0.91 * Math.log(0.91) + 9 * 0.01 * Math.log(0.01));
        assertTrue(evaluated[1] > entropy, "a smoothed loss " + evaluated[1] + " is above the entropy " + entropy);
    }

    private static float[] toFloats(List<Double> values) {
        float[] floats = new float[values.size()];
        for (int i = 0; i < floats.length; i++) {
            floats[i] = values.get(i).floatValue();
        }
        return floats;
    }

    private record Training(float[] losses, float[] parameters) {
    }

    private static Training train(Backend backend, Mlp.HiddenUnits units, Loss loss, int[] batches, float[][] xs,
                                  float[][] ts) {
        float[] losses = new float[batches.length];
        try (Sequential model = chapterLikeModel(backend, units, loss);
             Tensor x = backend.allocate(DType.FLOAT32, 64, 784);
             Tensor t = backend.allocate(DType.FLOAT32, 64, 10);
             Tensor totals = backend.allocate(DType.FLOAT32, 2)) {
            for (int s = 0; s < batches.length; s++) {
                Tensor xb = x.rows(0, batches[s]);
                Tensor tb = t.rows(0, batches[s]);
                backend.copyFromHost(xs[s], xb);
                backend.copyFromHost(ts[s], tb);
                backend.fill(totals, 0f);
                model.computeGradients(xb, tb, totals);
                model.applyGradients();
                losses[s] = totals.toFloatArray()[0] / batches[s];
            }
            return new Training(losses, model.parameters().toFloatArray());
        }
    }

    private static Sequential chapterLikeModel(Backend backend, Mlp.HiddenUnits units, Loss loss) {
        return Mlp.build(backend, SEED, 784, new int[] {64, 32}, 10, units, Initializer.glorotUniform())
                .compile(new Adam(), loss, "accuracy");
    }

    /** Pixel-like inputs in [0, 1] (a quarter of them 0) and one-hot labels. */
    private void fillBatch(float[] x, float[] t, int rows) {
        for (int i = 0; i < x.length; i++) {
            x[i] = rng.nextInt(4) == 0 ? 0f : (float) rng.nextDouble();
        }
        for (int r = 0; r < rows; r++) {
            t[r * 10 + rng.nextInt(10)] = 1f;
        }
    }

    // ---- inputs ---------------------------------------------------------------------------------------

    /** Normal values of standard deviation {@code scale}, with edge values at random places. */
    private float[] inputs(int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rng.nextGaussian() * scale);
        }
        int edges = Math.min(EDGES.length, Math.max(1, n / 2));
        int start = rng.nextInt(EDGES.length);
        for (int e = 0; e < edges && n > 0; e++) {
            x[rng.nextInt(n)] = EDGES[(start + e) % EDGES.length];
        }
        return x;
    }

    /** An activation's parameter: none, the kind's default shared by all, or one per column. */
    private float[] parameters(ActivationKind kind, ParameterMode mode, int cols) {
        return switch (mode) {
            case NONE -> null;
            case SHARED -> new float[] {(float) kind.defaultParameter()};
            case PER_COLUMN -> {
                float[] p = new float[cols];
                for (int j = 0; j < cols; j++) {
                    p[j] = (float) rng.nextDouble(0.05, 2.0); // celu's alpha must not be 0
                }
                yield p;
            }
        };
    }

    /** Rows of one-hot targets, or of random class probabilities. */
    private float[] targets(int rows, int cols, boolean oneHot) {
        float[] t = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            if (oneHot) {
                t[r * cols + (r == 0 ? 0 : rng.nextInt(cols))] = 1f;
            } else {
                double sum = 0;
                for (int c = 0; c < cols; c++) {
                    t[r * cols + c] = (float) rng.nextDouble();
                    sum += t[r * cols + c];
                }
                for (int c = 0; c < cols; c++) {
                    t[r * cols + c] /= (float) sum;
                }
            }
        }
        return t;
    }

    private byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        rng.nextBytes(b);
        return b;
    }

    private static float[] unsigned(byte[] b, float scale) {
        float[] f = new float[b.length];
        for (int i = 0; i < b.length; i++) {
            f[i] = (b[i] & 0xFF) * scale;
        }
        return f;
    }

    private static float[] nans(int n) {
        return filled(n, Float.NaN);
    }

    private static float[] filled(int n, float value) {
        float[] x = new float[n];
        Arrays.fill(x, value);
        return x;
    }

    private static float[] concat(float[]... parts) {
        int length = Arrays.stream(parts).mapToInt(a -> a.length).sum();
        float[] out = new float[length];
        int at = 0;
        for (float[] part : parts) {
            System.arraycopy(part, 0, out, at, part.length);
            at += part.length;
        }
        return out;
    }

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    private static float[] abs(float[] x) {
        float[] a = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            a[i] = Math.abs(x[i]);
        }
        return a;
    }

    private static double sq(double x) {
        return x * x;
    }

    // ---- tensors --------------------------------------------------------------------------------------

    private Tensor own(Tensor t) {
        owned.add(t);
        return t;
    }

    private Tensor cpu(float[] data, int... shape) {
        return own(CPU.fromHost(data, shape));
    }

    /** A GPU input holding {@code data}, at the layout's offset inside a larger block. */
    private Tensor input(float[] data, Layout layout, int... shape) {
        Tensor backing = own(gpu.fromHost(nans(data.length + layout.offset), data.length + layout.offset));
        Tensor t = backing.view(layout.offset, shape);
        gpu.copyFromHost(data, t);
        return t;
    }

    private Tensor gpuInts(int[] data, Layout layout) {
        Tensor backing = own(gpu.fromHost(new int[data.length + layout.offset], data.length + layout.offset));
        Tensor t = backing.view(layout.offset, data.length);
        gpu.copyFromHost(data, t);
        return t;
    }

    /**
     * A GPU output poisoned with NaN (INT32: with Integer.MIN_VALUE), inside a block whose other elements
     * are guards; {@link #read} fails if a guard was overwritten.
     */
    private Tensor output(Layout layout, DType dtype, int... shape) {
        int n = Math.toIntExact(dev.gradscope.tensor.Shapes.size(shape));
        int total = n + layout.offset + GUARD;
        Tensor backing;
        if (dtype == DType.INT32) {
            int[] poison = new int[total];
            Arrays.fill(poison, Integer.MIN_VALUE);
            backing = own(gpu.fromHost(poison, total));
        } else {
            backing = own(gpu.fromHost(nans(total), total));
        }
        Tensor view = backing.view(layout.offset, shape);
        guardChecks.put(view, () -> {
            if (dtype == DType.INT32) {
                int[] all = backing.toIntArray();
                for (int i = 0; i < total; i++) {
                    if ((i < layout.offset || i >= layout.offset + n) && all[i] != Integer.MIN_VALUE) {
                        fail("an op wrote guard element " + i + " outside its output " + Arrays.toString(shape));
                    }
                }
            } else {
                float[] all = backing.toFloatArray();
                for (int i = 0; i < total; i++) {
                    if ((i < layout.offset || i >= layout.offset + n) && !Float.isNaN(all[i])) {
                        fail("an op wrote guard element " + i + " (" + all[i] + ") outside its output "
                                + Arrays.toString(shape));
                    }
                }
            }
        });
        return view;
    }

    /** Earlier batches' unit statistics [4, cols], which the ops add to: counts, then sums of y and y^2. */
    private float[] priorStatistics(int cols) {
        float[] before = new float[4 * cols];
        for (int j = 0; j < cols; j++) {
            before[j] = rng.nextInt(100);
            before[cols + j] = rng.nextInt(100);
            before[2 * cols + j] = (float) (rng.nextGaussian() * 10);
            before[3 * cols + j] = (float) rng.nextDouble(100);
        }
        return before;
    }

    /** A GPU output's elements, after checking that no op wrote the guard elements around it. */
    private float[] read(Tensor t) {
        guardChecks.getOrDefault(t, () -> { }).run();
        return t.toFloatArray();
    }

    /** {@link #read} for an INT32 output. */
    private int[] readInts(Tensor t) {
        guardChecks.getOrDefault(t, () -> { }).run();
        return t.toIntArray();
    }

    /** Reads a UINT8 GPU tensor through gatherRows (there is no byte read-back op). */
    private float[] gatherAll(Tensor bytes, int rows, int cols, float scale) {
        int[] identity = new int[rows];
        Arrays.setAll(identity, i -> i);
        Tensor out = own(gpu.allocate(DType.FLOAT32, rows, cols));
        gpu.gatherRows(bytes, own(gpu.fromHost(identity, rows)), 0, scale, out);
        return out.toFloatArray();
    }

    /** The same failing call on the CPU and on the GPU. */
    private static Executable[] pair(java.util.function.Consumer<Backend> call) {
        return new Executable[] {() -> call.accept(CPU), () -> call.accept(gpu)};
    }

    // ---- comparison -----------------------------------------------------------------------------------

    /**
     * Fails unless {@code |actual[i] - expected[i]| <= allowed(i)} for every i (NaN only where the
     * reference has NaN), printing how many differ, the first few pairs and the worst one.
     */
    static void assertClose(String what, float[] expected, float[] actual, IntToDoubleFunction allowed) {
        assertEquals(expected.length, actual.length, what + ": lengths");
        int bad = 0;
        StringBuilder first = new StringBuilder();
        int worst = -1;
        double worstExcess = -1;
        for (int i = 0; i < expected.length; i++) {
            float e = expected[i];
            float a = actual[i];
            double limit = allowed.applyAsDouble(i);
            double excess;
            if (Float.isNaN(e) || Float.isNaN(a)) {
                excess = Float.isNaN(e) && Float.isNaN(a) ? -1 : Double.POSITIVE_INFINITY;
            } else if (e == a) {
                excess = -1; // also equal infinities
            } else {
                excess = Math.abs((double) a - e) - limit;
            }
            if (excess > 0) {
                if (bad < 5) {
                    first.append(String.format(Locale.ROOT, "%n  [%d] cpu=%s gpu=%s |diff|=%.3g allowed=%.3g", i,
                            e, a, Math.abs((double) a - e), limit));
                }
                bad++;
                if (excess > worstExcess) {
                    worstExcess = excess;
                    worst = i;
                }
            }
        }
        if (bad > 0) {
            fail(String.format(Locale.ROOT, "%s: %d of %d elements differ; first:%s%n  worst: [%d] cpu=%s gpu=%s "
                    + "|diff|=%.3g allowed=%.3g", what, bad, expected.length, first, worst, expected[worst],
                    actual[worst], Math.abs((double) actual[worst] - expected[worst]), allowed.applyAsDouble(worst)));
        }
    }
}
