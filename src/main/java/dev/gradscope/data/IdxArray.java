package dev.gradscope.data;

import java.util.Arrays;

/**
 * The contents of one IDX file of unsigned bytes: its dimensions and its data, row-major.
 *
 * <p>For MNIST images the dimensions are {@code [count, 28, 28]}; for labels {@code [count]}.
 * The arrays are shared, not copied: an {@code IdxArray} is a short-lived value that a loader
 * turns into a {@link Dataset} (which does copy).
 *
 * @param source where the data came from (a file path or a classpath resource), for messages
 * @param dimensions the sizes from the IDX header, outermost first
 * @param data the unsigned bytes, exactly the product of {@code dimensions} of them
 */
public record IdxArray(String source, int[] dimensions, byte[] data) {

    /** The number of items: the first dimension (images or labels). */
    public int count() {
        return dimensions[0];
    }

    /** The number of bytes in one item: the product of all dimensions but the first (1 for labels). */
    public int itemSize() {
        int size = 1;
        for (int i = 1; i < dimensions.length; i++) {
            size *= dimensions[i];
        }
        return size;
    }

    @Override
    public String toString() {
        return "IdxArray[" + source + ", dimensions " + Arrays.toString(dimensions) + "]";
    }
}
