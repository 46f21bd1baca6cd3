package dev.gradscope.backend.cpu;

import dev.gradscope.tensor.ActivationKind;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;

/**
 * The math of every element-wise activation on the CPU, in double: the reference that the CUDA kernels
 * are tested against. Each kind is one pair of static methods, the forward directly followed by its
 * derivative, named as the {@code __device__} functions in {@code src/main/cuda} ({@code elu} /
 * {@code eluDerivative}); kinds with a parameter add the derivative with respect to it
 * ({@code eluAlphaDerivative}). Formulas, behaviour and references are documented once, on
 * {@link ActivationKind}; the comments here explain only how each is computed.
 *
 * <p>Every function takes the pre-activation {@code x} (never the output), so a backward pass needs
 * only the saved input. Derivatives at kinks follow PyTorch where it defines one:
 * <ul>
 *   <li>step: {@code f'(x) = 0} everywhere, 0 included;</li>
 *   <li>ReLU: {@code f'(0) = 0}; hard tanh: {@code f'(-1) = f'(1) = 0}; ReLU6: {@code f'(0) = f'(6) = 0};
 *       hard sigmoid: {@code f'(-3) = f'(3) = 0} (a unit exactly at the edge of its linear range is
 *       counted as saturated);</li>
 *   <li>leaky ReLU and PReLU: {@code f'(0) = alpha}; ELU: {@code f'(0) = alpha}; SELU:
 *       {@code f'(0) = scale alpha} (the negative piece's value);</li>
 *   <li>hard swish: {@code f'(-3) = 0}, {@code f'(3) = 1} (the outer pieces);</li>
 *   <li>CELU is continuously differentiable: {@code f'(0) = 1} from both sides.</li>
 * </ul>
 *
 * <p>Numerics: sigmoid, softplus, log-sigmoid, swish and mish are written so that no intermediate
 * overflows (finite results for any finite input, e.g. sigmoid(-1000) = 0, not NaN) and so that both
 * tails keep their relative precision. A NaN input gives a NaN output, so that a diverging run shows
 * NaN instead of a plausible value.
 *
 * <p>Use: {@link #of} gives a kind's {@link Functions} from the one table of kinds; a backend loop
 * should look them up once, outside the loop. {@link #forward}, {@link #derivative} and
 * {@link #parameterDerivative} are the same lookups for a single value.
 */
public final class CpuActivations {

    /**
     * One kind's functions. The second argument of each is the kind's parameter (alpha or beta); kinds
     * without one ignore it. {@code parameterDerivative} is null for kinds without a parameter.
     */
    public record Functions(DoubleBinaryOperator forward, DoubleBinaryOperator derivative,
                            DoubleBinaryOperator parameterDerivative) {
        public Functions {
            Objects.requireNonNull(forward, "forward");
            Objects.requireNonNull(derivative, "derivative");
        }
    }

    /** SELU's fixed constants (Klambauer et al. 2017), to the digits the paper gives. */
    static final double SELU_ALPHA = 1.6732632423543772848170429916717;
    static final double SELU_SCALE = 1.0507009873554804934193349852946;

    private static final double INV_SQRT_2 = 0.7071067811865476;          // 1/sqrt(2), correctly rounded
    private static final double INV_SQRT_2PI = 0.3989422804014327;        // 1/sqrt(2 pi)
    private static final double TWO_OVER_SQRT_PI = 1.1283791670955126;    // 2/sqrt(pi)
    private static final double INV_SQRT_PI = 0.5641895835477563;         // 1/sqrt(pi)
    private static final double ONE_SIXTH = 1.0 / 6.0;

    /** The single table: every element-wise kind and its functions. Softmax is absent by design. */
    private static final Map<ActivationKind, Functions> FUNCTIONS_BY_KIND = buildTable();

    private CpuActivations() {
    }

    // ---- lookup -----------------------------------------------------------------------------------

    /**
     * The functions of an element-wise kind.
     *
     * @throws IllegalArgumentException for softmax, which is not element-wise
     */
    public static Functions of(ActivationKind kind) {
        Objects.requireNonNull(kind, "kind");
        Functions functions = FUNCTIONS_BY_KIND.get(kind);
        if (functions == null) {
            // buildTable() guarantees that only kinds that are not element-wise are missing.
            throw new IllegalArgumentException(kind.id() + " is not element-wise; it is fused into the loss");
        }
        return functions;
    }

