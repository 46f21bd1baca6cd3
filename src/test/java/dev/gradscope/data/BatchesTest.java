package dev.gradscope.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class BatchesTest {
    @Test
    void permutationHoldsEachIndexOnce() {
        for (int n : new int[] {0, 1, 2, 3, 1000, 4097}) {
            int[] order = Batches.permutation(n, new SplittableRandom(n));
            int[] sorted = order.clone();
            Arrays.sort(sorted);
            for (int i = 0; i < n; i++) {
                assertEquals(i, sorted[i], "n = " + n);
            }
            assertEquals(n, order.length);
        }
    }

    @Test
    void sameSeedGivesSamePermutation() {
        int[] first = Batches.permutation(60_000, new SplittableRandom(42));
        int[] second = Batches.permutation(60_000, new SplittableRandom(42));
        int[] otherSeed = Batches.permutation(60_000, new SplittableRandom(43));
        assertArrayEquals(first, second);
        assertFalse(Arrays.equals(first, otherSeed));
    }

    @Test
    void shufflesEveryTime() {
        int[] order = Batches.permutation(1000, new SplittableRandom(0));
        int fixedPoints = 0;
        for (int i = 0; i < order.length; i++) {
            fixedPoints += order[i] == i ? 1 : 0;
        }
        // A random permutation has about one fixed point on average.
        assertTrue(fixedPoints < 10, fixedPoints + " of 1000 indices stayed in place");
    }

    @Test
    void allOrdersAreEquallyLikely() {
        // The usual Fisher-Yates mistake (drawing j from all n positions) favours some of the
        // 6 orders of 3 items by about 1/3; a fair shuffle stays within a few percent.
        SplittableRandom rng = new SplittableRandom(7);
        int trials = 60_000;
        Map<String, Integer> counts = new HashMap<>();
        for (int t = 0; t < trials; t++) {
            counts.merge(Arrays.toString(Batches.permutation(3, rng)), 1, Integer::sum);
        }
        assertEquals(6, counts.size());
        for (Map.Entry<String, Integer> entry : counts.entrySet()) {
            assertEquals(trials / 6.0, entry.getValue(), trials / 6.0 * 0.05, "order " + entry.getKey());
        }
    }

    @Test
    void batchCountRoundsUp() {
        assertEquals(0, Batches.batchCount(0, 32));
        assertEquals(1, Batches.batchCount(1, 32));
        assertEquals(1, Batches.batchCount(32, 32));
        assertEquals(2, Batches.batchCount(33, 32));
        assertEquals(469, Batches.batchCount(60_000, 128));
        assertThrows(IllegalArgumentException.class, () -> Batches.batchCount(10, 0));
        assertThrows(IllegalArgumentException.class, () -> Batches.permutation(-1, new SplittableRandom(0)));
    }
}
