package dev.gradscope.backend.cuda;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Storage;
import jcuda.driver.CUdeviceptr;

/**
 * Device memory of a {@link CudaBackend} tensor: one block of the backend's {@link DeviceArena}.
 * Closing it returns the block to the arena's free list (it is not given back to the driver: the next
 * tensor of the same size reuses it).
 */
final class CudaStorage implements Storage {
    private final CudaBackend backend;
    private final DType dtype;
    private final long size;
    private final DeviceArena.Block block;
    private boolean closed;

    CudaStorage(CudaBackend backend, DType dtype, long size, DeviceArena.Block block) {
        this.backend = backend;
        this.dtype = dtype;
        this.size = size;
        this.block = block;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public long size() {
        return size;
    }

    /** The device address of element {@code elementOffset}. */
    CUdeviceptr pointer(long elementOffset) {
        if (closed) {
            // The block may already belong to another tensor: using it would corrupt that tensor.
            throw new IllegalStateException("a CUDA tensor was used after it was closed");
        }
        return block.pointer(elementOffset * dtype.bytes());
    }

    /** The arena block, for tests of reuse. */
    DeviceArena.Block block() {
        return block;
    }

    /** Returns the memory to the arena. Idempotent: a second close must not free a block reused since. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            block.free();
        }
    }
}
