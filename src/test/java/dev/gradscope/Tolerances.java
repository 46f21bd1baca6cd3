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

    /**
     * Error allowed between a per-step learning-rate schedule (StepSchedule, its cosine a fixed Taylor series so
     * that host and GPU agree bit for bit) and Keras's CosineDecay formula computed in the test with Math.cos,
     * relative to the schedule's peak rate (the cosine's value tends to 0 at its end, so a relative error there
     * says nothing): the series' rounding error is below 1e-15 and the formula's other operations a few ulps
     * (2.2e-16 each). A wrong formula (an off-by-one step, the warmup's end) is off by 1e-3 of the peak or more.
     */
    public static final double SCHEDULE_RATE_OF_PEAK = 1e-14;

    /**
     * Relative error allowed between a run's logged loss (each row's loss rounded to a float, summed into a float
     * total once per batch) and the same loss computed in double from the model's logits: a few float roundings
     * of 6e-8 each, about 1e-7 in all for a few batches. A loss of the wrong targets (one-hot instead of smoothed
     * ones) is off by about half its size.
     */
    public static final double CPU_LOGGED_LOSS_REL = 1e-5;

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

    // ---- ONNX export: ONNX Runtime against the model itself (OnnxExportTest) --------------------------

    /**
     * Logits of an exported model run by ONNX Runtime against the same model's {@code predictLogits} on the CPU,
     * relative to the row's largest |logit|: |onnx - gradscope| <= ONNX_LOGITS_ABS + ONNX_LOGITS_REL * max|logit|.
     * The two sum each 784-term dot product in different orders (ONNX Runtime's blocked, FMA GEMM), about
     * eps sqrt(k) = 2e-6 of the magnitudes summed, and evaluate activations in float where GradScope's CPU
     * evaluates them in double (composites such as gelu and bent_identity round a few times more); the hidden
     * layers carry these on. Measured worst over every kind, maxout, batch normalization and learned parameters,
     * on inputs up to 40 times a unit scale: 5e-6 (selu); this is four times that. A different definition is far
     * outside it: gelu's tanh approximation or Keras 2's hard sigmoid (slope 0.2) fail by 10 to 100 times.
     */
    public static final double ONNX_LOGITS_REL = 2e-5;

    /** Absolute floor of the logits bound, for rows whose logits are all near 0: a few float ulps of 1. */
    public static final double ONNX_LOGITS_ABS = 2e-6;

    /**
     * Probabilities (in [0, 1]) of the exported model against {@code predict}: the logit errors above pass into
     * the softmax scaled by at most 1/2 (|dp_i| <= p_i (|dz_i| + sum_j p_j |dz_j|)), and ONNX Runtime's softmax
     * computes in float where GradScope's CPU computes in double. Measured worst 6e-6; a third of this.
     */
    public static final double ONNX_PROBABILITY_ABS = 2e-5;

    // ---- GPU against the CPU reference (CudaBackendTest) --------------------------------------------
    //
    // Both backends see the same float inputs. Each bound is |gpu - cpu| <= atol + rtol * |cpu| unless
    // it says otherwise; "the magnitudes entering the formula" means the same formula evaluated on
    // absolute values, the classic forward error bound, so cancellation cannot make a bound too tight.

    /**
     * Ops that move or compare floats without arithmetic (copy, fill, gather's single multiply of exact
     * operands, maxout's max and winner): IEEE gives the same bits on both sides.
     */
    public static final double GPU_EXACT = 0;

    /**
     * Relative error of an element-wise activation (forward, or dy times the derivative) on the GPU: the
     * kernels evaluate in float with CUDA's libm (at most 2-4 ulp per function) and a few roundings, so
     * about 1e-6 relative; ten times that leaves room for composite forms (mish, gelu). A wrong formula,
     * or a different convention at a kink (the inputs include every kink exactly), is off by far more.
     */
    public static final double GPU_ACTIVATION_REL = 1e-5;

    /**
     * Absolute floor for activations, where the value is near 0 or where float rounds a saturated
     * quantity (sigmoid'(20) = 2e-9 in double, 0 in float): a few float ulps of values of order 1.
     */
    public static final double GPU_ACTIVATION_ABS = 1e-6;

    /**
     * Parameter gradients: |gpu - cpu| <= GPU_ACTIVATION_REL * sum_i |dy_i * df/dp(z_i)|. Both sides sum
     * in double; the error comes from each term's float evaluation on the GPU (bounded as an activation)
     * and adds up at most linearly over the terms.
     */
    public static final double GPU_PARAMETER_GRADIENT_REL = GPU_ACTIVATION_REL;

    /**
     * Sums whose terms are the same floats on both sides (column sums, segment sums of squares): both
     * accumulate in double, in different orders (1e-16; the GPU's column sums add 32 row groups and then a
     * fixed tree, the CPU rows in order), then round once to float (6e-8). Relative to the sum of the
     * terms' magnitudes.
     */
    public static final double GPU_SUM_REL = 1e-6;

    /**
     * Softmax probabilities (in [0, 1]): the GPU, like the CPU, exponentiates and sums in double, then
     * rounds to float; a few float ulps of 1.
     */
    public static final double GPU_SOFTMAX_ABS = 1e-7;

    /** Relative part of the softmax bound, for small probabilities. */
    public static final double GPU_SOFTMAX_REL = 1e-5;

    /**
     * Fused loss gradients, unscaled: (p * sum(t) - t) or the MSE Jacobian product, values in [-2, 2],
     * computed in double on both sides and rounded to float; the bound is this times |gradientScale|.
     */
    public static final double GPU_LOSS_GRADIENT_ABS = 1e-6;

    /** Relative part of the loss-gradient bound. */
    public static final double GPU_LOSS_GRADIENT_REL = 1e-5;

    /** The summed loss of a batch, relative to its size (all rows' losses are >= 0). */
    public static final double GPU_LOSS_TOTAL_REL = 1e-5;

    /**
     * The summed loss, absolute, per row and per unit of the largest |logit|: a row's loss is
     * log-sum-exp(z) - z_target, which cancels when the row is confidently right, leaving a few ulps of
     * |z| (ulp(20) = 1.9e-6) when either side rounds through float.
     */
    public static final double GPU_LOSS_ROW_ABS = 2e-7;

    /**
     * Adam and SGD updates, relative to the magnitudes entering each formula: a handful of float
     * operations (3-4 roundings, 2.4e-7), and the GPU may fuse a multiply and an add (FMA) where Java
     * rounds twice. A wrong rule (a missing bias correction, momentum sign) is off by orders more.
     */
    public static final double GPU_OPTIMIZER_REL = 1e-6;

    /**
     * GEMM, whole matrix: ||gpu - cpu||_F <= GPU_GEMM_NORM_REL * sqrt(k) * ||cpu||_F. Float dot products
     * of length k accumulate rounding errors like a random walk, about eps sqrt(k) relative to the
     * result (eps = 6e-8), on both sides; this allows 150 times that. A transposition or leading
     * dimension mistake gives errors of order 1; TF32 math (10-bit mantissas) gives 1e-3.
     */
    public static final double GPU_GEMM_NORM_REL = 1e-5;

    /**
     * GEMM, element by element: |gpu - cpu|_ij <= GPU_GEMM_ELEMENT_REL * sqrt(k) * (|alpha| (|op(a)|
     * |op(b)|)_ij + |beta c0_ij|), the dot-product error bound with the worst case's k replaced by the
     * typical sqrt(k) and a margin of 16 over eps. Catches one wrong element, which a norm can hide.
     */
    public static final double GPU_GEMM_ELEMENT_REL = 1e-6;

    /**
     * GEMM with TF32 math, element by element: |gpu - cpu|_ij <= GPU_TF32_GEMM_ELEMENT_REL * (|op(a)|
     * |op(b)|)_ij. TF32 rounds each input to a 10-bit mantissa (relative error at most 2^-11 = 4.9e-4), so
     * each product a_ip b_pj is off by at most 2 * 2^-11 = 9.8e-4 of its magnitude, before the FP32 sum
     * adds its own eps sqrt(k) (far smaller). Twice the worst case: rounding TF32 can never exceed it,
     * while FP32 math would sit about a thousand times below it (the test checks that TF32 was used).
     */
    public static final double GPU_TF32_GEMM_ELEMENT_REL = 2e-3;

    /**
     * A small MLP trained a few steps with Adam on both backends from the same seed: per-step losses
     * agree to this, relative. The gradients differ by float noise (1e-7 relative) and Adam's first
     * steps, m / (sqrt(v) + epsilon), amplify the noise of near-zero gradients by up to lr / epsilon.
     */
    public static final double GPU_MLP_LOSS_REL = 1e-4;

    /**
     * Parameters after those steps, absolute. With lr = 1e-3 and epsilon = 1e-7, a gradient that is
     * float noise (1e-9) on one side moves a weight by up to 1e-5 per step; a wrong kernel moves weights
     * by about lr = 1e-3 per step.
     */
    public static final double GPU_MLP_PARAMETER_ABS = 1e-4;

    /**
     * The accuracy of the same weights evaluated on both backends, absolute: the logits differ by float
     * noise, so only an image whose two best classes are within that noise of each other may change its
     * prediction; 1 image in 400 allows for a couple of such ties in a 1000-image test set, while weights
     * that were not loaded are off by tenths.
     */
    public static final double GPU_EVALUATION_ACCURACY_ABS = 0.0025;

    /**
     * Per-unit statistics, the counts: the GPU evaluates f' in float (with the error an activation's
     * backward is allowed, GPU_ACTIVATION_ABS + GPU_ACTIVATION_REL |f'|), the CPU in double. So a row may
     * count differently only where the CPU's |f'| is within that noise of the boundary: a non-zero |f'|
     * that float may round or underflow to 0 (gelu'(-15) is 0 in float, -8e-49 in double), or one within the
     * noise of the saturation threshold. Each such row allows a count to differ by 1; every other row
     * (the kinks' exact 0 and 1 included) must count the same on both sides.
     */
    public static final double GPU_UNIT_STATISTICS_DERIVATIVE_ABS = GPU_ACTIVATION_ABS;

    /** Relative part of the derivative noise of the unit-statistics counts (see the ABS part). */
    public static final double GPU_UNIT_STATISTICS_DERIVATIVE_REL = GPU_ACTIVATION_REL;

    /**
     * Per-unit statistics, the sums of y and y^2, relative to the magnitudes summed (the earlier value's
     * included): the GPU adds the floats in double (32 row groups per column, each in row order, then a
     * fixed tree: an order that changes a double sum by about 1e-16); the CPU adds float partial sums of 8
     * rows in double (CPU_UNIT_STATISTICS_SUM_REL, 5e-7); both round once and add to the float once.
     */
    public static final double GPU_UNIT_STATISTICS_SUM_REL = GPU_SUM_REL;

    /**
     * The CPU's unit-statistics sums against a host sum in double, relative to the magnitudes summed: it
     * adds rows in float partial sums of 8 (each addition within 2^-24, so 8 of them within 4.8e-7) and
     * squares y in float (6e-8), then adds the partial sums in double. A wrong term (a missing row, y
     * instead of y^2) is off by a whole term.
     */
    public static final double CPU_UNIT_STATISTICS_SUM_REL = 1e-6;

    /**
     * The CPU's weight and update norms of an optimizer step against a host sum in double, relative to
     * the sum: it adds each block in 256 float lanes of 16 terms (within 16 x 2^-24 = 9.5e-7), squares in
     * float (6e-8), and adds the lanes in double. A missed or doubled element is off by far more.
     */
    public static final double CPU_UPDATE_NORMS_REL = 2e-6;

    /**
     * A few optimizer steps on the CPU (float32, as Keras) against the documented rule in double, for parameters
     * near 1 moved by steps of about 1e-3: each step rounds p to float (half an ulp, 6e-8 below 1), and the
     * step's dozen float operations are off by about 1e-6 of 1e-3 (1e-9); three steps stay below 2e-7. A wrong
     * rule (a missing bias correction, Keras 2's Nadam schedule) moves p by 1e-6 or far more. Where epsilon goes
     * matters only where the squared gradient is near epsilon, so those rules have tests of their own with
     * gradients that small (KerasOptimizersTest: Adagrad's inside the square root, Adamax's outside the maximum).
     */
    public static final double F32_OPTIMIZER_STEPS_ABS = 2e-7;

    /**
     * Clipping by global norm, relative to each element: the factor maxNorm / sqrt(sum) is computed in
     * double on both sides, but the sum in different orders (a fixed tree against a sequential loop,
     * 1e-16 relative); rounding the factor to float can then flip its last bit (1.2e-7 relative), and each
     * side rounds one float product (6e-8). A wrong factor (a missing sqrt, clipping below the limit) is
     * off by far more. Where no clipping happens both sides leave t alone: GPU_EXACT.
     */
    public static final double GPU_CLIP_NORM_REL = 1e-6;

    // ---- CPU GEMM ------------------------------------------------------------------------------

    /**
     * Allowed error relative to {@code |alpha| * sum_p |a_ip * b_pj| + |beta * c_ij|}, times
     * {@code sqrt(k) + 1}. A float sum of k products is off by at most about {@code k * 2^-24} of
     * that magnitude and typically by {@code sqrt(k) * 2^-24}; 1e-5 leaves room for the worst case
     * up to k of about 25000, far beyond the shapes here, while a wrong or missing term fails.
     */
    public static final double GEMM_F32_RELATIVE = 1e-5;

    // ---- dropout's masks -----------------------------------------------------------------------

    /**
     * Standard deviations a dropout layer's count of kept elements may lie from its mean, n (1 - rate), for
     * Binomial(n, 1 - rate): a two-sided normal tail of 5.7e-7, so a fair generator would fail one such check in
     * about two million (the draws being a fixed hash, a passing test passes every time). A wrong threshold (an
     * off-by-one in the 24-bit comparison is 6e-8 of n, far inside) is not what this catches; a biased hash, a
     * mask that ignores the step, or one reused across units moves the count by many deviations.
     */
    public static final double DROPOUT_BINOMIAL_SIGMAS = 5;

    /**
     * Absolute error of a float32 batch-normalization output {@code xhat = (x - mean) * invStd} (and of {@code
     * gamma * xhat + beta} for gamma, beta of order 1) against its double closed form, for inputs below 8 in
     * magnitude and column standard deviations of at least 0.5: the float mean is off by half an ulp of 8
     * (5e-7), the subtraction and the two products round once each (6e-8 of values up to 4), and invStd (at most
     * 2) carries that into xhat: about 1.5e-6, doubled for margin. A forgotten epsilon (1e-3 in var + epsilon)
     * or an unbiased variance (a factor batch / (batch - 1)) is off by 1e-4 and more.
     */
    public static final double BATCH_NORM_F32_ABS = 3e-6;

    /**
     * Relative error allowed between the GPU's batch-normalization outputs and the CPU's: both sum in double, in
     * different orders (the GPU by slices of rows and column tiles of 32 row groups; its variance from sums about the
     * column's first row, one pass, the CPU's about the mean, two: either is within rows * 1e-16 of the exact one,
     * relative), and round the statistics once to float, so the statistics may differ by one float ulp (6e-8) and
     * an output, whose arithmetic is otherwise the same rounded operations, by a few ulps of the magnitudes
     * entering it; 1e-5 of those magnitudes, as
     * {@link #GPU_ACTIVATION_REL}.
     */
    public static final double GPU_BATCH_NORM_REL = 1e-5;

    /**
     * How far from 1 the ten softmax probabilities of one row may sum: each is its double value rounded once to
     * float (at most half an ulp of 1, 6e-8), so the ten floats, summed in double, are within 10 * 6e-8 of 1.
     * A softmax that forgot to normalise, or a row of logits, is off by far more.
     */
    public static final double SOFTMAX_ROW_SUM_ABS = 1e-6;

    /**
     * The class probabilities that the same weights give the same image on both backends, absolute: the logits
     * differ by the GEMMs' float noise ({@link #GPU_GEMM_ELEMENT_REL} of the sum of the products' magnitudes, a
     * few units in a small MLP on [0, 1] pixels, so 1e-5 at most), and a softmax probability moves by at most
     * twice the largest change of a logit. Weights that were not loaded, or another image, are off by tenths.
     */
    public static final double GPU_PREDICT_PROBABILITY_ABS = 1e-4;

    // ---- initializers ------------------------------------------------------------------------------

    /**
     * Largest |G - gain²I| allowed for the Gram matrix G (QᵀQ of a tall orthogonal kernel, QQᵀ of a wide one),
     * summed in double from the float kernel, relative to gain²: the QR in double is orthonormal to about 1e-15 m,
     * and rounding each entry to float moves it by at most 6e-8 of itself, so an entry of G, a dot product of two
     * unit vectors, moves by at most 2 * 6e-8 (Cauchy-Schwarz). 1e-6 leaves room; a Q that is not orthonormal (a
     * column left unreflected, a wrong sign in a reflection) is off by tenths.
     */
    public static final double ORTHOGONAL_GRAM_F32_ABS = 1e-6;

    /**
     * Relative error allowed between a linear MLP's layer-1 and output-layer bias gradient norms, after one float
     * backward pass through orthogonal kernels, and gain^depth: each dL/dz is a float GEMM product (rounding of
     * about 6e-8 per term, times the few dozen terms of a row) and the kernels are orthonormal to float precision
     * ({@link #ORTHOGONAL_GRAM_F32_ABS}), so a few 1e-6 over four layers. Glorot kernels miss by 5% and more.
     */
    public static final double ORTHOGONAL_BACKPROP_NORM_REL = 2e-5;

    /**
     * How many standard errors a sample statistic (the mean or the standard deviation of a million initial values,
     * a proportion over hundreds of seeds) may lie from the distribution's value. The draws are seeded, so a test
     * cannot fail by chance from run to run; 6 standard errors would be exceeded by chance once in 5e8 seeds,
     * while a wrong limit or stddev (sqrt(3/fanIn) written as sqrt(6/fanIn), a truncated normal rescaled) is off
     * by hundreds of standard errors at this sample size.
     */
    public static final double SAMPLE_STATISTIC_SIGMAS = 6;
}
