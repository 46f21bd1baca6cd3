package dev.gradscope.backend.cpu;

import dev.gradscope.Tolerances;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * {@link CpuGemm} against a naive triple loop in double, for every transpose combination, at shapes
 * that are not multiples of the kernel's tiles and that cross its block and thread boundaries.
 */
class CpuGemmTest {


    /** Offsets of the three operands in their arrays, all different and nonzero. */
    private static final int A_OFFSET = 3;
    private static final int B_OFFSET = 5;
    private static final int C_OFFSET = 7;

    /** Elements after each operand's window; they must never be read (a, b) or written (c). */
    private static final int GUARD = 11;

    /** Value outside c's window; any change to it is a write out of bounds. */
    private static final float C_SENTINEL = -777.25f;

    private static final float ALPHA = 0.75f;
    private static final float BETA = -1.5f;

    private static final boolean[] BOOLEANS = {false, true};

    @Test
    void everyShapeUpToFour() {
        for (boolean transposeA : BOOLEANS) {
            for (boolean transposeB : BOOLEANS) {
                for (int m = 1; m <= 4; m++) {
                    for (int n = 1; n <= 4; n++) {
                        for (int k = 1; k <= 4; k++) {
                            check(new Case(transposeA, transposeB, m, n, k, ALPHA, BETA, 1));
                            check(new Case(transposeA, transposeB, m, n, k, ALPHA, 0f, 1));
                        }
                    }
                }
            }
        }
    }

    @Test
    void awkwardShapes() {
        int[][] shapes = {{3, 5, 7}, {17, 33, 65}, {1, 300, 9}, {300, 1, 9}, {2, 17, 1}, {31, 47, 1000}, {5, 1000, 3}};
        for (int[] shape : shapes) {
            checkAllTransposes(shape[0], shape[1], shape[2], ALPHA, BETA, 1);
        }
    }

    /** Column and depth counts of several cache blocks with ragged last blocks; rows not a multiple of 3. */
    @Test
    void shapesCrossingBlockBoundaries() {
        checkAllTransposes(100, 1100, 700, ALPHA, BETA, 1);
        checkAllTransposes(64, 530, 1201, -2f, 0.5f, 1);
    }

    /** The training shapes of the 784-512-...-10 MLP, plus one more in each dimension. */
    @Test
    void mlpShapesOnTheDefaultThreadCount() {
        check(new Case(false, false, 256, 512, 784, 1f, 0f, 0));
        check(new Case(true, false, 784, 512, 256, 1f, 1f, 0));
        check(new Case(false, true, 256, 784, 512, 1f, 0f, 0));
        checkAllTransposes(257, 513, 785, ALPHA, BETA, 0);
    }

    /** Forced part counts, independent of this machine's cores: row splits and column splits. */
    @Test
    void splitIntoParts() {
        for (int parts : new int[] {2, 3, 5}) {
            checkAllTransposes(301, 60, 80, ALPHA, BETA, parts);
            checkAllTransposes(50, 700, 40, ALPHA, 0f, parts);
            checkAllTransposes(4, 3000, 20, ALPHA, BETA, parts);
            checkAllTransposes(2, 5, 3, ALPHA, BETA, parts);
        }
    }

    @Test
    void betaZeroIgnoresNaNInC() {
        // check() fills c's window with NaN whenever beta == 0.
        for (boolean transposeA : BOOLEANS) {
            for (boolean transposeB : BOOLEANS) {
                check(new Case(transposeA, transposeB, 37, 70, 19, -1f, 0f, 1));
                check(new Case(transposeA, transposeB, 37, 70, 19, -1f, 0f, 2));
            }
        }
    }

    @Test
    void zeroDepthOrZeroAlphaOnlyScalesC() {
        for (boolean transposeA : BOOLEANS) {
            for (boolean transposeB : BOOLEANS) {
                check(new Case(transposeA, transposeB, 5, 6, 0, ALPHA, BETA, 1));
                check(new Case(transposeA, transposeB, 5, 6, 0, ALPHA, 0f, 1));
                check(new Case(transposeA, transposeB, 5, 6, 4, 0f, BETA, 1));
            }
        }
    }

