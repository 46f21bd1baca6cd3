package dev.gradscope.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The dropout hash against independent computations: SplitMix64's published output for seed 0 (the reference C
 * code, splitmix64.c by S. Vigna: 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, ...) and Java's own
 * {@link SplittableRandom}, whose k-th {@code nextLong()} from seed s is {@code mix64(s + k * GOLDEN_GAMMA)}, the
 * form every level of {@link DropoutMask} takes.
 */
class DropoutMaskTest {
    @Test
    void mix64IsSplitMix64sOutputFunction() {
        long[] published = {0xE220A8397B1DCDAFL, 0x6E789E6AA1B965F4L, 0x06C45D188009454FL, 0xF88BB8A8724C81ECL};
        for (int k = 1; k <= published.length; k++) {
            assertEquals(published[k - 1], DropoutMask.mix64(k * DropoutMask.GOLDEN_GAMMA), "draw " + k + " of seed 0");
        }
    }

    @Test
    void everyLevelIsADrawOfSplittableRandom() {
        long seed = 1234567;
        SplittableRandom layers = new SplittableRandom(seed ^ DropoutMask.STREAM);
        long[] streamKeys = new long[4];
        for (int layer = 0; layer < streamKeys.length; layer++) {
            streamKeys[layer] = layers.nextLong();
            assertEquals(streamKeys[layer], DropoutMask.streamKey(seed, layer), "stream key of layer " + layer);
        }
        // Steps of epoch 0 are draws 1, 2, 3 ... of the stream key.
        SplittableRandom steps = new SplittableRandom(streamKeys[2]);
        for (int step = 0; step < 5; step++) {
            long stepKey = steps.nextLong();
            assertEquals(stepKey, DropoutMask.stepKey(streamKeys[2], 0, step), "key of step " + step);
            SplittableRandom elements = new SplittableRandom(stepKey);
            for (int i = 0; i < 100; i++) {
                assertEquals((int) (elements.nextLong() >>> 40), DropoutMask.bits(stepKey, i), "element " + i);
            }
        }
        // Epoch e, step s is draw e * 2^32 + s + 1: one step of epoch 1 is the stream key's draw 2^32 + 4.
        assertEquals(DropoutMask.mix64(streamKeys[0] + ((1L << 32) + 4) * DropoutMask.GOLDEN_GAMMA),
                DropoutMask.stepKey(streamKeys[0], 1, 3));
    }

    @Test
    void epochsStepsLayersAndSeedsGetTheirOwnKeys() {
        long key = DropoutMask.streamKey(7, 1);
        assertNotEquals(DropoutMask.stepKey(key, 0, 1), DropoutMask.stepKey(key, 1, 0));
        assertNotEquals(DropoutMask.stepKey(key, 0, 0), DropoutMask.stepKey(key, 0, 1));
        assertNotEquals(DropoutMask.streamKey(7, 1), DropoutMask.streamKey(7, 3));
        assertNotEquals(DropoutMask.streamKey(7, 1), DropoutMask.streamKey(8, 1));
    }

    @Test
    void thresholdKeepsExactlyTheDrawsAtOrAboveTheRate() {
        assertEquals(0, DropoutMask.threshold(0), "rate 0 keeps every draw");
        assertEquals(1 << 23, DropoutMask.threshold(0.5));
        assertEquals(1 << 22, DropoutMask.threshold(0.25));
        for (double rate : new double[] {0.1, 0.2, 0.3, 1e-9, 0.5, 0.9, Math.nextDown(1f)}) {
            int t = DropoutMask.threshold(rate);
            float r = (float) rate; // TensorFlow compares a float32 draw with the rate in float32
            assertTrue(t / (float) (1 << 24) >= r, rate + ": the threshold's draw is kept");
            assertTrue(t == 0 || (t - 1) / (float) (1 << 24) < r, rate + ": the draw below it is dropped");
        }
    }

    @Test
    void scaleIsKerasOneOverOneMinusRate() {
        assertEquals(1f, DropoutMask.scale(0));
        assertEquals(2f, DropoutMask.scale(0.5));
        assertEquals(1.25f, DropoutMask.scale(0.2));
        assertEquals(4f, DropoutMask.scale(0.75));
        assertEquals((float) (1 / 0.9), DropoutMask.scale(0.1), "in double, then rounded: Keras's 1 / (1 - rate)");
    }

    @Test
    void ratesOutsideZeroToOneAreRefused() {
        for (double rate : new double[] {1, -0.1, Double.NaN, 2, Math.nextDown(1.0)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DropoutMask.threshold(rate));
            assertEquals("dropout rate must be in [0, 1), got " + rate, e.getMessage());
        }
    }
}
