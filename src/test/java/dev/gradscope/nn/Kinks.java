package dev.gradscope.nn;

/**
 * Keeps finite differences away from the breakpoints of the piecewise activations (ReLU's 0, hardtanh's
 * +-1, relu6's 0 and 6, hard sigmoid's +-3): a central difference that straddles a kink measures the
 * average of two slopes, which is not a bug in the derivative.
 */
final class Kinks {
    /** Every breakpoint of every piecewise activation in the table. */
    static final double[] POINTS = {-3, -1, 0, 1, 3, 6};

    /** Closest distance allowed; several times the finite-difference step times |x| and |W|. */
    static final double MARGIN = 0.05;

    private Kinks() {
    }

    static boolean near(double z) {
        for (double k : POINTS) {
            if (Math.abs(z - k) < MARGIN) {
                return true;
            }
        }
        return false;
    }

    /** Whether any of {@code values} is near a kink. */
    static boolean anyNear(double[] values) {
        for (double z : values) {
            if (near(z)) {
                return true;
            }
        }
        return false;
    }

    /** Input values of random sign and size in [0.1, 2], none near a kink. */
    static LayerHarness.InputSampler awayFromKinks() {
        return r -> {
            double v;
            do {
                v = (r.nextBoolean() ? 1 : -1) * r.nextDouble(0.1, 2.0);
            } while (near(v));
            return (float) v;
        };
    }
}
