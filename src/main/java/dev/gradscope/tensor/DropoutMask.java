package dev.gradscope.tensor;

/**
 * Which units a dropout layer keeps in a training step: a counter-based draw, a pure function of a few
 * integers, so that it needs no generator state on the device, a replayed step graph draws a fresh mask from
 * the step counters it reads on the device, a resumed run draws the masks of the run it resumes, and the CPU
 * and a GPU draw the same mask bit for bit. {@code src/main/cuda/dropout.cu} has the same functions.
 *
 * <p>The hash is SplitMix64 (G. L. Steele, D. Lea and C. H. Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014), whose output function {@link #mix64} is D. Stafford's "Mix13" variant of the
 * MurmurHash3 64-bit finalizer ("Better bit mixing", 2011). It is what {@code java.util.SplittableRandom}
 * computes: the k-th {@code nextLong()} (k from 1) of a generator seeded with {@code s} is
 * {@code mix64(s + k * GOLDEN_GAMMA)}, so the k-th value of a key below is that generator's k-th draw. Three
 * levels, each a draw of the one above:
 * <ol>
 *   <li>a layer's stream key (on the host, once): draw {@code layerIndex + 1} of the generator seeded with
 *       {@code modelSeed ^ STREAM} (the xor keeps it apart from the model's own random stream, which draws
 *       the initial weights from {@code modelSeed});</li>
 *   <li>a step's key (on the device, per launch): draw {@code stepNumber + 1} of the stream key, where
 *       {@code stepNumber = epoch * 2^32 + step of the epoch}, read from the trainer's device counters;</li>
 *   <li>element {@code i}'s draw: the top 24 bits of draw {@code i + 1} of the step key, a uniform
 *       {@code u = bits / 2^24} in [0, 1) with float precision.</li>
 * </ol>
 * An element is kept when {@code u >= rate}, as Keras and TensorFlow keep it ({@code random >= rate}); with 24
 * bits that is {@code bits >= }{@link #threshold}. A kept element is scaled by {@link #scale}, Keras's
 * {@code 1 / (1 - rate)} (inverted dropout: inference needs no scaling).
 */
public final class DropoutMask {
    /** SplitMix64's increment: 2^64 / phi, odd. */
    public static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

    /** Xored into the model's seed for the dropout layers' streams (the first 64 bits of pi's fraction). */
    public static final long STREAM = 0x243F6A8885A308D3L;

    /** Bits of each element's draw: a float's precision, as a float uniform in [0, 1) has. */
    public static final int BITS = 24;

    private DropoutMask() {
    }

    /** Stafford's Mix13: the bits of {@code z} mixed so that every input bit affects every output bit. */
    public static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The stream key of the dropout layer at {@code layerIndex} of a model seeded with {@code modelSeed}. */
    public static long streamKey(long modelSeed, int layerIndex) {
        return mix64((modelSeed ^ STREAM) + (layerIndex + 1L) * GOLDEN_GAMMA);
    }

    /** The key of one training step of a stream: {@code epoch} and {@code step} of the epoch are >= 0. */
    public static long stepKey(long streamKey, int epoch, int step) {
        long stepNumber = ((long) epoch << 32) | (step & 0xFFFFFFFFL);
        return mix64(streamKey + (stepNumber + 1) * GOLDEN_GAMMA);
    }

    /** Element {@code i}'s draw in a step: {@value #BITS} uniform bits, 0 to 2^24 - 1. */
    public static int bits(long stepKey, long i) {
        return (int) (mix64(stepKey + (i + 1) * GOLDEN_GAMMA) >>> (64 - BITS));
    }

    /**
     * The smallest draw that is kept at {@code rate}: {@code ceil((float) rate * 2^24)}, so that
     * {@code bits >= threshold} exactly when the float {@code bits / 2^24 >= (float) rate}, TensorFlow's comparison of
     * a float32 uniform with the rate in the input's type (the products are exact in double).
     */
    public static int threshold(double rate) {
        requireRate(rate);
        return (int) Math.ceil((float) rate * (double) (1 << BITS));
    }

    /** What a kept element is multiplied by: Keras's {@code 1 / (1 - rate)}, in double, then rounded to float. */
    public static float scale(double rate) {
        requireRate(rate);
        return (float) (1.0 / (1.0 - rate));
    }

    /**
     * Fails unless {@code rate} is in [0, 1), also as a float (the threshold's): 1 would drop everything (and scale
     * by infinity), NaN means nothing.
     */
    public static void requireRate(double rate) {
        if (!(rate >= 0 && rate < 1) || (float) rate >= 1) {
            throw new IllegalArgumentException("dropout rate must be in [0, 1), got " + rate);
        }
    }
}