    /** {@code f(x; parameter)}; kinds without a parameter ignore {@code parameter}. */
    public static double forward(ActivationKind kind, double x, double parameter) {
        return of(kind).forward().applyAsDouble(x, parameter);
    }

    /** {@code df/dx (x; parameter)}; kinds without a parameter ignore {@code parameter}. */
    public static double derivative(ActivationKind kind, double x, double parameter) {
        return of(kind).derivative().applyAsDouble(x, parameter);
    }

    /**
     * {@code df/dparameter (x; parameter)}.
     *
     * @throws IllegalArgumentException for a kind without a parameter, and for softmax
     */
    public static double parameterDerivative(ActivationKind kind, double x, double parameter) {
        DoubleBinaryOperator parameterDerivative = of(kind).parameterDerivative();
        if (parameterDerivative == null) {
            throw new IllegalArgumentException(kind.id() + " has no parameter, so no parameter derivative");
        }
        return parameterDerivative.applyAsDouble(x, parameter);
    }

    // ---- the chapter's kinds ----------------------------------------------------------------------

    public static double step(double x) {
        // The explicit NaN case: "x > 0 ? 1 : 0" alone would turn NaN into a clean 0.
        return Double.isNaN(x) ? x : (x > 0 ? 1.0 : 0.0);
    }

    /** Zero everywhere, at the jump too: a step unit passes no gradient. */
    public static double stepDerivative(double x) {
        return 0.0;
    }

    public static double linear(double x) {
        return x;
    }

    public static double linearDerivative(double x) {
        return 1.0;
    }

    public static double sigmoid(double x) {
        // Exponentiate only non-positive numbers: e^-x for x = -1000 would overflow (and 1/(1+inf) = 0 is
        // right only by luck), and e^x / (1 + e^x) keeps the relative precision of tiny results.
        if (x >= 0) {
            return 1.0 / (1.0 + Math.exp(-x));
        }
        double e = Math.exp(x);
        return e / (1.0 + e);
    }

    /** sigmoid(x) sigmoid(-x), which equals f(1 - f) but stays accurate where f is close to 1. */
    public static double sigmoidDerivative(double x) {
        return sigmoid(x) * sigmoid(-x);
    }

    public static double tanh(double x) {
        return Math.tanh(x);
    }

    /**
     * sech^2(x) = 4 e^-2|x| / (1 + e^-2|x|)^2: the same value as 1 - tanh(x)^2, without the cancellation
     * that makes that form 0 (instead of 1.7e-17) at x = 20.
     */
    public static double tanhDerivative(double x) {
        double e = Math.exp(-2.0 * Math.abs(x));
        return 4.0 * e / ((1.0 + e) * (1.0 + e));
    }

    public static double hardTanh(double x) {
        return Math.max(-1.0, Math.min(1.0, x));
    }

    /** 1 on the open interval (-1, 1); 0 at -1 and 1 (PyTorch's convention). */
    public static double hardTanhDerivative(double x) {
        return (x > -1.0 && x < 1.0) ? 1.0 : 0.0;
    }

    public static double arctan(double x) {
        return Math.atan(x);
    }

    public static double arctanDerivative(double x) {
        return 1.0 / (1.0 + x * x);
    }

    public static double softsign(double x) {
        return x / (1.0 + Math.abs(x));
    }

    public static double softsignDerivative(double x) {
        double denominator = 1.0 + Math.abs(x);
        return 1.0 / (denominator * denominator);
    }

    /**
     * Computed as {@code x (x / (h + 1)) / 2 + x} with {@code h = hypot(x, 1)}: the same value, since
     * sqrt(x^2 + 1) - 1 = x^2 / (sqrt(x^2 + 1) + 1), but without the cancellation near 0 and without
     * overflowing x^2 for huge x.
     */
    public static double bentIdentity(double x) {
        double h = Math.hypot(x, 1.0);
        return x * (x / (h + 1.0)) / 2.0 + x;
    }

    public static double bentIdentityDerivative(double x) {
        return x / (2.0 * Math.hypot(x, 1.0)) + 1.0;
    }

    public static double relu(double x) {
        return Math.max(0.0, x); // Math.max propagates NaN
    }

