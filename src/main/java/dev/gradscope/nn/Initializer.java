package dev.gradscope.nn;

import java.util.Arrays;
import java.util.Locale;
import java.util.random.RandomGenerator;
import java.util.stream.Collectors;

/**
 * How a weight tensor gets its first values, with Keras's definitions. Fan-in and fan-out are the
 * number of inputs and outputs of the unit the weights feed.
 *
 * <p>{@code scale} multiplies the standard deviation (or the uniform limit) of the variance-scaling
 * schemes, 1 by default; for {@link Kind#RANDOM_NORMAL} it is the standard deviation and for
 * {@link Kind#RANDOM_UNIFORM} the limit, so that an exploding-gradient run is one flag away.
 *
 * @param kind  which scheme
 * @param scale the gain (or the stddev / limit for the plain random kinds)
 */
public record Initializer(Kind kind, double scale) {

    /** Keras's "truncated normal" stddev correction: the stddev of a unit normal truncated at +-2. */
    private static final double TRUNCATED_NORMAL_STDDEV = 0.87962566103423978;

    /** The schemes, named as in Keras. */
    public enum Kind {
        /** Uniform in [-l, l], l = sqrt(6 / (fanIn + fanOut)) (Glorot and Bengio, 2010). Keras's default. */
        GLOROT_UNIFORM("glorot_uniform", 1.0),
        /** Truncated normal, stddev sqrt(2 / (fanIn + fanOut)). */
        GLOROT_NORMAL("glorot_normal", 1.0),
        /** Uniform in [-l, l], l = sqrt(6 / fanIn) (He et al., 2015), for ReLU units. */
        HE_UNIFORM("he_uniform", 1.0),
        /** Truncated normal, stddev sqrt(2 / fanIn). */
        HE_NORMAL("he_normal", 1.0),
        /** Truncated normal, stddev sqrt(1 / fanIn) (LeCun et al., 1998), for SELU. */
        LECUN_NORMAL("lecun_normal", 1.0),
        /** Normal with mean 0 and stddev {@code scale} (Keras default 0.05). */
        RANDOM_NORMAL("random_normal", 0.05),
        /** Uniform in [-scale, scale] (Keras default 0.05). */
        RANDOM_UNIFORM("random_uniform", 0.05),
        /** Every value equal to {@code scale}: a PReLU slope's or a Swish beta's starting value. */
        CONSTANT("constant", 0.0),
        /** All zeros: biases. */
        ZEROS("zeros", 0.0);

        private final String id;
        private final double defaultScale;

        Kind(String id, double defaultScale) {
            this.id = id;
            this.defaultScale = defaultScale;
        }

        public String id() {
            return id;
        }
    }

    public Initializer {
        if (!Double.isFinite(scale) || (scale < 0 && kind != Kind.CONSTANT)) {
            throw new IllegalArgumentException("initializer " + kind.id + ": scale must be finite and >= 0, got "
                    + scale);
        }
    }

    public static Initializer of(Kind kind) {
        return new Initializer(kind, kind.defaultScale);
    }

    public static Initializer glorotUniform() {
        return of(Kind.GLOROT_UNIFORM);
    }

    public static Initializer constant(double value) {
        return new Initializer(Kind.CONSTANT, value);
    }

    public static Initializer zeros() {
        return of(Kind.ZEROS);
    }

    /**
     * Parses an id such as {@code "he_normal"}, optionally with a scale, {@code "random_normal:1.5"};
     * the error names the bad id and the valid ones.
     */
    public static Initializer parse(String spec) {
        String[] parts = spec.trim().toLowerCase(Locale.ROOT).split(":", 2);
        for (Kind k : Kind.values()) {
            if (k.id.equals(parts[0])) {
                if (parts.length == 1) {
                    return of(k);
                }
                try {
                    return new Initializer(k, Double.parseDouble(parts[1]));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("initializer '" + spec + "': scale '" + parts[1]
                            + "' is not a number");
                }
            }
        }
        throw new IllegalArgumentException("unknown initializer '" + spec + "'; valid: " + validIds()
                + " (optionally with :scale, e.g. random_normal:1.0)");
    }

    public static String validIds() {
        return Arrays.stream(Kind.values()).map(Kind::id).collect(Collectors.joining(", "));
    }

    /** Writes {@code count} initial values into {@code out[offset..]}. */
    public void fill(float[] out, int offset, int count, int fanIn, int fanOut, RandomGenerator rng) {
        for (int i = 0; i < count; i++) {
            out[offset + i] = (float) sample(fanIn, fanOut, rng);
        }
    }

    private double sample(int fanIn, int fanOut, RandomGenerator rng) {
        return switch (kind) {
            case GLOROT_UNIFORM -> uniform(rng, scale * Math.sqrt(6.0 / (fanIn + fanOut)));
            case GLOROT_NORMAL -> truncatedNormal(rng, scale * Math.sqrt(2.0 / (fanIn + fanOut)));
            case HE_UNIFORM -> uniform(rng, scale * Math.sqrt(6.0 / fanIn));
            case HE_NORMAL -> truncatedNormal(rng, scale * Math.sqrt(2.0 / fanIn));
            case LECUN_NORMAL -> truncatedNormal(rng, scale * Math.sqrt(1.0 / fanIn));
            case RANDOM_NORMAL -> scale * rng.nextGaussian();
            case RANDOM_UNIFORM -> uniform(rng, scale);
            case CONSTANT -> scale;
            case ZEROS -> 0.0;
        };
    }

    private static double uniform(RandomGenerator rng, double limit) {
        return limit == 0 ? 0 : rng.nextDouble(-limit, limit);
    }

    /** Normal draws redrawn until within 2 stddev, rescaled so the result has the asked stddev. */
    private static double truncatedNormal(RandomGenerator rng, double stddev) {
        double x;
        do {
            x = rng.nextGaussian();
        } while (Math.abs(x) > 2);
        return x * stddev / TRUNCATED_NORMAL_STDDEV;
    }

    @Override
    public String toString() {
        return kind == Kind.ZEROS || scale == kind.defaultScale ? kind.id : kind.id + ":" + scale;
    }
}
