package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.Tensor;
import java.util.SplittableRandom;
import jcuda.jcublas.cublasOperation;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The mapping of a row-major GEMM onto one column-major cublasSgemm call, checked without a GPU: a
 * plain-Java column-major SGEMM with cuBLAS's exact argument semantics (and its argument checks) runs
 * the planned call on the row-major buffers, and must give CpuBackend's product. So a wrong operand
 * order, transpose or leading dimension fails here, on every machine, before any GPU sees it.
 */
class RowMajorGemmTest {

    /**
     * cublasSgemm's definition, column-major, in double: C = alpha op(A) op(B) + beta C with op(A) m x k,
     * op(B) k x n, element (r, c) of a column-major X at x[r + c ld]. Rejects what cuBLAS rejects
     * (CUBLAS_STATUS_INVALID_VALUE): a leading dimension smaller than the stored matrix's row count.
     */
    static void columnMajorSgemm(int transa, int transb, int m, int n, int k, float alpha, float[] a, int lda,
                                 float[] b, int ldb, float beta, float[] c, int ldc) {
        boolean ta = transa == cublasOperation.CUBLAS_OP_T;
        boolean tb = transb == cublasOperation.CUBLAS_OP_T;
        assertTrue(lda >= Math.max(1, ta ? k : m), "lda " + lda + " too small");
        assertTrue(ldb >= Math.max(1, tb ? n : k), "ldb " + ldb + " too small");
        assertTrue(ldc >= Math.max(1, m), "ldc " + ldc + " too small");
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) {
                    double av = ta ? a[p + i * lda] : a[i + p * lda];
                    double bv = tb ? b[j + p * ldb] : b[p + j * ldb];
                    sum += av * bv;
                }
                double old = beta == 0 ? 0 : beta * (double) c[i + j * ldc];
                c[i + j * ldc] = (float) (alpha * sum + old);
            }
        }
    }

    @ParameterizedTest(name = "transposeA={0} transposeB={1} m={2} n={3} k={4}")
    @CsvSource({
        "false, false, 1, 1, 1", "false, true, 1, 1, 1", "true, false, 1, 1, 1", "true, true, 1, 1, 1",
        "false, false, 3, 5, 7", "false, true, 3, 5, 7", "true, false, 3, 5, 7", "true, true, 3, 5, 7",
        "false, false, 17, 1, 33", "false, true, 1, 17, 33", "true, false, 33, 2, 1", "true, true, 2, 33, 1",
        "false, false, 64, 10, 784", "true, false, 784, 10, 64", "false, true, 64, 784, 10",
        "true, true, 10, 64, 784",
    })
    void thePlannedCallComputesTheRowMajorProduct(boolean transposeA, boolean transposeB, int m, int n, int k) {
        SplittableRandom rng = new SplittableRandom(31L * m + 17L * n + k);
        int aRows = transposeA ? k : m;
        int aCols = transposeA ? m : k;
        int bRows = transposeB ? n : k;
        int bCols = transposeB ? k : n;
        float[] a = random(rng, aRows * aCols);
        float[] b = random(rng, bRows * bCols);
        float[] c0 = random(rng, m * n);
        float alpha = 0.75f;
        float beta = -0.5f;

        float[] expected;
        try (CpuBackend cpu = new CpuBackend(); Tensor ta = cpu.fromHost(a, aRows, aCols);
             Tensor tb = cpu.fromHost(b, bRows, bCols); Tensor tc = cpu.fromHost(c0, m, n)) {
            cpu.gemm(transposeA, transposeB, alpha, ta, tb, beta, tc);
            expected = tc.toFloatArray();
        }

        RowMajorGemm call = RowMajorGemm.plan(transposeA, transposeB, m, n, k, aCols, bCols);
        assertEquals(n, call.m());
        assertEquals(m, call.n());
        assertEquals(k, call.k());
        float[] c = c0.clone();
        // The first operand is B's buffer, the second A's, exactly as Cublas.gemm passes them.
        columnMajorSgemm(call.transFirst(), call.transSecond(), call.m(), call.n(), call.k(), alpha, b,
                call.ldFirst(), a, call.ldSecond(), beta, c, call.ldc());
        for (int i = 0; i < c.length; i++) {
            // Float sums (CPU) against double sums rounded once: a few ulps of the k-term dot product.
            double scale = 1e-6 * Math.sqrt(k) * (k + Math.abs(c0[i]));
            assertEquals(expected[i], c[i], scale, "element " + i);
        }
    }

    @ParameterizedTest(name = "transposeA={0} transposeB={1}")
    @CsvSource({"false, false", "false, true", "true, false", "true, true"})
    void leadingDimensionsStayValidWhenADimensionIsEmpty(boolean transposeA, boolean transposeB) {
        RowMajorGemm call = RowMajorGemm.plan(transposeA, transposeB, 3, 4, 0, transposeA ? 3 : 0,
                transposeB ? 0 : 4);
        assertTrue(call.ldFirst() >= 1 && call.ldSecond() >= 1 && call.ldc() >= 1, call.toString());
    }

    private static float[] random(SplittableRandom rng, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rng.nextDouble() * 2 - 1);
        }
        return x;
    }
}