    @Test
    void zeroDepthOrZeroAlphaDoesNotReadAOrB() {
        float[] a = {Float.NaN, Float.NaN, Float.NaN, Float.NaN};
        float[] b = {Float.NaN, Float.NaN, Float.NaN, Float.NaN};
        float[] c = {1f, 2f, 3f, 4f};
        CpuGemm.gemm(false, false, 2, 2, 2, 0f, a, 0, b, 0, 2f, c, 0);
        assertEquals(List.of(2f, 4f, 6f, 8f), List.of(c[0], c[1], c[2], c[3]));
        CpuGemm.gemm(true, true, 2, 2, 0, 1f, a, 0, b, 0, 0f, c, 0);
        assertEquals(List.of(0f, 0f, 0f, 0f), List.of(c[0], c[1], c[2], c[3]));
    }

    @Test
    void emptyResultWritesNothing() {
        float[] c = {C_SENTINEL, C_SENTINEL};
        CpuGemm.gemm(false, false, 0, 5, 3, 1f, new float[0], 0, new float[15], 0, 0f, c, 1);
        CpuGemm.gemm(false, false, 5, 0, 3, 1f, new float[15], 0, new float[0], 0, 0f, c, 1);
        assertEquals(List.of(C_SENTINEL, C_SENTINEL), List.of(c[0], c[1]));
    }

