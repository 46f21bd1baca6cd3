package dev.gradscope.tensor;

import java.util.Arrays;

/**
 * A dense, row-major, contiguous array of one {@link DType} with a shape, held by one {@link Backend}.
 *
 * <p>A tensor is a window {@code [offset, offset + size)} into a {@link Storage}. The tensor returned
 * by {@link Backend#allocate} owns its storage and closes it; views made with {@link #view},
 * {@link #rows} or {@link #reshape} share it and closing them does nothing. This is how a model keeps
 * all its parameters in one buffer while each layer holds views of its own weights.
 */
public final class Tensor implements AutoCloseable {
    private final Storage storage;
    private final long offset;
    private final int[] shape;
    private final long size;
    private final boolean ownsStorage;

    private Tensor(Storage storage, long offset, int[] shape, boolean ownsStorage) {
        this.storage = storage;
        this.offset = offset;
        this.shape = shape.clone();
        this.size = Shapes.size(shape);
        this.ownsStorage = ownsStorage;
        if (offset < 0 || offset + size > storage.size()) {
            throw new IllegalArgumentException("view " + Shapes.describe(shape) + " at offset " + offset
                    + " does not fit in a storage of " + storage.size() + " elements");
        }
    }

    /** Wraps a whole storage as an owning tensor; for {@link Backend} implementations. */
    public static Tensor owning(Storage storage, int... shape) {
        if (Shapes.size(shape) != storage.size()) {
            throw new IllegalArgumentException("shape " + Shapes.describe(shape) + " needs " + Shapes.size(shape)
                    + " elements, storage has " + storage.size());
        }
        return new Tensor(storage, 0, shape, true);
    }

    public Storage storage() {
        return storage;
    }

    public Backend backend() {
        return storage.backend();
    }

    public DType dtype() {
        return storage.dtype();
    }

    /** First element of this view inside its storage. */
    public long offset() {
        return offset;
    }

    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int axis) {
        return shape[axis];
    }

    /** Number of elements. */
    public long size() {
        return size;
    }

    /** The first dimension (the batch, for activations); 1 for a scalar. */
    public int rowCount() {
        return shape.length == 0 ? 1 : shape[0];
    }

    /** Product of all dimensions but the first: the width of one row. */
    public int columnCount() {
        return shape.length == 0 ? 1 : (int) (size / Math.max(1, shape[0]));
    }

    /** A view of {@code Shapes.size(shape)} elements starting {@code elementOffset} into this tensor. */
    public Tensor view(long elementOffset, int... newShape) {
        long n = Shapes.size(newShape);
        if (elementOffset < 0 || elementOffset + n > size) {
            throw new IllegalArgumentException("view " + Shapes.describe(newShape) + " at " + elementOffset
                    + " is outside tensor " + Shapes.describe(shape));
        }
        return new Tensor(storage, offset + elementOffset, newShape, false);
    }

    /** A view of rows {@code [first, first + count)} along the first dimension. */
    public Tensor rows(int first, int count) {
        if (shape.length == 0 || first < 0 || count < 0 || first + count > shape[0]) {
            throw new IllegalArgumentException("rows [" + first + ", " + (first + count) + ") outside tensor "
                    + Shapes.describe(shape));
        }
        int[] s = shape.clone();
        s[0] = count;
        return new Tensor(storage, offset + (long) first * columnCount(), s, false);
    }

    /** The same elements seen with another shape of the same size. */
    public Tensor reshape(int... newShape) {
        if (Shapes.size(newShape) != size) {
            throw new IllegalArgumentException("cannot reshape " + Shapes.describe(shape) + " to "
                    + Shapes.describe(newShape));
        }
        return new Tensor(storage, offset, newShape, false);
    }

    /** Copies the elements to a new Java array (FLOAT32 only). Synchronises with the device. */
    public float[] toFloatArray() {
        return backend().toHostFloats(this);
    }

    /** Copies the elements to a new Java array (INT32 only). Synchronises with the device. */
    public int[] toIntArray() {
        return backend().toHostInts(this);
    }

    /** Reads one float element; slow on a device, for tests and small reads. */
    public float item() {
        if (size != 1) {
            throw new IllegalStateException("item() needs a tensor of one element, got " + Shapes.describe(shape));
        }
        return toFloatArray()[0];
    }

    /** Closes each of {@code tensors} that is not null: the buffers a layer or optimizer allocated. */
    public static void closeAll(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t != null) {
                t.close();
            }
        }
    }

    @Override
    public void close() {
        if (ownsStorage) {
            storage.close();
        }
    }

    @Override
    public String toString() {
        return "Tensor" + Shapes.describe(shape) + " " + dtype() + " on " + backend().name();
    }

    /** True when both have the same dimensions. */
    public boolean sameShape(Tensor other) {
        return Arrays.equals(shape, other.shape);
    }
}
