package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Test;

/**
 * The arena's bookkeeping, on the CPU: chunks come from a fake that only counts, so alignment, exact-size
 * reuse, chunk growth and release are checked on every machine (the GPU test checks the real thing).
 */
class DeviceArenaTest {
    private static final long CHUNK = 64 * DeviceArena.ALIGNMENT;

    /** Hands out pointer objects that are never dereferenced and records what was freed. */
    private static final class FakeChunks implements DeviceArena.ChunkMemory {
        final List<Long> allocated = new ArrayList<>();
        final List<CUdeviceptr> live = new ArrayList<>();
        int frees;

        @Override
        public CUdeviceptr allocate(long bytes) {
            allocated.add(bytes);
            CUdeviceptr p = new CUdeviceptr();
            live.add(p);
            return p;
        }

        @Override
        public void free(CUdeviceptr chunk) {
            assertTrue(live.remove(chunk), "freed a chunk that is not live");
            frees++;
        }
    }

    @Test
    void blocksAreAlignedDisjointAndAtLeastOneUnit() {
        FakeChunks chunks = new FakeChunks();
        try (DeviceArena arena = new DeviceArena(chunks, CHUNK)) {
            long[] sizes = {0, 1, 3, 255, 256, 257, 1000};
            long expectedOffset = 0;
            for (long size : sizes) {
                DeviceArena.Block b = arena.allocate(size);
                assertEquals(0, b.offset % DeviceArena.ALIGNMENT, "offset of a " + size + "-byte block");
                assertEquals(Math.max(DeviceArena.ALIGNMENT, DeviceArena.roundUp(size)), b.bytes);
                assertEquals(expectedOffset, b.offset, "blocks follow each other without overlap");
                expectedOffset += b.bytes;
            }
            assertEquals(1, arena.chunkCount());
            assertEquals(expectedOffset, arena.liveBytes());
        }
    }

    @Test
    void aFreedBlockIsReusedByTheNextAllocationOfTheSameSizeOnly() {
        try (DeviceArena arena = new DeviceArena(new FakeChunks(), CHUNK)) {
            DeviceArena.Block first = arena.allocate(1000);
            first.free();
            DeviceArena.Block other = arena.allocate(2000);
            assertNotSame(first, other, "a different size does not take the freed block");
            DeviceArena.Block again = arena.allocate(1000);
            assertSame(first, again, "the same size does");
            assertTrue(again.isLive());
            DeviceArena.Block rounded = arena.allocate(999);
            assertNotSame(first, rounded, "that block is live again");
            again.free();
            assertSame(first, arena.allocate(1001), "sizes are compared after rounding to the alignment");
        }
    }

    @Test
    void repeatingTheSameAllocationsReachesASteadyState() {
        FakeChunks chunks = new FakeChunks();
        try (DeviceArena arena = new DeviceArena(chunks, CHUNK)) {
            long reserved = -1;
            for (int round = 0; round < 50; round++) {
                List<DeviceArena.Block> blocks = new ArrayList<>();
                for (long size : new long[] {4 * 784 * 64, 4 * 64, 4 * 10 * 64, 4 * 64}) {
                    blocks.add(arena.allocate(size));
                }
                blocks.forEach(DeviceArena.Block::free);
                if (round == 0) {
                    reserved = arena.reservedBytes();
                }
                assertEquals(reserved, arena.reservedBytes(), "round " + round + " took more memory");
                assertEquals(0, arena.liveBytes());
            }
        }
    }

    @Test
    void largeRequestsGetTheirOwnChunkAndFullChunksAreFollowedByNewOnes() {
        FakeChunks chunks = new FakeChunks();
        try (DeviceArena arena = new DeviceArena(chunks, CHUNK)) {
            DeviceArena.Block small = arena.allocate(256);
            DeviceArena.Block large = arena.allocate(CHUNK / 2 + 1);
            assertEquals(List.of(CHUNK, DeviceArena.roundUp(CHUNK / 2 + 1)), chunks.allocated);
            assertEquals(0, large.offset);
            DeviceArena.Block next = arena.allocate(256);
            assertEquals(small.chunk, next.chunk, "the large block left the current chunk in use");
            assertEquals(256, next.offset);
            for (long used = 512; used < CHUNK; used += 256) {
                arena.allocate(256);
            }
            assertEquals(2, arena.chunkCount());
            DeviceArena.Block overflow = arena.allocate(256);
            assertEquals(3, arena.chunkCount(), "a full chunk is followed by a new one");
            assertEquals(0, overflow.offset);
        }
    }

    @Test
    void closeFreesEveryChunkOnceAndInvalidatesBlocks() {
        FakeChunks chunks = new FakeChunks();
        DeviceArena arena = new DeviceArena(chunks, CHUNK);
        DeviceArena.Block a = arena.allocate(100);
        arena.allocate(CHUNK);
        DeviceArena.Block freed = arena.allocate(300);
        freed.free();
        freed.free(); // idempotent
        assertEquals(DeviceArena.roundUp(100) + CHUNK, arena.liveBytes());
        arena.close();
        arena.close(); // idempotent
        assertEquals(2, chunks.frees);
        assertTrue(chunks.live.isEmpty());
        assertThrows(IllegalStateException.class, () -> a.pointer(0), "a block of a closed arena");
        assertThrows(IllegalStateException.class, () -> arena.allocate(1));
        a.free(); // returning a block after close does nothing
    }

    @Test
    void aFreedBlockCannotBeUsed() {
        try (DeviceArena arena = new DeviceArena(new FakeChunks(), CHUNK)) {
            DeviceArena.Block b = arena.allocate(64);
            b.pointer(0);
            b.free();
            assertThrows(IllegalStateException.class, () -> b.pointer(0));
        }
    }

    @Test
    void rejectsBadSizes() {
        assertThrows(IllegalArgumentException.class, () -> new DeviceArena(new FakeChunks(), 100));
        try (DeviceArena arena = new DeviceArena(new FakeChunks(), CHUNK)) {
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(-1));
        }
    }
}
