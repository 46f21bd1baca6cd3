package dev.gradscope.backend.cpu;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Storage;

/** Host memory of a {@link CpuBackend} tensor: exactly one of the three arrays, chosen by the dtype. */
final class CpuStorage implements Storage {
    private final CpuBackend backend;
    private final DType dtype;
    final float[] floats;
    final int[] ints;
    final byte[] bytes;

    CpuStorage(CpuBackend backend, DType dtype, long size) {
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("the CPU backend holds at most 2^31 elements per tensor, asked for "
                    + size);
        }
        this.backend = backend;
        this.dtype = dtype;
        int n = (int) size;
        this.floats = dtype == DType.FLOAT32 ? new float[n] : null;
        this.ints = dtype == DType.INT32 ? new int[n] : null;
        this.bytes = dtype == DType.UINT8 ? new byte[n] : null;
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
        return switch (dtype) {
            case FLOAT32 -> floats.length;
            case INT32 -> ints.length;
            case UINT8 -> bytes.length;
        };
    }

    @Override
    public void close() {
        // Java arrays are reclaimed by the garbage collector.
    }
}
