package dev.gradscope.tensor;

/** Element types a {@link Tensor} can hold: floats for math, ints for indices, bytes for raw pixels. */
public enum DType {
    FLOAT32(4),
    INT32(4),
    UINT8(1);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }
}