    /**
     * 1 for x &gt; 0, else 0 (NaN too): 0 at the kink (PyTorch), so a unit at exactly 0 counts as inactive.
     * Computed from the bits, without a branch: whether a unit fired is a coin toss per element, and the
     * branch's mispredictions made the backward pass several times slower than its arithmetic.
     */
    public static double reluDerivative(double x) {
        long bits = Double.doubleToRawLongBits(x);
        // Sign bit of the AND set exactly when 0 < bits <= the bits of +infinity: x > 0, not NaN.
        long positive = (-bits & ~bits & (bits - POSITIVE_INFINITY_BITS - 1)) >> 63;
        return Double.longBitsToDouble(positive & ONE_BITS);
    }

    private static final long POSITIVE_INFINITY_BITS = 0x7FF0000000000000L;
    private static final long ONE_BITS = 0x3FF0000000000000L;

    public static double leakyRelu(double x, double alpha) {
        return x > 0 ? x : alpha * x;
    }

    /** 1 for x &gt; 0, else alpha: alpha at the kink (PyTorch). */
    public static double leakyReluDerivative(double x, double alpha) {
        return x > 0 ? 1.0 : alpha;
    }

    public static double leakyReluAlphaDerivative(double x, double alpha) {
        return x > 0 ? 0.0 : x;
    }

    public static double elu(double x, double alpha) {
        return x > 0 ? x : alpha * Math.expm1(x); // expm1 keeps precision for x near 0
    }

    /** 1 for x &gt; 0, else alpha e^x: alpha at the kink (PyTorch). */
    public static double eluDerivative(double x, double alpha) {
        return x > 0 ? 1.0 : alpha * Math.exp(x);
    }

    public static double eluAlphaDerivative(double x, double alpha) {
        return x > 0 ? 0.0 : Math.expm1(x);
    }

    /** PReLU is LeakyReLU with a learned alpha: the same math, kept once. */
    public static double prelu(double x, double alpha) {
        return leakyRelu(x, alpha);
    }

    public static double preluDerivative(double x, double alpha) {
        return leakyReluDerivative(x, alpha);
    }

    public static double preluAlphaDerivative(double x, double alpha) {
        return leakyReluAlphaDerivative(x, alpha);
    }

    public static double swish(double x, double beta) {
        return x * sigmoid(beta * x);
    }

    /**
     * s + beta x s (1 - s) with s = sigmoid(beta x); the product is taken as (beta x) times
     * sigmoid'(beta x) so that a huge |x| meets a zero sigmoid' (0, not infinity times 0).
     */
    public static double swishDerivative(double x, double beta) {
        double betaX = beta * x;
        return sigmoid(betaX) + betaX * sigmoidDerivative(betaX);
    }

    /** x^2 sigmoid'(beta x), multiplied as (x sigmoid') x so that huge |x| gives 0 rather than NaN. */
    public static double swishBetaDerivative(double x, double beta) {
        return x * sigmoidDerivative(beta * x) * x;
    }

    // ---- modern kinds -----------------------------------------------------------------------------

    public static double gelu(double x) {
        return x * standardNormalCdf(x);
    }

    public static double geluDerivative(double x) {
        return standardNormalCdf(x) + x * standardNormalPdf(x);
    }

    public static double selu(double x) {
        return SELU_SCALE * (x > 0 ? x : SELU_ALPHA * Math.expm1(x));
    }

    /** scale for x &gt; 0, else scale alpha e^x: scale alpha at the kink (PyTorch). */
    public static double seluDerivative(double x) {
        return x > 0 ? SELU_SCALE : SELU_SCALE * SELU_ALPHA * Math.exp(x);
    }

    public static double celu(double x, double alpha) {
        return x > 0 ? x : alpha * Math.expm1(x / alpha);
    }

    public static double celuDerivative(double x, double alpha) {
        return x > 0 ? 1.0 : Math.exp(x / alpha);
    }

    /** d/dalpha of alpha (e^t - 1) with t = x/alpha: (e^t - 1) - t e^t for x &lt;= 0. */
    public static double celuAlphaDerivative(double x, double alpha) {
        if (x > 0) {
            return 0.0;
        }
        double t = x / alpha;
        return Math.expm1(t) - t * Math.exp(t);
    }

