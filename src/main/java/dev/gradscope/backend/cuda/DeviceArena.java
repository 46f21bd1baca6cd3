package dev.gradscope.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.driver.CUdeviceptr;

/**
 * Device memory for one backend: large chunks from {@code cuMemAlloc}, cut into 256-byte-aligned
 * blocks.
 *
 * <p>Why an arena. {@code cuMemAlloc} and {@code cuMemFree} are slow and {@code cuMemFree} waits for
 * the whole device; a training run allocates everything once, up front, and then only replays fixed
 * addresses (which is also what a CUDA graph needs). A block that is closed goes to a free list keyed
 * by its exact (rounded) size and is handed out again by the next allocation of that size, so code
 * that allocates and frees the same buffers again and again (one {@code evaluate()} after another)
 * reaches a steady state and stops growing. Blocks are never split or merged: the sizes a network uses
 * repeat exactly, and exact reuse keeps this class simple enough to trust.
 *
 * <p>Why reuse is safe without waiting: every kernel, copy and cuBLAS call of the backend runs on its
 * one stream, in order, so work queued after a block is reused starts only after all work queued
 * before it was freed has finished.
 *
 * <p>Large requests (more than half a chunk, e.g. a whole dataset) get a chunk of their own, so they
 * do not waste the rest of the current chunk. Everything is freed, chunk by chunk, by {@link #close()}.
 */
final class DeviceArena implements AutoCloseable {
    /** Alignment of every block: cuBLAS, vector loads and the driver's own allocations all fit it. */
    static final long ALIGNMENT = 256;

    /** Size of an ordinary chunk. */
    static final long DEFAULT_CHUNK_BYTES = 64L << 20;

    /** Where chunks come from: the driver on a GPU, a fake in the tests of this class. */
    interface ChunkMemory {
        /** A new chunk of {@code bytes} bytes, aligned to at least {@link #ALIGNMENT}. */
        CUdeviceptr allocate(long bytes);

        /** Frees a chunk returned by {@link #allocate}. */
        void free(CUdeviceptr chunk);
    }

    /** {@code cuMemAlloc} and {@code cuMemFree} (which align to at least 256 bytes). */
    static final ChunkMemory DRIVER = new ChunkMemory() {
        @Override
        public CUdeviceptr allocate(long bytes) {
            CUdeviceptr chunk = new CUdeviceptr();
            CudaErrors.checkDriver(cuMemAlloc(chunk, bytes));
            return chunk;
        }

        @Override
        public void free(CUdeviceptr chunk) {
            CudaErrors.checkDriver(cuMemFree(chunk));
        }
    };

    /** One block: {@code bytes} bytes at {@code offset} in chunk {@code chunk}. */
    static final class Block {
        private final DeviceArena arena;
        private final CUdeviceptr base;
        final int chunk;
        final long offset;
        final long bytes;
        private boolean live = true;

        private Block(DeviceArena arena, CUdeviceptr chunkPointer, int chunk, long offset, long bytes) {
            this.arena = arena;
            this.base = chunkPointer.withByteOffset(offset);
            this.chunk = chunk;
            this.offset = offset;
            this.bytes = bytes;
        }

        /** The device address {@code byteOffset} bytes into the block, as a new pointer object. */
        CUdeviceptr pointer(long byteOffset) {
            if (!live || arena.closed) {
                throw new IllegalStateException(arena.closed ? "the CUDA backend was closed; its memory is gone"
                        : "device memory used after its tensor was closed");
            }
            return base.withByteOffset(byteOffset);
        }

        boolean isLive() {
            return live;
        }

        /** Returns the block to its arena's free list. Idempotent. */
        void free() {
            arena.release(this);
        }
    }

    private final ChunkMemory memory;
    private final long chunkBytes;
    private final List<CUdeviceptr> chunks = new ArrayList<>();
    private final Map<Long, ArrayDeque<Block>> free = new HashMap<>();
    private int current = -1;
    private long currentUsed;
    private long currentSize;
    private long reservedBytes;
    private long liveBytes;
    private volatile boolean closed;

    DeviceArena(ChunkMemory memory, long chunkBytes) {
        if (chunkBytes < ALIGNMENT || chunkBytes % ALIGNMENT != 0) {
            throw new IllegalArgumentException("chunk size must be a positive multiple of " + ALIGNMENT + ", got "
                    + chunkBytes);
        }
        this.memory = memory;
        this.chunkBytes = chunkBytes;
    }

    /** A block of at least {@code bytes} bytes (at least one alignment unit, even for 0 bytes). */
    synchronized Block allocate(long bytes) {
        if (closed) {
            throw new IllegalStateException("the CUDA backend was closed; its memory is gone");
        }
        if (bytes < 0) {
            throw new IllegalArgumentException("negative allocation: " + bytes + " bytes");
        }
        long size = roundUp(Math.max(bytes, 1));
        ArrayDeque<Block> sameSize = free.get(size);
        if (sameSize != null && !sameSize.isEmpty()) {
            Block b = sameSize.pop();
            b.live = true;
            liveBytes += size;
            return b;
        }
        Block b;
        if (size > chunkBytes / 2) {
            int index = newChunk(size);
            b = new Block(this, chunks.get(index), index, 0, size);
        } else {
            if (current < 0 || currentUsed + size > currentSize) {
                current = newChunk(chunkBytes);
                currentUsed = 0;
                currentSize = chunkBytes;
            }
            b = new Block(this, chunks.get(current), current, currentUsed, size);
            currentUsed += size;
        }
        liveBytes += size;
        return b;
    }

    private int newChunk(long size) {
        chunks.add(memory.allocate(size));
        reservedBytes += size;
        return chunks.size() - 1;
    }

    private synchronized void release(Block b) {
        if (closed || !b.live) {
            return; // the chunk is already gone, or the block was already returned
        }
        b.live = false;
        liveBytes -= b.bytes;
        free.computeIfAbsent(b.bytes, k -> new ArrayDeque<>()).push(b);
    }

    /** Bytes taken from the device (all chunks). */
    synchronized long reservedBytes() {
        return reservedBytes;
    }

    /** Bytes in blocks not yet freed. */
    synchronized long liveBytes() {
        return liveBytes;
    }

    /** Chunks taken from the device. */
    synchronized int chunkCount() {
        return chunks.size();
    }

    static long roundUp(long bytes) {
        return (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** Frees every chunk; blocks still held become invalid. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException first = null;
        for (CUdeviceptr chunk : chunks) {
            try {
                memory.free(chunk);
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        chunks.clear();
        free.clear();
        liveBytes = 0;
        if (first != null) {
            throw first;
        }
    }
}
