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
 *       per chunk of elements; the grid's last block adds the chunks;</li>
 *   <li>batch normalization's passes: one block of 1024 threads per tile of 32 columns and slice of rows
 *       ({@link #batchNormRowsPerSlice}), so that the blocks are many however few the columns (and, in inference,
 *       a block takes its columns' inverse standard deviations once for all its rows).</li>
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

    /**
     * The most rows of a batch whose batch-normalization passes are one kernel each: every block adds all the rows
     * of its tile (the tile read again by each of its slices' blocks, from L2) and writes its slice's outputs. A
     * training batch (the chapter's 256) stays one launch per pass, with 8 rows per thread to add; a taller batch
     * takes two kernels per pass, each block adding its own slice only, so that no row is read more than twice.
     */
    static final int BATCH_NORM_ONE_KERNEL_ROWS = 256;

    /** Rows per slice of batch normalization at the least: one row per thread of a block's 32 row groups. */
    static final int BATCH_NORM_SLICE_ROWS = 32;

    /**
     * The most slices of a taller batch: the last block adds this many partial sums per column, a thread per column
     * (64 sums in order, a few microseconds at most); 16 column tiles x 64 slices give {@code bench kernels}' batch
     * [2^28 / 512 x 512] 1024 blocks, about 8 per multiprocessor of an H100 or H200.
     */
    static final int BATCH_NORM_MAX_SLICES = 64;

    /** Whether batch normalization's passes over {@code rows} rows are one kernel each (see the constants above). */
    static boolean batchNormInOneKernel(int rows) {
        return rows <= BATCH_NORM_ONE_KERNEL_ROWS;
    }

    /**
     * Rows per slice of batch normalization's blocks: {@value #BATCH_NORM_SLICE_ROWS} for a batch of up to
     * {@value #BATCH_NORM_ONE_KERNEL_ROWS} rows; else the rows cut into at most {@value #BATCH_NORM_MAX_SLICES}
     * slices, a multiple of {@value #BATCH_NORM_SLICE_ROWS} rows each. It fixes the order of the sums, so it depends
     * on the rows alone (never on the GPU): the same bits on every device.
     */
    static int batchNormRowsPerSlice(int rows) {
        if (batchNormInOneKernel(rows)) {
            return BATCH_NORM_SLICE_ROWS;
        }
        long slicesOfThirtyTwo = ceilDiv(ceilDiv(rows, BATCH_NORM_MAX_SLICES), BATCH_NORM_SLICE_ROWS);
        return (int) (slicesOfThirtyTwo * BATCH_NORM_SLICE_ROWS);
    }

    /** Slices of {@code rowsPerSlice} rows in {@code rows}. */
    static int batchNormSliceCount(int rows, int rowsPerSlice) {
        return (int) ceilDiv(rows, rowsPerSlice);
    }

    /**
     * Batch normalization's passes over a [rows x columns] batch: a block of {@value #TILE_BLOCK} per tile
     * of {@value #TILE_COLUMNS} columns and slice of {@link #batchNormRowsPerSlice} rows. A batch of 256 rows gets 8
     * slices: 128 blocks for 512 columns, 64, 32 and 16 for 256, 128 and 64.
     */
    static Launch batchNormSlices(int rows, int columns) {
        long slices = batchNormSliceCount(rows, batchNormRowsPerSlice(rows));
        return new Launch((int) (ceilDiv(columns, TILE_COLUMNS) * slices), TILE_BLOCK);
    }

    /** Whether there is nothing to launch. */
    boolean isEmpty() {
        return grid <= 0;
    }

    private static long ceilDiv(long n, int d) {
        return n <= 0 ? 0 : (n + d - 1) / d;
    }
}