    /** SiLU is swish with beta = 1: the same math, kept once. */
    public static double silu(double x) {
        return swish(x, 1.0);
    }

    public static double siluDerivative(double x) {
        return swishDerivative(x, 1.0);
    }

    /*
     * Mish without overflow: e^softplus(x) = 1 + e^x = 1 / q with q = sigmoid(-x), so
     * tanh(softplus(x)) = (1 - q^2) / (1 + q^2) = p (1 + q) / (1 + q^2) with p = sigmoid(x) = 1 - q, and
     * sech^2(softplus(x)) = 4 q^2 / (1 + q^2)^2. Both are rational in p and q, which lie in [0, 1]: no
     * e^x to overflow for large x, and no 1 - q^2 cancelling for very negative x.
     */

    public static double mish(double x) {
        double p = sigmoid(x);
        double q = sigmoid(-x);
        return x * (p * (1.0 + q) / (1.0 + q * q));
    }

    public static double mishDerivative(double x) {
        double p = sigmoid(x);
        double q = sigmoid(-x);
        double onePlusQSquared = 1.0 + q * q;
        double tanhSoftplus = p * (1.0 + q) / onePlusQSquared;
        double sechSquaredSoftplus = 4.0 * q * q / (onePlusQSquared * onePlusQSquared);
        // d softplus/dx = p; (x sech^2) p is 0 rather than NaN when |x| is huge and one factor is 0.
        return tanhSoftplus + x * sechSquaredSoftplus * p;
    }

    /** max(x, 0) + ln(1 + e^-|x|): equal to ln(1 + e^x), and e^-|x| cannot overflow. */
    public static double softplus(double x) {
        return Math.max(x, 0.0) + Math.log1p(Math.exp(-Math.abs(x)));
    }

    public static double softplusDerivative(double x) {
        return sigmoid(x);
    }

    public static double relu6(double x) {
        return Math.min(Math.max(0.0, x), 6.0);
    }

    /** 1 on the open interval (0, 6); 0 at 0 and at 6 (PyTorch, where ReLU6 is hardtanh(x, 0, 6)). */
    public static double relu6Derivative(double x) {
        return (x > 0.0 && x < 6.0) ? 1.0 : 0.0;
    }

    public static double hardSigmoid(double x) {
        return relu6(x + 3.0) / 6.0;
    }

    /** 1/6 on the open interval (-3, 3); 0 at -3 and 3 (PyTorch's Hardsigmoid). */
    public static double hardSigmoidDerivative(double x) {
        return (x > -3.0 && x < 3.0) ? ONE_SIXTH : 0.0;
    }

    public static double hardSwish(double x) {
        return x * hardSigmoid(x);
    }

    /**
     * 0 for x &lt;= -3, (2x + 3)/6 inside, 1 for x &gt;= 3: at the kinks the outer piece's slope (PyTorch
     * since pytorch/pytorch#148049; earlier releases returned -0.5 at -3 and 1.5 at 3).
     */
    public static double hardSwishDerivative(double x) {
        if (x <= -3.0) {
            return 0.0;
        }
        if (x >= 3.0) {
            return 1.0;
        }
        return (2.0 * x + 3.0) / 6.0; // also the NaN case: NaN compares false above
    }

    /** min(x, 0) - ln(1 + e^-|x|): equal to -ln(1 + e^-x), and e^-|x| cannot overflow. */
    public static double logSigmoid(double x) {
        return Math.min(x, 0.0) - Math.log1p(Math.exp(-Math.abs(x)));
    }

    public static double logSigmoidDerivative(double x) {
        return sigmoid(-x);
    }

    // ---- the table --------------------------------------------------------------------------------

