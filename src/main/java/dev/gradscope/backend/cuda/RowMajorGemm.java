package dev.gradscope.backend.cuda;

import jcuda.jcublas.cublasOperation;

/**
 * How a row-major product becomes one column-major {@code cublasSgemm} call, with no transpose or copy
 * kernel.
 *
 * <p>The one fact used: a row-major matrix {@code X} of {@code r} rows and {@code c} columns, stored
 * with row width {@code c}, is, read column-major with leading dimension {@code c}, the matrix
 * {@code Xᵀ} ({@code c x r}). So nothing needs to move; only the roles change.
 *
 * <p>We want, row-major, {@code C[m,n] = alpha op(A)[m,k] · op(B)[k,n] + beta C}. cuBLAS sees
 * {@code C}'s buffer as {@code Cᵀ} ({@code n x m}, leading dimension {@code n}), and
 * {@code Cᵀ = op(B)ᵀ · op(A)ᵀ}. So we call
 * {@code cublasSgemm(opB, opA, n, m, k, alpha, B, ldb, A, lda, beta, C, n)}: B's buffer goes first,
 * cuBLAS's "m" is our {@code n} and its "n" is our {@code m}. What cuBLAS must do to each buffer, case
 * by case (cuBLAS applies {@code op} to the matrix it reads column-major, i.e. to {@code Bᵀ} or
 * {@code Aᵀ}; {@code lda}, {@code ldb} are always the row widths of A and B as stored, because a
 * column-major leading dimension is the distance between columns, which is a stored row):
 *
 * <pre>
 *  case                  stored          cuBLAS reads   needs          op     ld
 *  B, not transposed     B  [k, n]       Bᵀ (n x k)     op(B)ᵀ = Bᵀ    N      n  = B.dim(1)
 *  B, transposed         B  [n, k]       Bᵀ (k x n)     op(B)ᵀ = B     T      k  = B.dim(1)
 *  A, not transposed     A  [m, k]       Aᵀ (k x m)     op(A)ᵀ = Aᵀ    N      k  = A.dim(1)
 *  A, transposed         A  [k, m]       Aᵀ (m x k)     op(A)ᵀ = A     T      m  = A.dim(1)
 * </pre>
 *
 * The four combinations of {@code transposeA} and {@code transposeB} are these two independent
 * choices. cuBLAS's own requirements hold: for the first operand with op N it needs
 * {@code ld >= n} (its rows), with op T {@code ld >= k}; for the second, op N {@code ld >= k}, op T
 * {@code ld >= m}; the table's leading dimensions meet them exactly. A leading dimension may never be 0
 * for cuBLAS, even when a dimension is empty, hence the {@code max(1, ...)}.
 *
 * <p>The same mapping serves the dense layers: {@code Y[B,out] = X[B,in] · W[in,out]} is
 * {@code sgemm(N, N, out, B, in, 1, W, out, X, in, 0, Y, out)}, W first, no transposes (design.md,
 * GPU execution model, point 5).
 *
 * @param transFirst  cuBLAS op of the first operand (B's buffer)
 * @param transSecond cuBLAS op of the second operand (A's buffer)
 * @param m           cuBLAS's m: our n (columns of C)
 * @param n           cuBLAS's n: our m (rows of C)
 * @param k           the shared dimension
 * @param ldFirst     leading dimension of B's buffer: B's row width
 * @param ldSecond    leading dimension of A's buffer: A's row width
 * @param ldc         leading dimension of C's buffer: C's row width, our n
 */
record RowMajorGemm(int transFirst, int transSecond, int m, int n, int k, int ldFirst, int ldSecond, int ldc) {

    /**
     * The call for {@code C[m,n] = op(A) · op(B)} with {@code A} stored row-major with {@code aColumns}
     * columns and {@code B} with {@code bColumns}.
     */
    static RowMajorGemm plan(boolean transposeA, boolean transposeB, int m, int n, int k, int aColumns,
                             int bColumns) {
        return new RowMajorGemm(
                transposeB ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N,
                transposeA ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N,
                n, m, k, Math.max(1, bColumns), Math.max(1, aColumns), Math.max(1, n));
    }
}
