package dev.gradscope.backend.cpu;

import java.util.Arrays;

/**
 * Single-precision matrix multiply for the CPU backend, in plain Java:
 * {@code c = alpha * op(a) · op(b) + beta * c}, all row-major.
 *
 * <p>Why it looks like this. HotSpot's C2 compiler (JDK 17) turns a loop over {@code j} into
 * AVX-512 code only when it can prove that no store in the loop overlaps a later load. It proves
 * that for {@code y[j]} against {@code x[j + 1]}, whether or not {@code x} and {@code y} are the same
 * array, but not for {@code c[rowStart + j]} against {@code b[otherStart + j]}: different
 * loop-invariant offsets stop vectorisation. It also skips loops whose body is too large to unroll
 * under its default limits. So the micro-kernel keeps three rows of C in three scratch arrays,
 * reads B from a packed panel whose rows are separate arrays, and updates each C row from three B
 * rows at once: {@code c0[j] = fma(a02, b2[j], fma(a01, b1[j], fma(a00, b0[j], c0[j])))}, and the
 * same for {@code c1} and {@code c2}. Measured on one Zen 4 core with default JVM flags: 3 rows x 3
 * depth steps ~53 GFLOP/s, 4x2 ~47, 3x2 ~44; 4x3, 4x4, 5x2, 6x2 and 8x1 were not vectorised and ran
 * at ~12. Elements of A are only read as broadcast scalars outside the vector loop, so A is never
 * packed, whether transposed or not.
 *
 * <p>Blocking. C is computed one column block (at most {@value #PANEL_COLUMNS} wide) and one depth
 * block (at most {@value #PANEL_DEPTH} deep) at a time: the packed B panel, at most 480 KiB, stays in
 * one core's 1 MiB L2 cache while every group of three rows streams through it, and the three C
 * rows being updated (6 KiB) stay in L1. Packing copies B rows ({@code System.arraycopy}) or
 * transposes B columns into panel rows, so all four transpose cases run the same kernel.
 *
 * <p>Threads. A product of at least {@value #PARALLEL_MIN_FLOP} FLOP is cut into one part per core,
 * by rows: every part then keeps full-width vector loops, which mattered more than the cost of each
 * part packing the whole of B (on two cores, rows beat columns by up to 1.4x on the MLP shapes).
 * Products with too few rows are cut by columns instead. The parts run on the calling thread and the
 * CPU backend's helpers ({@link CpuWorkers}: daemon threads that stay awake between the ops of a
 * step). Smaller products stay on the calling thread, because handing work to another thread costs
 * microseconds even then.
 */
public final class CpuGemm {

    /** Rows of C that the micro-kernel updates together. */
    private static final int KERNEL_ROWS = 3;

    /** Steps along k that the micro-kernel folds into each pass over a C row. */
    private static final int KERNEL_DEPTH = 3;

    /** Floats in one 512-bit vector; column block and part boundaries are multiples of it. */
    private static final int VECTOR_FLOATS = 16;

    /**
     * Widest column block. Every pass of the vector loop also runs up to a few dozen scalar
     * iterations (C2's alignment pre-loop and remainder post-loop), so wider is faster: on the
     * MLP shapes 512 columns ran at ~53 GFLOP/s per core, 256 at ~45 and 128 at ~38.
     */
    private static final int PANEL_COLUMNS = 512;

    /** Deepest depth block, a multiple of {@link #KERNEL_DEPTH}: a 480 KiB panel that stays in L2. */
    private static final int PANEL_DEPTH = 240;

    /**
     * Below this many floating-point operations (2mnk) the product runs on the calling thread. On
     * two cores, two parts were slower than one at 2.1 MFLOP (70 vs 63 microseconds) and faster from
     * about 4 MFLOP on.
     */
    private static final int PARALLEL_MIN_FLOP = 4_000_000;