    private static Map<ActivationKind, Functions> buildTable() {
        EnumMap<ActivationKind, Functions> table = new EnumMap<>(ActivationKind.class);
        table.put(ActivationKind.STEP, withoutParameter(CpuActivations::step, CpuActivations::stepDerivative));
        table.put(ActivationKind.LINEAR,
                withoutParameter(CpuActivations::linear, CpuActivations::linearDerivative));
        table.put(ActivationKind.SIGMOID,
                withoutParameter(CpuActivations::sigmoid, CpuActivations::sigmoidDerivative));
        table.put(ActivationKind.TANH, withoutParameter(CpuActivations::tanh, CpuActivations::tanhDerivative));
        table.put(ActivationKind.HARD_TANH,
                withoutParameter(CpuActivations::hardTanh, CpuActivations::hardTanhDerivative));
        table.put(ActivationKind.ARCTAN,
                withoutParameter(CpuActivations::arctan, CpuActivations::arctanDerivative));
        table.put(ActivationKind.SOFTSIGN,
                withoutParameter(CpuActivations::softsign, CpuActivations::softsignDerivative));
        table.put(ActivationKind.BENT_IDENTITY,
                withoutParameter(CpuActivations::bentIdentity, CpuActivations::bentIdentityDerivative));
        table.put(ActivationKind.RELU, withoutParameter(CpuActivations::relu, CpuActivations::reluDerivative));
        table.put(ActivationKind.LEAKY_RELU, new Functions(CpuActivations::leakyRelu,
                CpuActivations::leakyReluDerivative, CpuActivations::leakyReluAlphaDerivative));
        table.put(ActivationKind.ELU,
                new Functions(CpuActivations::elu, CpuActivations::eluDerivative, CpuActivations::eluAlphaDerivative));
        table.put(ActivationKind.PRELU, new Functions(CpuActivations::prelu,
                CpuActivations::preluDerivative, CpuActivations::preluAlphaDerivative));
        table.put(ActivationKind.SWISH, new Functions(CpuActivations::swish,
                CpuActivations::swishDerivative, CpuActivations::swishBetaDerivative));
        table.put(ActivationKind.GELU, withoutParameter(CpuActivations::gelu, CpuActivations::geluDerivative));
        table.put(ActivationKind.SELU, withoutParameter(CpuActivations::selu, CpuActivations::seluDerivative));
        table.put(ActivationKind.CELU, new Functions(CpuActivations::celu,
                CpuActivations::celuDerivative, CpuActivations::celuAlphaDerivative));
        table.put(ActivationKind.SILU, withoutParameter(CpuActivations::silu, CpuActivations::siluDerivative));
        table.put(ActivationKind.MISH, withoutParameter(CpuActivations::mish, CpuActivations::mishDerivative));
        table.put(ActivationKind.SOFTPLUS,
                withoutParameter(CpuActivations::softplus, CpuActivations::softplusDerivative));
        table.put(ActivationKind.RELU6,
                withoutParameter(CpuActivations::relu6, CpuActivations::relu6Derivative));
        table.put(ActivationKind.HARD_SIGMOID,
                withoutParameter(CpuActivations::hardSigmoid, CpuActivations::hardSigmoidDerivative));
        table.put(ActivationKind.HARD_SWISH,
                withoutParameter(CpuActivations::hardSwish, CpuActivations::hardSwishDerivative));
        table.put(ActivationKind.LOG_SIGMOID,
                withoutParameter(CpuActivations::logSigmoid, CpuActivations::logSigmoidDerivative));
        checkAgainstActivationKind(table);
        return Collections.unmodifiableMap(table);
    }

    private static Functions withoutParameter(DoubleUnaryOperator forward, DoubleUnaryOperator derivative) {
        return new Functions((x, ignoredParameter) -> forward.applyAsDouble(x),
                (x, ignoredParameter) -> derivative.applyAsDouble(x), null);
    }

    /**
     * Fails class initialisation when the table and {@link ActivationKind} disagree, so that a kind
     * added to the enum without its CPU math breaks every test at once instead of failing at first use.
     */
    private static void checkAgainstActivationKind(Map<ActivationKind, Functions> table) {
        for (ActivationKind kind : ActivationKind.values()) {
            Functions functions = table.get(kind);
            if (kind.isElementWise() != (functions != null)) {
                throw new IllegalStateException("CpuActivations: activation '" + kind.id() + "' is "
                        + (kind.isElementWise() ? "element-wise but missing from" : "not element-wise but in")
                        + " the table");
            }
            if (functions != null && kind.hasParameter() != (functions.parameterDerivative() != null)) {
                throw new IllegalStateException("CpuActivations: activation '" + kind.id() + "' "
                        + (kind.hasParameter() ? "has a parameter but no parameter derivative"
                                : "has no parameter but a parameter derivative"));
            }
        }
    }

    // ---- special functions ------------------------------------------------------------------------