    @Test
    void rejectsBadShapesAndShortArrays() {
        IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                () -> CpuGemm.gemm(false, false, -1, 2, 2, 1f, new float[4], 0, new float[4], 0, 0f, new float[4], 0));
        assertTrue(negative.getMessage().contains("m=-1"), negative.getMessage());
        IllegalArgumentException shortB = assertThrows(IllegalArgumentException.class,
                () -> CpuGemm.gemm(false, true, 2, 3, 4, 1f, new float[8], 0, new float[12], 1, 0f, new float[6], 0));
        assertTrue(shortB.getMessage().contains("b as stored is [3,4] from offset 1"), shortB.getMessage());
        IllegalArgumentException negativeOffset = assertThrows(IllegalArgumentException.class,
                () -> CpuGemm.gemm(false, false, 2, 2, 2, 1f, new float[4], 0, new float[4], 0, 0f, new float[4], -1));
        assertTrue(negativeOffset.getMessage().contains("c as stored is [2,2]"), negativeOffset.getMessage());
    }

    /** Several threads calling at once share the helper pool and per-thread scratch safely. */
    @Test
    void concurrentCallersGetTheirOwnResults() throws Exception {
        ExecutorService callers = Executors.newFixedThreadPool(4);
        try {
            List<Future<Void>> results = new ArrayList<>();
            for (int caller = 0; caller < 8; caller++) {
                Case shape = new Case(caller % 2 == 1, caller % 3 == 1, 200 + caller, 300, 150, ALPHA, BETA, 0);
                Callable<Void> call = () -> {
                    check(shape);
                    return null;
                };
                results.add(callers.submit(call));
            }
            for (Future<Void> result : results) {
                result.get();
            }
        } finally {
            callers.shutdownNow();
        }
    }

    /** One call: {@code parts == 0} uses the public entry point, otherwise that many forced parts. */
    private record Case(boolean transposeA, boolean transposeB, int m, int n, int k, float alpha, float beta,
                        int parts) {
        @Override
        public String toString() {
            return (transposeA ? "T" : "N") + (transposeB ? "T" : "N") + " m=" + m + " n=" + n + " k=" + k
                    + " alpha=" + alpha + " beta=" + beta + (parts == 0 ? " (default threads)" : " parts=" + parts);
        }
    }

    private static void checkAllTransposes(int m, int n, int k, float alpha, float beta, int parts) {
        for (boolean transposeA : BOOLEANS) {
            for (boolean transposeB : BOOLEANS) {
                check(new Case(transposeA, transposeB, m, n, k, alpha, beta, parts));
            }
        }
    }

    private static void check(Case t) {
        Random random = new Random(31L * t.m() + 17L * t.n() + t.k());
        // NaN around a and b: reading outside an operand's window poisons the result.
        float[] a = operand(random, A_OFFSET, t.m() * t.k());
        float[] b = operand(random, B_OFFSET, t.k() * t.n());
        float[] c = new float[C_OFFSET + t.m() * t.n() + GUARD];
        for (int i = 0; i < c.length; i++) {
            boolean inside = i >= C_OFFSET && i < C_OFFSET + t.m() * t.n();
            c[i] = !inside ? C_SENTINEL : t.beta() == 0f ? Float.NaN : random.nextFloat() * 2 - 1;
        }
        float[] cBefore = c.clone();

        if (t.parts() == 0) {
            CpuGemm.gemm(t.transposeA(), t.transposeB(), t.m(), t.n(), t.k(), t.alpha(),
                    a, A_OFFSET, b, B_OFFSET, t.beta(), c, C_OFFSET);
        } else {
            CpuGemm.gemmInParts(t.parts(), t.transposeA(), t.transposeB(), t.m(), t.n(), t.k(), t.alpha(),
                    a, A_OFFSET, b, B_OFFSET, t.beta(), c, C_OFFSET);
        }

        for (int i = 0; i < c.length; i++) {
            if ((i < C_OFFSET || i >= C_OFFSET + t.m() * t.n()) && c[i] != C_SENTINEL) {
                fail(t + ": c[" + i + "] outside the window [" + C_OFFSET + ", " + (C_OFFSET + t.m() * t.n())
                        + ") changed to " + c[i]);
            }
        }
        compareWithReference(t, a, b, cBefore, c);
    }

    private static float[] operand(Random random, int offset, int size) {
        float[] values = new float[offset + size + GUARD];
        for (int i = 0; i < values.length; i++) {
            values[i] = i >= offset && i < offset + size ? random.nextFloat() * 2 - 1 : Float.NaN;
        }
        return values;
    }

    /** Reports the number of mismatches, the first one and the worst one (relative to its bound). */
    private static void compareWithReference(Case t, float[] a, float[] b, float[] cBefore, float[] c) {
        int mismatches = 0;
        String first = null;
        String worst = null;
        double worstRatio = 1;
        for (int i = 0; i < t.m(); i++) {
            for (int j = 0; j < t.n(); j++) {
                double sum = 0;
                double magnitude = 0;
                for (int p = 0; p < t.k(); p++) {
                    double aValue = a[A_OFFSET + (t.transposeA() ? p * t.m() + i : i * t.k() + p)];
                    double bValue = b[B_OFFSET + (t.transposeB() ? j * t.k() + p : p * t.n() + j)];
                    sum += aValue * bValue;
                    magnitude += Math.abs(aValue * bValue);
                }
                double expected = t.alpha() * sum;
                magnitude *= Math.abs(t.alpha());
                if (t.beta() != 0f) {
                    double old = t.beta() * (double) cBefore[C_OFFSET + i * t.n() + j];
                    expected += old;
                    magnitude += Math.abs(old);
                }
                double bound = Tolerances.GEMM_F32_RELATIVE * (Math.sqrt(t.k()) + 1) * magnitude;
                float actual = c[C_OFFSET + i * t.n() + j];
                double error = Math.abs(actual - expected);
                if (!(error <= bound)) {
                    mismatches++;
                    String description = "c[" + i + "][" + j + "] = " + actual + ", expected " + expected
                            + " (|error| " + error + " > bound " + bound + ")";
                    if (first == null) {
                        first = description;
                    }
                    double ratio = Double.isNaN(error) ? Double.POSITIVE_INFINITY : error / bound;
                    if (worst == null || ratio > worstRatio) {
                        worst = description;
                        worstRatio = ratio;
                    }
                }
            }
        }
        if (mismatches > 0) {
            fail(t + ": " + mismatches + " of " + t.m() * t.n() + " elements wrong; first " + first
                    + "; worst " + worst);
        }
    }
}
