package dev.gradscope.data;

import java.util.random.RandomGenerator;

/** Shuffling and batch arithmetic for the training loop, which shuffles the row order every epoch. */
public final class Batches {
    private Batches() {
    }

    /**
     * A uniformly random permutation of {@code 0..n-1} (Fisher–Yates). The same generator state
     * gives the same permutation, so a seeded run shuffles the same way every time.
     */
    public static int[] permutation(int n, RandomGenerator rng) {
        if (n < 0) {
            throw new IllegalArgumentException("permutation size must be >= 0, got " + n);
        }
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        // Swap each position with one drawn from itself and the positions before it; drawing from
        // all n positions instead would make some orders more likely than others.
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int swapped = order[i];
            order[i] = order[j];
            order[j] = swapped;
        }
        return order;
    }

    /** The number of batches of at most {@code batchSize} rows that cover {@code rows} rows (the last may be smaller). */
    public static int batchCount(int rows, int batchSize) {
        if (rows < 0 || batchSize < 1) {
            throw new IllegalArgumentException("need rows >= 0 and batchSize >= 1, got rows " + rows + ", batchSize "
                    + batchSize);
        }
        return (int) (((long) rows + batchSize - 1) / batchSize);
    }
}
