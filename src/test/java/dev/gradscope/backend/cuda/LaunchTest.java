package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The launch conventions of the kernel ABI, in the one place that computes them. */
class LaunchTest {
    private static final int H100_SMS = 132;

    @Test
    void elementWiseCoversTheElementsUpTo32BlocksPerMultiprocessor() {
        assertTrue(Launch.elementWise(0, H100_SMS).isEmpty());
        assertEquals(new Launch(1, 256), Launch.elementWise(1, H100_SMS));
        assertEquals(new Launch(1, 256), Launch.elementWise(256, H100_SMS));
        assertEquals(new Launch(2, 256), Launch.elementWise(257, H100_SMS));
        assertEquals(new Launch(17, 256), Launch.elementWise(4097, H100_SMS));
        assertEquals(new Launch(32 * H100_SMS, 256), Launch.elementWise(1L << 28, H100_SMS));
        assertEquals(new Launch(32, 256), Launch.elementWise(1L << 28, 0), "at least one multiprocessor");
    }

    @Test
    void warpPerRowPutsEightRowsInABlockOf256() {
        assertTrue(Launch.warpPerRow(0).isEmpty());
        assertEquals(new Launch(1, 256), Launch.warpPerRow(1));
        assertEquals(new Launch(1, 256), Launch.warpPerRow(8));
        assertEquals(new Launch(2, 256), Launch.warpPerRow(9));
        assertEquals(new Launch(513, 256), Launch.warpPerRow(4097));
    }

    @Test
    void theLossesPut32RowsInABlockOf1024() {
        assertTrue(Launch.warpPerRowReduced(0).isEmpty());
        assertEquals(new Launch(1, 1024), Launch.warpPerRowReduced(1));
        assertEquals(new Launch(8, 1024), Launch.warpPerRowReduced(256));
        assertEquals(new Launch(9, 1024), Launch.warpPerRowReduced(257));
    }

    @Test
    void threadPerColumnCoversEveryColumn() {
        assertTrue(Launch.threadPerColumn(0).isEmpty());
        assertEquals(new Launch(1, 256), Launch.threadPerColumn(1));
        assertEquals(new Launch(4, 256), Launch.threadPerColumn(784));
    }

    @Test
    void columnTilesTakeThirtyTwoColumnsPerBlockOf1024() {
        assertTrue(Launch.columnTiles(0).isEmpty());
        assertEquals(new Launch(1, 1024), Launch.columnTiles(1));
        assertEquals(new Launch(1, 1024), Launch.columnTiles(32));
        assertEquals(new Launch(2, 1024), Launch.columnTiles(33));
        assertEquals(new Launch(16, 1024), Launch.columnTiles(512));
        assertEquals(new Launch(25, 1024), Launch.columnTiles(784));
    }

    /**
     * Batch normalization's training passes: a block per tile of 32 columns and slice of rows. The chapter's hidden
     * layers at batch 256 in one kernel, 8 slices of 32 rows: 128 blocks for 512 units (about one per multiprocessor of
     * an H100), 64, 32, 16 for 256, 128, 64 (the old launch had 16, 8, 4, 2); taller batches in at most 64 slices of a
     * multiple of 32 rows: bench kernels' [2^28 / 512 x 512] 16 x 64 = 1024 blocks of 8192 rows, about 8 per
     * multiprocessor.
     */
    @Test
    void batchNormCutsTheRowsIntoSlices() {
        int[] units = {512, 256, 128, 64};
        int[] grids = {128, 64, 32, 16};
        assertTrue(Launch.batchNormInOneKernel(256));
        for (int k = 0; k < units.length; k++) {
            assertEquals(new Launch(grids[k], 1024), Launch.batchNormSlices(256, units[k]), units[k] + " units");
        }
        assertEquals(32, Launch.batchNormRowsPerSlice(1));
        assertEquals(new Launch(3, 1024), Launch.batchNormSlices(1, 70), "one row: one slice");
        assertEquals(new Launch(2 * 3, 1024), Launch.batchNormSlices(96, 33), "the last batch of an epoch");
        assertTrue(Launch.batchNormSlices(256, 0).isEmpty());

        assertFalse(Launch.batchNormInOneKernel(257));
        assertEquals(32, Launch.batchNormRowsPerSlice(257));
        assertEquals(9, Launch.batchNormSliceCount(257, 32), "the last slice has one row");
        int benchRows = (1 << 28) / 512;
        assertEquals(8192, Launch.batchNormRowsPerSlice(benchRows));
        assertEquals(new Launch(1024, 1024), Launch.batchNormSlices(benchRows, 512));
        assertEquals(1120, Launch.batchNormRowsPerSlice(70000));
        assertEquals(new Launch(2 * 63, 1024), Launch.batchNormSlices(70000, 64));
        for (int rows = 257; rows < 100_000; rows += 997) {
            int perSlice = Launch.batchNormRowsPerSlice(rows);
            int slices = Launch.batchNormSliceCount(rows, perSlice);
            assertTrue(perSlice % 32 == 0 && slices <= 64 && (long) (slices - 1) * perSlice < rows,
                    rows + " rows: " + slices + " slices of " + perSlice);
        }
    }

    @Test
    void reductionsUseBlocksOfExactly1024() {
        assertEquals(new Launch(1, 1024), Launch.singleBlock());
        assertEquals(new Launch(5, 1024), Launch.blockPerChunk(5));
        assertTrue(Launch.blockPerChunk(0).isEmpty());
    }
}
