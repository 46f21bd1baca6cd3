package dev.gradscope.tensor;

/**
 * One block of memory allocated by a {@link Backend}: a Java array for the CPU, device memory for
 * CUDA. Tensors are views into a storage; the tensor that allocated it closes it.
 */
public interface Storage extends AutoCloseable {
    /** The backend that allocated this storage and runs every op on it. */
    Backend backend();

    DType dtype();

    /** Number of elements. */
    long size();

    /** Releases the memory. Idempotent. */
    @Override
    void close();
}