    /** Rows each part needs for a row split; fewer, and the duplicated packing of B dominates. */
    private static final int MIN_PART_ROWS = 48;

    /** Columns each part needs for a column split, the fallback for products with few rows. */
    private static final int MIN_PART_COLUMNS = 64;

    private static final int CORES = CpuWorkers.threads();

    /** Packed panel and C row scratch, one per thread, reused across calls. */
    private static final ThreadLocal<Workspace> WORKSPACE = ThreadLocal.withInitial(Workspace::new);

    private CpuGemm() {
    }

    /**
     * {@code c = alpha * op(a) · op(b) + beta * c} for row-major dense matrices, where op(a) is
     * [m,k] ({@code a} holds [m,k], or [k,m] when {@code transposeA}) and op(b) is [k,n] ({@code b}
     * holds [k,n], or [n,k] when {@code transposeB}). Writes exactly {@code c[cOffset, cOffset+m*n)}.
     * With {@code beta == 0} the old contents of c are not read (NaN there does not propagate); with
     * {@code alpha == 0} or {@code k == 0} a and b are not read. Sums are accumulated in float.
     *
     * @throws IllegalArgumentException if a dimension is negative or an array is too short for its
     *     offset and shape
     */
    public static void gemm(boolean transposeA, boolean transposeB, int m, int n, int k, float alpha,
                            float[] a, int aOffset, float[] b, int bOffset, float beta, float[] c, int cOffset) {
        long flop = 2L * m * n * k;
        int parts = flop < PARALLEL_MIN_FLOP ? 1 : CORES;
        gemmInParts(parts, transposeA, transposeB, m, n, k, alpha, a, aOffset, b, bOffset, beta, c, cOffset);
    }

