package dev.gradscope;

/** Comparisons of float vectors for tests: how alike two images or outputs are, whatever their scale. */
public final class Vectors {
    private Vectors() {
    }

    /** The cosine of the angle between {@code a} and {@code b}, in double: 1 for the same direction. */
    public static double cosine(float[] a, float[] b) {
        double dot = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return dot / Math.sqrt(aa * bb);
    }
}