    /** Phi(x), the standard normal distribution function, = erfc(-x / sqrt 2) / 2. */
    static double standardNormalCdf(double x) {
        // erfc rather than 1 + erf: for x << 0 the result is tiny and 1 + erf(...) would cancel to 0.
        return 0.5 * erfc(-x * INV_SQRT_2);
    }

    /** phi(x), the standard normal density. */
    static double standardNormalPdf(double x) {
        return Math.exp(-0.5 * x * x) * INV_SQRT_2PI;
    }

    /*
     * erf and erfc, which Java 17 lacks, to a relative error of a few units in the last place:
     *  - |x| < 2: the series erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1))
     *    (Abramowitz & Stegun 7.1.6), whose terms are all positive, so nothing cancels; <= 35 terms.
     *  - |x| >= 2: the continued fraction erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x
     *    + ...)))) (A&S 7.1.14) by the modified Lentz method; <= 60 terms, fewer as x grows.
     * erfc(x) for 0 <= x < 2 is 1 - erf(x), which loses at most 2 digits there (erfc(2) = 0.0047).
     */

    private static final double ERF_SERIES_LIMIT = 2.0;
    /** erfc(28) is about 6e-342, below the smallest subnormal double: 0 from here on. */
    private static final double ERFC_UNDERFLOW_LIMIT = 28.0;
    /** Far more terms than x = 2 needs (57); only a guard against an endless loop. */
    private static final int CONTINUED_FRACTION_MAX_TERMS = 500;

    /** The error function. */
    static double erf(double x) {
        if (Double.isNaN(x)) {
            return x;
        }
        double a = Math.abs(x);
        double erfOfA = a < ERF_SERIES_LIMIT ? erfSeries(a) : 1.0 - erfcContinuedFraction(a);
        return Math.copySign(erfOfA, x);
    }

    /** The complementary error function 1 - erf(x), accurate in relative terms for large x too. */
    static double erfc(double x) {
        if (Double.isNaN(x)) {
            return x;
        }
        if (x >= ERF_SERIES_LIMIT) {
            return erfcContinuedFraction(x);
        }
        if (x > -ERF_SERIES_LIMIT) {
            return 1.0 - Math.copySign(erfSeries(Math.abs(x)), x);
        }
        return 2.0 - erfcContinuedFraction(-x);
    }

    /** erf(a) for 0 &lt;= a &lt; 2 by A&amp;S 7.1.6. */
    private static double erfSeries(double a) {
        double aSquared = a * a;
        double term = a;
        double sum = a;
        for (int n = 1; term > sum * 0x1p-56; n++) {
            term *= 2.0 * aSquared / (2 * n + 1);
            sum += term;
        }
        return TWO_OVER_SQRT_PI * Math.exp(-aSquared) * sum;
    }

    /** erfc(z) for z &gt;= 2 by the continued fraction A&amp;S 7.1.14, evaluated by modified Lentz. */
    private static double erfcContinuedFraction(double z) {
        if (z >= ERFC_UNDERFLOW_LIMIT) {
            return 0.0;
        }
        // K = z + a1/(z + a2/(z + ...)) with a_k = k/2; all partial denominators are >= z > 0, so the
        // Lentz recurrences never divide by 0.
        double fraction = z;
        double c = z;
        double d = 0.0;
        for (int k = 1; k <= CONTINUED_FRACTION_MAX_TERMS; k++) {
            double a = 0.5 * k;
            d = 1.0 / (z + a * d);
            c = z + a / c;
            double delta = c * d;
            fraction *= delta;
            if (Math.abs(delta - 1.0) <= 0x1p-52) {
                break;
            }
        }
        return expOfMinusSquare(z) * INV_SQRT_PI / fraction;
    }

    /**
     * e^(-z^2) without the error of rounding z^2 (which would cost z^2 ulps, 8e-14 at z = 27): split
     * z = hi + (z - hi) where hi keeps 21 significant bits, so hi^2 is exact and
     * z^2 = hi^2 + (z - hi)(z + hi).
     */
    private static double expOfMinusSquare(double z) {
        double hi = Double.longBitsToDouble(Double.doubleToRawLongBits(z) & 0xFFFFFFFF00000000L);
        return Math.exp(-hi * hi) * Math.exp((hi - z) * (hi + z));
    }
}
