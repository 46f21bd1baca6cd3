package dev.gradscope;

/**
 * Every numeric tolerance of the tests, in one place, each with the reason for its size. A test names
 * the constant it uses instead of writing a bare number, so a tolerance is judged once, here (the habit
 * of ejml's {@code UtilEjml.TEST_F64}). Add new constants here, with their reason.
 */
public final class Tolerances {

    private Tolerances() {
    }

    // ---- closed forms -----------------------------------------------------------------------------

    /**
     * Relative error allowed between a double implementation and an exact value (computed at high
     * precision and rounded to double): |actual - expected| &lt;= CLOSED_FORM_F64 * |expected|.
     * Equivalent double formulas differ by a few ulps (1 ulp = 2.2e-16 relative); the CPU erfc, which
     * loses up to two digits just below 2 (about 1e-13), sets the floor. A real mistake in a formula
     * is far larger.
     */
    public static final double CLOSED_FORM_F64 = 1e-12;

    // ---- gradient checks (deeplearning4j's GradientCheckUtil rule, in double) ----------------------

    /**
     * Step h of the central difference n = (f(x + h) - f(x - h)) / 2h. Its truncation error is about
     * h^2 |f'''| / 6 (1e-13) and its rounding error about ulp(f) / h (2e-10 |f|): both well below the
     * relative bound that follows.
     */
    public static final double GRADIENT_CHECK_EPSILON = 1e-6;

    /**
     * A gradient check passes when relError = |a - n| / (|a| + |n|) is at most this (a: analytic, n:
     * numeric). deeplearning4j allows 1e-3 for whole networks; a single closed-form function in double
     * does far better, so a wrong derivative (off by a term or a factor) cannot hide under it.
     */
    public static final double GRADIENT_CHECK_MAX_RELATIVE_ERROR = 1e-5;

    /**
     * A gradient check also passes when |a - n| is at most this, whatever relError is: where the
     * gradient is almost 0 (a saturated unit) relError compares two rounding errors and means nothing.
     */
    public static final double GRADIENT_CHECK_MIN_ABSOLUTE_ERROR = 1e-8;

    /**
     * Gradient checks skip points closer than this to a kink: a central difference that straddles the
     * kink measures the average of the two one-sided slopes, not the derivative. Ten steps h keep the
     * stencil on one side with room to spare.
     */
    public static final double GRADIENT_CHECK_KINK_CLEARANCE = 10 * GRADIENT_CHECK_EPSILON;

    // ---- float32 engine: layers, losses and whole models -------------------------------------------

    /**
     * Absolute error allowed between a float32 forward result and its double closed form for values of
     * order 1: a few float ulps (6e-8 each) accumulated over a short dot product and one function call.
     */
    public static final double F32_FORWARD_ABS = 1e-6;

    /**
     * Step h of the central differences that check float32 layers and models. The engine computes in
     * float32, so the numeric derivative carries a rounding error of about 6e-8 |L| / h: with the tests'
     * small losses (|L| ~ 1) and h = 1e-2 that is ~1e-5, while the truncation error h^2 |f'''| / 6 of the
     * smooth functions used stays near 1e-5 too. A smaller h would drown the difference in rounding.
     */
    public static final double F32_GRADCHECK_STEP = 1e-2;

    /**
     * relError bound for float32 gradient checks: deeplearning4j's 1e-3 for whole networks. A wrong
     * term or factor in a backward pass gives relErrors of 1e-1 and more.
     */
    public static final double F32_GRADCHECK_REL = 1e-3;

    /**
     * |a - n| below which a float32 gradient check passes whatever relError is: the rounding noise of
     * the numeric derivative (see F32_GRADCHECK_STEP) for gradients that are nearly 0.
     */
    public static final double F32_GRADCHECK_ABS = 5e-5;
}
