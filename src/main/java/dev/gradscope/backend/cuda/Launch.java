package dev.gradscope.backend.cuda;

/**
 * A kernel's launch configuration (one-dimensional grid and block), computed here and nowhere else,
 * following the launch conventions of the kernel ABI ({@code cuda-abi.md}):
 *
 * <ul>
 *   <li>element-wise kernels: blocks of 256 threads, as many blocks as cover the elements but at
 *       most 32 per multiprocessor; the kernels' grid-stride loops cover the rest, so a large tensor
 *       does not pay for scheduling millions of blocks. Clipping by global norm has this shape too:
 *       each of its blocks first adds the few squared norms by the fixed tree, which gives the same
 *       bits for any block size;</li>
 *   <li>one warp per row (softmax, the fused losses): blocks of 256 threads, so 8 rows per block; the
 *       grid's last block then adds the rows' losses into the totals;</li>
 *   <li>one thread per column (per-column parameter gradients): blocks of 256;</li>
 *   <li>column tiles (column sums, the fused activation backward with its bias gradient and per-unit
 *       statistics): one block of 1024 threads, a warp per row group of 32 columns x 32 row groups, per 32
 *       columns (the fixed tree over the 32 row groups gives the same bits for any multiple of 32);</li>
 *   <li>single-block reductions (shared parameter gradients): one block of exactly 1024 threads, whose
 *       fixed tree makes the sum deterministic;</li>
 *   <li>chunked segmented reductions (gradient norms, measured optimizer steps): one block of 1024 threads
 *       per chunk of elements; the grid's last block adds the chunks.</li>
 * </ul>
 *
 * A launch over nothing (0 elements, rows, columns or segments) is {@link #isEmpty() empty}: CUDA
 * rejects a grid of 0 blocks, so the backend skips it.
 *
 * @param grid  blocks in the grid (0: nothing to launch)
 * @param block threads per block
 */
record Launch(int grid, int block) {
    /** Threads per block of element-wise kernels. */
    static final int ELEMENT_WISE_BLOCK = 256;

    /** Cap on element-wise grids, per multiprocessor: enough resident blocks to hide latency. */
    static final int BLOCKS_PER_MULTIPROCESSOR = 32;

    /** Threads per warp. */
    static final int WARP = 32;

    /** Threads per block of warp-per-row kernels. */
    static final int ROW_BLOCK = 256;

    /** Rows one warp-per-row block handles. */
    static final int ROWS_PER_BLOCK = ROW_BLOCK / WARP;

    /** Threads per block of thread-per-column kernels. */
    static final int COLUMN_BLOCK = 256;

    /** Columns of one column tile: a warp's 32 lanes, each on its own column. */
    static final int TILE_COLUMNS = 32;

    /**
     * Threads per block of column-tile kernels: a warp per row group, 32 columns x 32 row groups (any multiple
     * of 32 gives the same bits; 1024 gives each thread the fewest rows, 8 of a 256-row batch).
     */
    static final int TILE_BLOCK = 1024;

    /** Threads of the single block of a reduction; the kernels' shared-memory trees assume exactly this. */
    static final int REDUCTION_BLOCK = 1024;

    /** An element-wise kernel over {@code n} elements. */
    static Launch elementWise(long n, int multiprocessors) {
        if (n <= 0) {
            return new Launch(0, ELEMENT_WISE_BLOCK);
        }
        long cap = (long) BLOCKS_PER_MULTIPROCESSOR * Math.max(1, multiprocessors);
        return new Launch((int) Math.min(ceilDiv(n, ELEMENT_WISE_BLOCK), cap), ELEMENT_WISE_BLOCK);
    }

    /** One warp per row over {@code rows} rows. */
    static Launch warpPerRow(int rows) {
        return new Launch((int) ceilDiv(rows, ROWS_PER_BLOCK), ROW_BLOCK);
    }

    /**
     * One warp per row in blocks of {@value #REDUCTION_BLOCK} (32 rows each), for the losses: their grid's last
     * block then sums the totals and the bias gradient with 32 warps (a row group each, 8 rows of a 256-row
     * batch per thread) instead of 8 (32 rows per thread, one after another, on every step's critical path).
     * The same bits as any other block size.
     */
    static Launch warpPerRowReduced(int rows) {
        return new Launch((int) ceilDiv(rows, REDUCTION_BLOCK / WARP), REDUCTION_BLOCK);
    }

    /** One thread per column over {@code columns} columns. */
    static Launch threadPerColumn(int columns) {
        return new Launch((int) ceilDiv(columns, COLUMN_BLOCK), COLUMN_BLOCK);
    }

    /** One block of {@value #TILE_BLOCK} threads per {@value #TILE_COLUMNS} columns. */
    static Launch columnTiles(int columns) {
        return new Launch((int) ceilDiv(columns, TILE_COLUMNS), TILE_BLOCK);
    }

    /** One block of {@value #REDUCTION_BLOCK} threads. */
    static Launch singleBlock() {
        return new Launch(1, REDUCTION_BLOCK);
    }

    /** One block of {@value #REDUCTION_BLOCK} threads per chunk of a chunked segmented reduction. */
    static Launch blockPerChunk(int chunks) {
        return new Launch(Math.max(0, chunks), REDUCTION_BLOCK);
    }

    /** Whether there is nothing to launch. */
    boolean isEmpty() {
        return grid <= 0;
    }

    private static long ceilDiv(long n, int d) {
        return n <= 0 ? 0 : (n + d - 1) / d;
    }
}
