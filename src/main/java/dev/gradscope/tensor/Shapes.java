package dev.gradscope.tensor;

import java.util.Arrays;

/** Shape arithmetic and the checks every op uses so that shape errors name both shapes. */
public final class Shapes {
    private Shapes() {
    }

    public static long size(int... shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in " + describe(shape));
            }
            n *= d;
        }
        return n;
    }

    /** {@code [256, 784]}. */
    public static String describe(int... shape) {
        return Arrays.toString(shape);
    }

    /** Fails unless {@code t} has exactly {@code expected} dimensions. */
    public static void require(String op, String name, Tensor t, int... expected) {
        if (!Arrays.equals(t.shape(), expected)) {
            throw new IllegalArgumentException(op + ": " + name + " has shape " + describe(t.shape())
                    + ", expected " + describe(expected));
        }
    }

    /** Fails unless {@code a} and {@code b} have the same shape. */
    public static void requireSame(String op, String nameA, Tensor a, String nameB, Tensor b) {
        if (!a.sameShape(b)) {
            throw new IllegalArgumentException(op + ": " + nameA + " " + describe(a.shape()) + " and " + nameB
                    + " " + describe(b.shape()) + " must have the same shape");
        }
    }

    /** Fails unless {@code t} holds {@code dtype}. */
    public static void requireType(String op, String name, Tensor t, DType dtype) {
        if (t.dtype() != dtype) {
            throw new IllegalArgumentException(op + ": " + name + " must be " + dtype + ", got " + t.dtype());
        }
    }

    /** Fails unless {@code t} is a matrix (rank 2). */
    public static void requireMatrix(String op, String name, Tensor t) {
        if (t.rank() != 2) {
            throw new IllegalArgumentException(op + ": " + name + " must be a matrix, got shape "
                    + describe(t.shape()));
        }
    }
}
