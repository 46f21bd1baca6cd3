package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
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

    @Test
    void reductionsUseBlocksOfExactly1024() {
        assertEquals(new Launch(1, 1024), Launch.singleBlock());
        assertEquals(new Launch(5, 1024), Launch.blockPerChunk(5));
        assertTrue(Launch.blockPerChunk(0).isEmpty());
    }
}
