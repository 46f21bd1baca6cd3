package dev.gradscope.nn;

import java.util.random.RandomGenerator;

/**
 * The draw of {@link Initializer.Kind#ORTHOGONAL}, Keras's {@code Orthogonal}: a normal matrix {@code A} of shape
 * {@code (max, min)} of the kernel's {@code (rows, cols)}, its thin QR decomposition {@code A = QR} by Householder
 * reflections in double, each column of {@code Q} times the sign of its {@code R} diagonal entry, and {@code Q}
 * (tall) or {@code Qᵀ} (wide) times the gain.
 *
 * <p>The sign step makes the result independent of the sign convention of the QR algorithm (it is the QR with
 * {@code R}'s diagonal positive, which is unique), and so uniform (Haar) over the matrices with orthonormal
 * columns (Mezzadri, 2007, "How to generate random matrices from the classical compact groups"). Keras's result
 * from the same normal matrix is therefore this one, up to rounding.
 */
final class Orthogonal {

    private Orthogonal() {
    }

    /**
     * Writes {@code gain} times a random {@code rows x cols} matrix with orthonormal columns (rows >= cols) or rows
     * (rows < cols) into {@code out[offset..]}, row-major, drawing {@code rows * cols} normal values from
     * {@code rng}.
     */
    static void fill(float[] out, int offset, int rows, int cols, double gain, RandomGenerator rng) {
        int m = Math.max(rows, cols);
        int n = Math.min(rows, cols);
        // Columns of A, each contiguous, so that every reflection is a dot product and an axpy over one array.
        // Drawn in the row-major order of A, as Keras draws its (max, min) matrix.
        double[][] columns = new double[n][m];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                columns[j][i] = rng.nextGaussian();
            }
        }
        double[][] q = orthonormalColumns(columns, m, n);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                // Tall: W = Q (m = rows); wide: W = Qᵀ (m = cols), so W[i][j] = Q[j][i].
                double value = rows >= cols ? q[j][i] : q[i][j];
                out[offset + i * cols + j] = (float) (gain * value);
            }
        }
    }

    /**
     * The {@code Q} of the thin QR decomposition of the {@code m x n} matrix ({@code m >= n}) whose columns are
     * given, with each column's sign chosen so that {@code R}'s diagonal is positive; returned as its {@code n}
     * columns. Overwrites {@code a}.
     */
    static double[][] orthonormalColumns(double[][] a, int m, int n) {
        double[][] reflectors = new double[n][];
        double[] diagonal = new double[n];
        for (int k = 0; k < n; k++) {
            double[] x = a[k];
            double norm = 0;
            for (int i = k; i < m; i++) {
                norm += x[i] * x[i];
            }
            norm = Math.sqrt(norm);
            // H = I - 2 v vᵀ maps x[k..] to alpha e1; alpha takes the sign opposite to x[k] so that v = x - alpha e1
            // does not cancel.
            double alpha = x[k] > 0 ? -norm : norm;
            diagonal[k] = alpha;
            if (norm == 0) {
                continue; // a zero column (probability 0): no reflection, R's entry 0
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
        // Q = H0 H1 ... H(n-1) times the first n columns of the identity, the reflections applied last to first.
        // Column j < k is still e_j when H(k) comes: the reflections before it, H(k') with k' > k, read and write
        // rows >= k' > j only, where it is 0. H(k) reads rows >= k, zeros too, so its dot product is +0 and it would
        // leave the column bit for bit as it is: only columns j >= k are reflected. That saves a third of forming Q,
        // a fifth of the whole for a square kernel, and changes no bit.
        double[][] q = new double[n][m];
        for (int j = 0; j < n; j++) {
            q[j][j] = 1;
        }
        for (int k = n - 1; k >= 0; k--) {
            if (reflectors[k] != null) {
                for (int j = k; j < n; j++) {
                    reflect(reflectors[k], k, m, q[j]);
                }
            }
        }
        // R's diagonal made positive: column j of Q times sign(R[j][j]). Keras's sign(0) would zero a column; a
        // zero diagonal entry (probability 0) keeps its column here, so Q stays orthonormal.
        for (int j = 0; j < n; j++) {
            if (diagonal[j] < 0) {
                for (int i = 0; i < m; i++) {
                    q[j][i] = -q[j][i];
                }
            }
        }
        return q;
    }

    /** {@code y[k..m) -= 2 v (v · y)}: the reflection {@code I - 2 v vᵀ} of a unit vector v that is 0 before k. */
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
}
