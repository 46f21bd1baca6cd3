package dev.gradscope.nn;

import dev.gradscope.tensor.Shapes;
import java.util.Arrays;
import java.util.Locale;
import java.util.random.RandomGenerator;
import java.util.stream.Collectors;

/**
 * How a weight tensor gets its first values, with Keras's definitions. Fan-in and fan-out are the
 * number of inputs and outputs of the unit the weights feed.
 *
 * <p>{@code scale} multiplies the standard deviation (or the uniform limit) of the variance-scaling
 * schemes, 1 by default; for {@link Kind#RANDOM_NORMAL} and {@link Kind#TRUNCATED_NORMAL} it is the standard
 * deviation and for {@link Kind#RANDOM_UNIFORM} the limit, so that an exploding-gradient run is one flag away;
 * {@link Kind#ORTHOGONAL} and {@link Kind#IDENTITY} multiply their matrix by it (Keras's {@code gain}).
 *
 * <p>Most kinds draw each value on its own; {@link Kind#ORTHOGONAL} and {@link Kind#IDENTITY} are properties of
 * the whole matrix, so {@link #fill} takes the tensor's shape. As Keras does, they see a tensor of shape
 * {@code (d1, ..., dk, n)} as the matrix {@code (d1 * ... * dk) x n}; GradScope's kernels are {@code [fanIn,
 * fanOut]}, row-major, Keras's layout, so a kernel is that matrix as it is.
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
        /** Uniform in [-l, l], l = sqrt(3 / fanIn): the same variance as {@link #LECUN_NORMAL}. */
        LECUN_UNIFORM("lecun_uniform", 1.0),
        /** Normal with mean 0 and stddev {@code scale} (Keras default 0.05). */
        RANDOM_NORMAL("random_normal", 0.05),
        /** Uniform in [-scale, scale] (Keras default 0.05). */
        RANDOM_UNIFORM("random_uniform", 0.05),
        /** Normal with mean 0 and stddev {@code scale} (Keras default 0.05), redrawn beyond 2 stddev. */
        TRUNCATED_NORMAL("truncated_normal", 0.05),
        /**
         * A random orthogonal matrix times {@code scale}, Keras's {@code Orthogonal(gain)} (Saxe et al., 2014,
         * "Exact solutions to the nonlinear dynamics of learning in deep linear neural networks"): every
         * singular value is the gain. Backpropagated through a gain-1 kernel with at least as many inputs as
         * outputs (orthonormal columns), a gradient keeps its norm, so in a deep linear network of such kernels it
         * reaches the first layer undiminished; through one with more outputs than inputs (orthonormal rows) it
         * keeps only its part in the row space and shrinks, and tanh's or relu's slopes below 1 shrink it too.
         * Drawn as Keras does: a normal matrix of shape (max, min) of the kernel's (rows, cols), the Q of its QR
         * decomposition with each column times the sign of R's diagonal entry (which makes Q uniform over the
         * orthogonal matrices), transposed when the kernel is wide. A tall kernel has orthonormal columns, a wide
         * one orthonormal rows.
         */
        ORTHOGONAL("orthogonal", 1.0),
        /**
         * The identity matrix of the kernel's shape times {@code scale}, Keras 3's {@code Identity(gain)}, {@code
         * gain * eye(rows, cols)}: ones on the diagonal, so unit i starts as a copy of input i for i below {@code
         * min(rows, cols)}; a kernel with more outputs than inputs starts its extra units at 0, one with more
         * inputs than outputs leaves its extra inputs out. Only for 2-D kernels, as in Keras.
         */
        IDENTITY("identity", 1.0),
        /** Every value equal to {@code scale}: a PReLU slope's or a Swish beta's starting value. */
        CONSTANT("constant", 0.0),
        /** All ones. */
        ONES("ones", 1.0),
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

        /** Whether {@code kind:VALUE} means something: ones and zeros are what their names say. */
        boolean takesScale() {
            return this != ONES && this != ZEROS;
        }
    }

    public Initializer {
        if (!Double.isFinite(scale) || (scale < 0 && kind != Kind.CONSTANT)) {
            throw new IllegalArgumentException("initializer " + kind.id + ": scale must be finite and >= 0, got "
                    + scale);
        }
        if (!kind.takesScale() && scale != kind.defaultScale) {
            throw new IllegalArgumentException("initializer " + kind.id + " takes no scale, got " + scale);
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
                if (!k.takesScale()) {
                    throw new IllegalArgumentException("initializer '" + spec + "': " + k.id + " takes no scale"
                            + " (constant:VALUE fills with another value)");
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

    /**
     * Writes the initial values of a tensor of {@code shape} into {@code out[offset..]}, row-major. An element-wise
     * kind draws one value after another; {@link Kind#ORTHOGONAL} and {@link Kind#IDENTITY} write the matrix
     * {@code (d1 * ... * dk) x n} of a shape {@code (d1, ..., dk, n)}.
     *
     * @throws IllegalArgumentException when the kind does not fit the shape (orthogonal on a vector, identity on a
     *                                  tensor that is not a matrix); the message names the shape, and the caller
     *                                  adds which tensor it is
     */
    public void fill(float[] out, int offset, int[] shape, int fanIn, int fanOut, RandomGenerator rng) {
        requireFits(shape);
        switch (kind) {
            case ORTHOGONAL -> Orthogonal.fill(out, offset, rows(shape), shape[shape.length - 1], scale, rng);
            case IDENTITY -> {
                int rows = shape[0];
                int cols = shape[1];
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < cols; j++) {
                        out[offset + i * cols + j] = (float) (i == j ? scale : 0.0);
                    }
                }
            }
            default -> {
                long count = Shapes.size(shape);
                for (int i = 0; i < count; i++) {
                    out[offset + i] = (float) sample(fanIn, fanOut, rng);
                }
            }
        }
    }

    /**
     * Refuses a shape the kind cannot fill: orthogonal needs at least two dimensions, identity exactly two (both as in
     * Keras). The message names the kind and the shape.
     */
    public void requireFits(int[] shape) {
        if (kind == Kind.ORTHOGONAL && shape.length < 2) {
            throw new IllegalArgumentException(kind.id + " needs a tensor of at least 2 dimensions (a kernel), got "
                    + Arrays.toString(shape));
        }
        if (kind == Kind.IDENTITY && shape.length != 2) {
            throw new IllegalArgumentException(kind.id + " needs a tensor of 2 dimensions (a kernel), got "
                    + Arrays.toString(shape));
        }
    }

    /** The rows of the matrix a whole-matrix kind sees: the product of every dimension but the last. */
    private static int rows(int[] shape) {
        return (int) Shapes.size(Arrays.copyOf(shape, shape.length - 1));
    }

    private double sample(int fanIn, int fanOut, RandomGenerator rng) {
        return switch (kind) {
            case GLOROT_UNIFORM -> uniform(rng, scale * Math.sqrt(6.0 / (fanIn + fanOut)));
            case GLOROT_NORMAL -> truncatedNormal(rng, scale * Math.sqrt(2.0 / (fanIn + fanOut)));
            case HE_UNIFORM -> uniform(rng, scale * Math.sqrt(6.0 / fanIn));
            case HE_NORMAL -> truncatedNormal(rng, scale * Math.sqrt(2.0 / fanIn));
            case LECUN_NORMAL -> truncatedNormal(rng, scale * Math.sqrt(1.0 / fanIn));
            case LECUN_UNIFORM -> uniform(rng, scale * Math.sqrt(3.0 / fanIn));
            case RANDOM_NORMAL -> scale * rng.nextGaussian();
            // Keras's TruncatedNormal keeps the draws as they are: their stddev is 0.88 * stddev.
            case TRUNCATED_NORMAL -> scale * truncatedUnitNormal(rng);
            case RANDOM_UNIFORM -> uniform(rng, scale);
            case CONSTANT -> scale;
            case ONES -> 1.0;
            case ZEROS -> 0.0;
            case ORTHOGONAL, IDENTITY -> throw new IllegalStateException(kind.id + " fills whole matrices");
        };
    }

    private static double uniform(RandomGenerator rng, double limit) {
        return limit == 0 ? 0 : rng.nextDouble(-limit, limit);
    }

    /** Normal draws redrawn until within 2 stddev, rescaled so the result has the asked stddev. */
    private static double truncatedNormal(RandomGenerator rng, double stddev) {
        return truncatedUnitNormal(rng) * stddev / TRUNCATED_NORMAL_STDDEV;
    }

    /** A unit normal draw, redrawn until within [-2, 2]. */
    private static double truncatedUnitNormal(RandomGenerator rng) {
        double x;
        do {
            x = rng.nextGaussian();
        } while (Math.abs(x) > 2);
        return x;
    }

    @Override
    public String toString() {
        return kind == Kind.ZEROS || scale == kind.defaultScale ? kind.id : kind.id + ":" + scale;
    }
}