    /**
     * {@link #gemm} cut into {@code parts} (at least 1) independent parts of C, fewer when C is too
     * small, regardless of its FLOP count; for benchmarks and tests that need a fixed thread count.
     */
    static void gemmInParts(int parts, boolean transposeA, boolean transposeB, int m, int n, int k, float alpha,
                            float[] a, int aOffset, float[] b, int bOffset, float beta, float[] c, int cOffset) {
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException("gemm: negative dimension in m=" + m + ", n=" + n + ", k=" + k);
        }
        checkOperand("a", a, aOffset, transposeA ? k : m, transposeA ? m : k);
        checkOperand("b", b, bOffset, transposeB ? n : k, transposeB ? k : n);
        checkOperand("c", c, cOffset, m, n);
        if (m == 0 || n == 0) {
            return;
        }
        if (k == 0 || alpha == 0f) {
            scale(c, cOffset, m * n, beta);
            return;
        }
        Product product = new Product(transposeA ? 1 : k, transposeA ? m : 1, transposeB, n, k, alpha,
                a, aOffset, b, bOffset, beta, c, cOffset);
        int rowParts = Math.min(parts, Math.max(1, m / MIN_PART_ROWS));
        int columnParts = Math.min(parts, Math.max(1, n / MIN_PART_COLUMNS));
        if (rowParts > 1 || columnParts == 1) {
            int[] bounds = splitPoints(m, rowParts, KERNEL_ROWS);
            runParts(rowParts, part -> product.compute(bounds[part], bounds[part + 1], 0, n));
        } else {
            int[] bounds = splitPoints(n, columnParts, VECTOR_FLOATS);
            runParts(columnParts, part -> product.compute(0, m, bounds[part], bounds[part + 1]));
        }
    }

    private static void checkOperand(String name, float[] array, int offset, int rows, int columns) {
        long needed = (long) rows * columns;
        if (offset < 0 || offset + needed > array.length) {
            throw new IllegalArgumentException("gemm: " + name + " as stored is [" + rows + "," + columns
                    + "] from offset " + offset + ", which needs " + needed + " elements, but the array has "
                    + array.length);
        }
    }

    /** {@code c = beta * c} over {@code length} elements; {@code beta == 0} writes zeros without reading. */
    private static void scale(float[] c, int offset, int length, float beta) {
        if (beta == 0f) {
            Arrays.fill(c, offset, offset + length, 0f);
        } else if (beta != 1f) {
            for (int i = offset; i < offset + length; i++) {
                c[i] *= beta;
            }
        }
    }

    /** {@code parts + 1} increasing bounds from 0 to {@code length}, inner ones multiples of {@code granule}. */
    private static int[] splitPoints(int length, int parts, int granule) {
        int granules = ceilDiv(length, granule);
        int[] bounds = new int[parts + 1];
        for (int part = 1; part < parts; part++) {
            bounds[part] = Math.min(length, (int) ((long) granules * part / parts) * granule);
        }
        bounds[parts] = length;
        return bounds;
    }

    private static int ceilDiv(int x, int y) {
        return (x + y - 1) / y;
    }

    private interface Part {
        void run(int part);
    }

    /** Runs the parts on the caller and {@link CpuWorkers}' helpers; returns when all have finished. */
    private static void runParts(int parts, Part body) {
        CpuWorkers.run(parts, body::run);
    }

    /** Per-thread scratch: the packed B panel (rows allocated on first use) and three C rows. */
    private static final class Workspace {
        final float[][] panel = new float[PANEL_DEPTH][];
        final float[][] rows = new float[KERNEL_ROWS][PANEL_COLUMNS];

        float[][] panel(int depth) {
            for (int p = 0; p < depth; p++) {
                if (panel[p] == null) {
                    panel[p] = new float[PANEL_COLUMNS];
                }
            }
            return panel;
        }
    }

    /**
     * One call's operands. Element (i, p) of op(a) is {@code a[aOffset + i * aRowStride + p * aDepthStride]},
     * which covers both layouts of a without copying it.
     */
    private record Product(int aRowStride, int aDepthStride, boolean transposeB, int n, int k, float alpha,
                           float[] a, int aOffset, float[] b, int bOffset, float beta, float[] c, int cOffset) {

        /** Computes rows [rowStart, rowEnd) by columns [columnStart, columnEnd) of c. */
        void compute(int rowStart, int rowEnd, int columnStart, int columnEnd) {
            Workspace workspace = WORKSPACE.get();
            float[][] rows = workspace.rows;
            int width = columnEnd - columnStart;
            int blockWidth = roundUp(ceilDiv(width, ceilDiv(width, PANEL_COLUMNS)), VECTOR_FLOATS);
            int blockDepth = roundUp(ceilDiv(k, ceilDiv(k, PANEL_DEPTH)), KERNEL_DEPTH);
            for (int column = columnStart; column < columnEnd; column += blockWidth) {
                int columns = Math.min(blockWidth, columnEnd - column);
                for (int depthStart = 0; depthStart < k; depthStart += blockDepth) {
                    int depth = Math.min(blockDepth, k - depthStart);
                    float[][] panel = workspace.panel(depth);
                    pack(panel, depthStart, depth, column, columns);
                    for (int row = rowStart; row < rowEnd; row += KERNEL_ROWS) {
                        int rowCount = Math.min(KERNEL_ROWS, rowEnd - row);
                        for (int r = 0; r < rowCount; r++) {
                            loadRow(rows[r], cOffset + (row + r) * n + column, columns, depthStart == 0);
                        }
                        accumulate(row, rowCount, depthStart, depth, panel, columns, rows[0], rows[1], rows[2]);
                        for (int r = 0; r < rowCount; r++) {
                            System.arraycopy(rows[r], 0, c, cOffset + (row + r) * n + column, columns);
                        }
                    }
                }
            }
        }

        private static int roundUp(int x, int multiple) {
            return ceilDiv(x, multiple) * multiple;
        }

        /** {@code panel[p][j] = op(b)[depthStart + p][column + j]}: B rows become separate arrays. */
        private void pack(float[][] panel, int depthStart, int depth, int column, int columns) {
            if (!transposeB) {
                for (int p = 0; p < depth; p++) {
                    System.arraycopy(b, bOffset + (depthStart + p) * n + column, panel[p], 0, columns);
                }
                return;
            }
            // b holds [n,k]: walk each stored row (a column of op(b)) contiguously, scatter down the panel.
            for (int j = 0; j < columns; j++) {
                int source = bOffset + (column + j) * k + depthStart;
                for (int p = 0; p < depth; p++) {
                    panel[p][j] = b[source + p];
                }
            }
        }

        /**
         * Fills a scratch row with the C values to accumulate into: the partial sum of earlier depth
         * blocks, or {@code beta * c} on the first one ({@code beta == 0}: zeros, c not read).
         */
        private void loadRow(float[] row, int from, int columns, boolean firstDepthBlock) {
            if (firstDepthBlock && beta == 0f) {
                Arrays.fill(row, 0, columns, 0f);
                return;
            }
            System.arraycopy(c, from, row, 0, columns);
            if (firstDepthBlock && beta != 1f) {
                for (int j = 0; j < columns; j++) {
                    row[j] *= beta;
                }
            }
        }

        /**
         * The micro-kernel: {@code c_r[j] += alpha * sum_p op(a)[row + r][depthStart + p] * panel[p][j]}
         * for r below {@code rowCount} (at most 3) and j below {@code columns}. Missing rows are computed
         * with zero coefficients into scratch rows the caller does not store, so one vectorised loop
         * serves every row count.
         */
        private void accumulate(int row, int rowCount, int depthStart, int depth, float[][] panel, int columns,
                                float[] c0, float[] c1, float[] c2) {
            int base0 = aOffset + row * aRowStride + depthStart * aDepthStride;
            int base1 = rowCount > 1 ? base0 + aRowStride : base0;
            int base2 = rowCount > 2 ? base1 + aRowStride : base0;
            float scale1 = rowCount > 1 ? alpha : 0f;
            float scale2 = rowCount > 2 ? alpha : 0f;
            int step = aDepthStride;
            int p = 0;
            for (; p + KERNEL_DEPTH <= depth; p += KERNEL_DEPTH) {
                int at = p * step;
                float a00 = alpha * a[base0 + at], a01 = alpha * a[base0 + at + step], a02 = alpha * a[base0 + at + 2 * step];
                float a10 = scale1 * a[base1 + at], a11 = scale1 * a[base1 + at + step], a12 = scale1 * a[base1 + at + 2 * step];
                float a20 = scale2 * a[base2 + at], a21 = scale2 * a[base2 + at + step], a22 = scale2 * a[base2 + at + 2 * step];
                float[] b0 = panel[p];
                float[] b1 = panel[p + 1];
                float[] b2 = panel[p + 2];
                for (int j = 0; j < columns; j++) {
                    float x0 = b0[j];
                    float x1 = b1[j];
                    float x2 = b2[j];
                    c0[j] = Math.fma(a02, x2, Math.fma(a01, x1, Math.fma(a00, x0, c0[j])));
                    c1[j] = Math.fma(a12, x2, Math.fma(a11, x1, Math.fma(a10, x0, c1[j])));
                    c2[j] = Math.fma(a22, x2, Math.fma(a21, x1, Math.fma(a20, x0, c2[j])));
                }
            }
            for (; p < depth; p++) {
                int at = p * step;
                float a0 = alpha * a[base0 + at];
                float a1 = scale1 * a[base1 + at];
                float a2 = scale2 * a[base2 + at];
                float[] x = panel[p];
                for (int j = 0; j < columns; j++) {
                    c0[j] = Math.fma(a0, x[j], c0[j]);
                    c1[j] = Math.fma(a1, x[j], c1[j]);
                    c2[j] = Math.fma(a2, x[j], c2[j]);
                }
            }
        }
    }
}
