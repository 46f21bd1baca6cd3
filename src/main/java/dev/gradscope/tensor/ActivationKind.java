package dev.gradscope.tensor;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The table of activation functions: every kind, its name, and its parameter. This enum is the one
 * list of kinds; each backend implements the math of each kind once (on the CPU in
 * {@code CpuActivations}, on the GPU as a {@code __device__} function pair of the same name).
 *
 * <p>An activation has at most one scalar parameter ({@code alpha} or {@code beta}). Ops take it as a
 * tensor of 1 element (shared by all units) or of one element per unit (per column), so that the same
 * op serves a fixed LeakyReLU slope and a learnable, per-unit PReLU slope.
 *
 * <p>Each kind is documented by one template: summary; {@code f(x)} and {@code f'(x)}; behaviour
 * (where it saturates, where it has a kink and which value the derivative takes there, whether it is
 * zero-centred, whether units can die); its parameter; the paper it comes from. The derivative at a
 * kink is a convention, not mathematics; where PyTorch defines one we take PyTorch's, so that
 * gradients can be compared with it.
 *
 * <p>Why the chapter's kinds behave as they do, in one paragraph: backpropagation multiplies the
 * gradient by {@code f'(z)} once per layer. Where {@code f'} is small (sigmoid: at most 1/4; any
 * saturating kind far from 0) gradients shrink geometrically with depth (vanishing gradients). Where
 * the outputs are all positive (sigmoid, ReLU) the gradients of all weights into a unit share one
 * sign and move together (not zero-centred). Where {@code f'} is exactly 0 on a half-line (ReLU) a
 * unit pushed there for every input gets no gradient and never comes back (a dead unit).
 *
 * <p>Order: the chapter's kinds first, then softmax, then the modern kinds of Keras and PyTorch. New
 * kinds are appended, so the ordinals of existing kinds never change.
 */
public enum ActivationKind {
    /**
     * Heaviside step: the perceptron's threshold unit.
     *
     * <pre>{@code
     * f(x)  = 1 if x > 0, else 0
     * f'(x) = 0
     * }</pre>
     *
     * <p>Flat everywhere except the jump at 0, so backpropagation passes no gradient through it: a
     * network of step units cannot be trained by gradient descent, which is why smooth activations
     * replaced it. Convention: {@code f'(0) = 0} (the true derivative there is a Dirac impulse).
     *
     * <p>Parameter: none. Reference: F. Rosenblatt, "The perceptron: a probabilistic model for
     * information storage and organization in the brain", Psychological Review 65(6), 1958.
     */
    STEP("step", null, 0),
    /**
     * Identity: no non-linearity.
     *
     * <pre>{@code
     * f(x)  = x
     * f'(x) = 1
     * }</pre>
     *
     * <p>Never saturates and has no kink. A stack of linear layers is one linear map, so this is only
     * useful for outputs (regression) and as a baseline.
     *
     * <p>Parameter: none.
     */
    LINEAR("linear", null, 0),
    /**
     * Logistic sigmoid: squashes any input into (0, 1).
     *
     * <pre>{@code
     * f(x)  = 1 / (1 + e^-x)
     * f'(x) = f(x) (1 - f(x))
     * }</pre>
     *
     * <p>{@code f'(x) <= 1/4}, with the maximum at 0, so each sigmoid layer scales the backpropagated
     * gradient by at most 1/4 (ten layers: at most 1e-6, weights aside): the classic cause of vanishing
     * gradients. Saturates on both sides: {@code f'(x) < 0.01} once {@code |x| > 4.6}. Not
     * zero-centred: its outputs are all positive (mean about 1/2), so the gradients of all weights into
     * the next unit have the same sign and can only move together, which makes updates zig-zag. Smooth,
     * no kink.
     *
     * <p>Parameter: none. Reference: D. E. Rumelhart, G. E. Hinton, R. J. Williams, "Learning
     * representations by back-propagating errors", Nature 323, 1986; on saturation: X. Glorot,
     * Y. Bengio, "Understanding the difficulty of training deep feedforward neural networks", AISTATS
     * 2010.
     */
    SIGMOID("sigmoid", null, 0),
    /**
     * Hyperbolic tangent: a zero-centred sigmoid, into (-1, 1).
     *
     * <pre>{@code
     * f(x)  = tanh(x) = 2 sigmoid(2x) - 1
     * f'(x) = 1 - tanh(x)^2
     * }</pre>
     *
     * <p>Zero-centred, and {@code f'(0) = 1} rather than 1/4, so it trains better than the sigmoid; but
     * it saturates on both sides just the same ({@code f'(x) < 0.01} once {@code |x| > 3}), so deep
     * tanh networks still lose their gradients. Smooth, no kink.
     *
     * <p>Parameter: none. Reference: Y. LeCun, L. Bottou, G. B. Orr, K.-R. Müller, "Efficient
     * BackProp", Neural Networks: Tricks of the Trade, 1998.
     */
    TANH("tanh", null, 0),
    /**
     * Hard tanh: tanh's piecewise-linear approximation, clipping to [-1, 1].
     *
     * <pre>{@code
     * f(x)  = max(-1, min(1, x))
     * f'(x) = 1 if -1 < x < 1, else 0
     * }</pre>
     *
     * <p>Saturates completely outside [-1, 1]: a unit there passes no gradient at all. Zero-centred.
     * Kinks at -1 and 1; convention {@code f'(-1) = f'(1) = 0} (PyTorch's {@code Hardtanh}).
     *
     * <p>Parameter: none. Reference: R. Collobert, "Large Scale Machine Learning", PhD thesis,
     * Université Paris VI, 2004.
     */
    HARD_TANH("hardtanh", null, 0),
    /**
     * Arctangent: a zero-centred squashing function into (-pi/2, pi/2) that saturates slowly.
     *
     * <pre>{@code
     * f(x)  = atan(x)
     * f'(x) = 1 / (1 + x^2)
     * }</pre>
     *
     * <p>Saturates polynomially rather than exponentially: {@code f'(10) ~ 0.01}, where tanh's
     * derivative is already 8e-9. Zero-centred, smooth, no kink.
     *
     * <p>Parameter: none.
     */
    ARCTAN("arctan", null, 0),
    /**
     * Softsign: a zero-centred squashing function into (-1, 1) with polynomial tails.
     *
     * <pre>{@code
     * f(x)  = x / (1 + |x|)
     * f'(x) = 1 / (1 + |x|)^2
     * }</pre>
     *
     * <p>Saturates polynomially ({@code f'(9) = 0.01}), so more slowly than tanh. Zero-centred. The
     * derivative is continuous (no kink); only the second derivative jumps at 0.
     *
     * <p>Parameter: none. Reference: X. Glorot, Y. Bengio, "Understanding the difficulty of training
     * deep feedforward neural networks", AISTATS 2010 (softsign against tanh and sigmoid).
     */
    SOFTSIGN("softsign", null, 0),
    /**
     * Bent identity: the identity, bent into a smooth curve that is steeper for x &gt; 0.
     *
     * <pre>{@code
     * f(x)  = (sqrt(x^2 + 1) - 1) / 2 + x
     * f'(x) = x / (2 sqrt(x^2 + 1)) + 1
     * }</pre>
     *
     * <p>Never saturates: {@code 1/2 < f'(x) < 3/2} everywhere, so it cannot cause vanishing gradients
     * by itself (nor can units die). Unbounded both ways, {@code f(0) = 0}, smooth, no kink.
     *
     * <p>Parameter: none.
     */
    BENT_IDENTITY("bent_identity", null, 0),
    /**
     * Rectified linear unit: passes positive inputs, zeroes negative ones.
     *
     * <pre>{@code
     * f(x)  = max(0, x)
     * f'(x) = 1 if x > 0, else 0
     * }</pre>
     *
     * <p>Does not saturate for x &gt; 0: an active unit passes the gradient unchanged, which is why
     * ReLU networks keep their gradients alive in depth. But {@code f'} is exactly 0 for x &lt; 0: a
     * unit whose pre-activation is negative for every input (after a large update, or a large negative
     * bias) gets no gradient and never recovers (a dead unit). Not zero-centred (outputs are
     * {@code >= 0}). Kink at 0; convention {@code f'(0) = 0} (PyTorch, TensorFlow).
     *
     * <p>Parameter: none. Reference: V. Nair, G. E. Hinton, "Rectified Linear Units Improve Restricted
     * Boltzmann Machines", ICML 2010; X. Glorot, A. Bordes, Y. Bengio, "Deep Sparse Rectifier Neural
     * Networks", AISTATS 2011.
     */
    RELU("relu", null, 0),
    /**
     * Leaky ReLU: ReLU with a small fixed slope for negative inputs.
     *
     * <pre>{@code
     * f(x)      = x if x > 0, else alpha x
     * f'(x)     = 1 if x > 0, else alpha
     * df/dalpha = 0 if x > 0, else x
     * }</pre>
     *
     * <p>The slope {@code alpha} keeps a gradient flowing for negative inputs, so units cannot die.
     * Saturates on neither side; with a small alpha the outputs are still mostly positive (not
     * zero-centred). Kink at 0; convention {@code f'(0) = alpha} (PyTorch).
     *
     * <p>Parameter: {@code alpha}, the negative slope, default 0.01 (PyTorch's default; Keras's
     * {@code LeakyReLU} layer defaults to 0.3). Reference: A. L. Maas, A. Y. Hannun, A. Y. Ng,
     * "Rectifier Nonlinearities Improve Neural Network Acoustic Models", ICML 2013 workshop.
     */
    LEAKY_RELU("leaky_relu", "alpha", 0.01),
    /**
     * Exponential linear unit: identity for positive inputs, a smooth exponential for negative ones.
     *
     * <pre>{@code
     * f(x)      = x if x > 0, else alpha (e^x - 1)
     * f'(x)     = 1 if x > 0, else alpha e^x
     * df/dalpha = 0 if x > 0, else e^x - 1
     * }</pre>
     *
     * <p>Negative outputs (down to {@code -alpha}) push the mean activation toward 0, which speeds up
     * learning; saturates softly for x -&gt; -infinity ({@code f' -> 0}), which the authors argue makes
     * it robust to noise. Units can still die deep in the negative region. With {@code alpha = 1} the
     * derivative is continuous; otherwise it jumps at 0. Convention {@code f'(0) = alpha} (PyTorch, the
     * value of the negative piece).
     *
     * <p>Parameter: {@code alpha}, the negative saturation value, default 1.0. Reference: D.-A. Clevert,
     * T. Unterthiner, S. Hochreiter, "Fast and Accurate Deep Network Learning by Exponential Linear
     * Units (ELUs)", ICLR 2016, arXiv:1511.07289.
     */
    ELU("elu", "alpha", 1.0),
    /**
     * Parametric ReLU: a leaky ReLU whose negative slope is learned, shared or one per unit.
     *
     * <pre>{@code
     * f(x)      = x if x > 0, else alpha x
     * f'(x)     = 1 if x > 0, else alpha
     * df/dalpha = 0 if x > 0, else x
     * }</pre>
     *
     * <p>As {@link #LEAKY_RELU}, but {@code alpha} is a trained parameter (its gradient is
     * {@code df/dalpha} summed over the batch and, when shared, over the units). Kink at 0; convention
     * {@code f'(0) = alpha} (PyTorch's {@code PReLU}).
     *
     * <p>Parameter: {@code alpha}, learnable, initial value 0.25 (the paper's). Reference: K. He,
     * X. Zhang, S. Ren, J. Sun, "Delving Deep into Rectifiers: Surpassing Human-Level Performance on
     * ImageNet Classification", ICCV 2015, arXiv:1502.01852.
     */
    PRELU("prelu", "alpha", 0.25),
    /**
     * Swish: the input gated by its own sigmoid, with a sharpness {@code beta}.
     *
     * <pre>{@code
     * f(x)     = x sigmoid(beta x)
     * f'(x)    = s + beta x s (1 - s),   s = sigmoid(beta x)
     * df/dbeta = x^2 s (1 - s)
     * }</pre>
     *
     * <p>Smooth and non-monotonic: for {@code beta = 1} its minimum is -0.2785 at x = -1.2785.
     * Unbounded above (no saturation for x &gt; 0), bounded below, saturating softly for x -&gt;
     * -infinity. {@code beta = 0} gives x/2, {@code beta -> infinity} gives ReLU; {@code beta = 1} is
     * {@link #SILU}.
     *
     * <p>Parameter: {@code beta}, fixed or learnable, default 1.0. Reference: P. Ramachandran, B. Zoph,
     * Q. V. Le, "Searching for Activation Functions", 2017, arXiv:1710.05941.
     */
    SWISH("swish", "beta", 1.0),
    /**
     * Softmax over each row: turns a row of logits into a probability distribution.
     *
     * <pre>{@code
     * f(x)_i = e^(x_i) / sum_j e^(x_j)
     * }</pre>
     *
     * <p>Not element-wise: only valid as the output of the last layer, where the loss fuses it (see
     * {@link Backend#softmaxCrossEntropy}); the fused gradient {@code softmax(x) - target} avoids the
     * slow learning that MSE on a saturated softmax shows.
     *
     * <p>Parameter: none. Reference: J. S. Bridle, "Probabilistic Interpretation of Feedforward
     * Classification Network Outputs, with Relationships to Statistical Pattern Recognition", 1990.
     */
    SOFTMAX("softmax", null, 0),

    // ---- modern kinds, as in Keras and PyTorch ---------------------------------------------------

    /**
     * Gaussian error linear unit (exact form): the input weighted by the probability that a standard
     * normal variable is below it.
     *
     * <pre>{@code
     * f(x)  = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2
     * f'(x) = Phi(x) + x phi(x),   phi(x) = e^(-x^2/2) / sqrt(2 pi)
     * }</pre>
     *
     * <p>Smooth and non-monotonic: minimum -0.1700 at x = -0.7518; {@code f'} ranges over
     * (-0.1289, 1.1289). Unbounded above, saturating softly to 0 for x -&gt; -infinity. This is the
     * exact erf form (Keras {@code approximate=False}, PyTorch {@code approximate='none'}); the tanh
     * approximation is not offered.
     *
     * <p>Parameter: none. Reference: D. Hendrycks, K. Gimpel, "Gaussian Error Linear Units (GELUs)",
     * 2016, arXiv:1606.08415.
     */
    GELU("gelu", null, 0),
    /**
     * Scaled exponential linear unit: an ELU scaled so that activations normalise themselves.
     *
     * <pre>{@code
     * f(x)  = scale x if x > 0, else scale alpha (e^x - 1)
     * f'(x) = scale if x > 0, else scale alpha e^x
     * alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946
     * }</pre>
     *
     * <p>With LeCun-normal initialisation (and alpha-dropout), layer outputs converge to mean 0 and
     * variance 1 without batch normalisation, which keeps gradients from vanishing or exploding.
     * Saturates to {@code -scale alpha = -1.7581} for x -&gt; -infinity. Kink at 0 (the slopes are
     * 1.0507 on the right, 1.7581 on the left); convention {@code f'(0) = scale alpha} (PyTorch, the
     * negative piece).
     *
     * <p>Parameter: none (alpha and scale are fixed constants). Reference: G. Klambauer,
     * T. Unterthiner, A. Mayr, S. Hochreiter, "Self-Normalizing Neural Networks", NeurIPS 2017,
     * arXiv:1706.02515.
     */
    SELU("selu", null, 0),
    /**
     * Continuously differentiable exponential linear unit: an ELU whose derivative is continuous for
     * every alpha.
     *
     * <pre>{@code
     * f(x)      = x if x > 0, else alpha (e^(x/alpha) - 1)
     * f'(x)     = 1 if x > 0, else e^(x/alpha)
     * df/dalpha = 0 if x > 0, else e^(x/alpha) - 1 - (x/alpha) e^(x/alpha)
     * }</pre>
     *
     * <p>Saturates to {@code -alpha} for x -&gt; -infinity. Unlike ELU, {@code f'} is 1 on both sides
     * of 0 whatever alpha is, so there is no kink: {@code f'(0) = 1}. Equals ELU when alpha = 1.
     *
     * <p>Parameter: {@code alpha}, default 1.0; must not be 0. Reference: J. T. Barron, "Continuously
     * Differentiable Exponential Linear Units", 2017, arXiv:1704.07483.
     */
    CELU("celu", "alpha", 1.0),
    /**
     * Sigmoid linear unit: the input gated by its own sigmoid ({@link #SWISH} with beta = 1).
     *
     * <pre>{@code
     * f(x)  = x sigmoid(x)
     * f'(x) = sigmoid(x) (1 + x (1 - sigmoid(x)))
     * }</pre>
     *
     * <p>Smooth and non-monotonic: minimum -0.2785 at x = -1.2785; {@code f'} ranges over
     * (-0.0998, 1.0998). Unbounded above, saturating softly to 0 for x -&gt; -infinity.
     *
     * <p>Parameter: none. Reference: S. Elfwing, E. Uchibe, K. Doya, "Sigmoid-Weighted Linear Units for
     * Neural Network Function Approximation in Reinforcement Learning", 2017, arXiv:1702.03118 (also
     * named in Hendrycks and Gimpel's GELU paper, arXiv:1606.08415).
     */
    SILU("silu", null, 0),
    /**
     * Mish: the input gated by the tanh of its softplus.
     *
     * <pre>{@code
     * f(x)  = x tanh(softplus(x)),   softplus(x) = ln(1 + e^x)
     * f'(x) = tanh(softplus(x)) + x sech^2(softplus(x)) sigmoid(x)
     * }</pre>
     *
     * <p>Smooth and non-monotonic: minimum -0.3088 at x = -1.1924; {@code f'} ranges over
     * (-0.1125, 1.0885). Unbounded above, saturating softly to 0 for x -&gt; -infinity.
     *
     * <p>Parameter: none. Reference: D. Misra, "Mish: A Self Regularized Non-Monotonic Activation
     * Function", BMVC 2020, arXiv:1908.08681.
     */
    MISH("mish", null, 0),
    /**
     * Softplus: a smooth ReLU.
     *
     * <pre>{@code
     * f(x)  = ln(1 + e^x)
     * f'(x) = sigmoid(x)
     * }</pre>
     *
     * <p>Always positive (not zero-centred), {@code f(0) = ln 2}. Its derivative is the sigmoid: it
     * saturates for x -&gt; -infinity, but is never exactly 0, so units fade rather than die.
     * Approaches ReLU for large |x|. Smooth, no kink.
     *
     * <p>Parameter: none. Reference: C. Dugas, Y. Bengio, F. Bélisle, C. Nadeau, R. Garcia,
     * "Incorporating Second-Order Functional Knowledge for Better Option Pricing", NIPS 2000.
     */
    SOFTPLUS("softplus", null, 0),
    /**
     * ReLU capped at 6.
     *
     * <pre>{@code
     * f(x)  = min(max(0, x), 6)
     * f'(x) = 1 if 0 < x < 6, else 0
     * }</pre>
     *
     * <p>As ReLU, units die for x &lt; 0; in addition a unit saturates (passes no gradient) above 6.
     * The bounded range suits low-precision arithmetic. Kinks at 0 and 6; convention
     * {@code f'(0) = f'(6) = 0} (PyTorch, where ReLU6 is {@code hardtanh(x, 0, 6)}).
     *
     * <p>Parameter: none. Reference: A. Krizhevsky, "Convolutional Deep Belief Networks on CIFAR-10",
     * 2010; A. G. Howard et al., "MobileNets", 2017, arXiv:1704.04861.
     */
    RELU6("relu6", null, 0),
    /**
     * Hard sigmoid: the sigmoid's piecewise-linear approximation, Keras 3 and PyTorch definition.
     *
     * <pre>{@code
     * f(x)  = relu6(x + 3) / 6 = min(max(0, x/6 + 1/2), 1)
     * f'(x) = 1/6 if -3 < x < 3, else 0
     * }</pre>
     *
     * <p>Saturates completely outside [-3, 3] (no gradient at all there); not zero-centred (range
     * [0, 1]). Its slope 1/6 is below the sigmoid's 1/4 at 0. Keras 2 used {@code clip(0.2 x + 0.5,
     * 0, 1)} instead. Kinks at -3 and 3; convention {@code f'(-3) = f'(3) = 0} (PyTorch's
     * {@code Hardsigmoid}).
     *
     * <p>Parameter: none. Reference: A. Howard et al., "Searching for MobileNetV3", ICCV 2019,
     * arXiv:1905.02244.
     */
    HARD_SIGMOID("hard_sigmoid", null, 0),
    /**
     * Hard swish: swish with the sigmoid replaced by the hard sigmoid.
     *
     * <pre>{@code
     * f(x)  = x relu6(x + 3) / 6
     * f'(x) = 0 if x <= -3;  (2x + 3) / 6 if -3 < x < 3;  1 if x >= 3
     * }</pre>
     *
     * <p>Non-monotonic: minimum -0.375 at x = -1.5. Zero with zero gradient for x &lt;= -3 (units can
     * die there), the identity for x &gt;= 3. Kinks at -3 (slope jumps from 0 to -1/2) and at 3 (from
     * 3/2 to 1); convention: the outer piece, {@code f'(-3) = 0}, {@code f'(3) = 1} (PyTorch since
     * pytorch/pytorch#148049, 2025; earlier releases returned -0.5 and 1.5).
     *
     * <p>Parameter: none. Reference: A. Howard et al., "Searching for MobileNetV3", ICCV 2019,
     * arXiv:1905.02244.
     */
    HARD_SWISH("hard_swish", null, 0),
    /**
     * Log-sigmoid: the logarithm of the sigmoid, computed without overflow.
     *
     * <pre>{@code
     * f(x)  = ln sigmoid(x) = -softplus(-x)
     * f'(x) = sigmoid(-x) = 1 - sigmoid(x)
     * }</pre>
     *
     * <p>Always negative; the identity (slope 1) for x -&gt; -infinity, saturating to 0 with a
     * vanishing gradient for x -&gt; +infinity. Smooth, no kink. The log-likelihood of a positive label
     * under a logistic model, so it appears inside binary cross-entropy on logits.
     *
     * <p>Parameter: none. (PyTorch {@code LogSigmoid}, Keras {@code log_sigmoid}.)
     */
    LOG_SIGMOID("log_sigmoid", null, 0);

    private final String id;
    private final String parameterName;
    private final double defaultParameter;

    ActivationKind(String id, String parameterName, double defaultParameter) {
        this.id = id;
        this.parameterName = parameterName;
        this.defaultParameter = defaultParameter;
    }

    /** The name used on the command line and in saved configs, as in Keras ({@code "leaky_relu"}). */
    public String id() {
        return id;
    }

    /** Whether the function has a scalar parameter (alpha or beta). */
    public boolean hasParameter() {
        return parameterName != null;
    }

    /** {@code "alpha"} or {@code "beta"}; null when the kind has no parameter. */
    public String parameterName() {
        return parameterName;
    }

    /** The parameter's value when the user gives none. */
    public double defaultParameter() {
        return defaultParameter;
    }

    /** Whether the function is applied element by element (every kind but softmax). */
    public boolean isElementWise() {
        return this != SOFTMAX;
    }

    /** Looks a kind up by its id (case-insensitive); the error names the bad id and every valid one. */
    public static ActivationKind fromId(String id) {
        String key = id.trim().toLowerCase(Locale.ROOT).replace('-', '_');
        for (ActivationKind k : values()) {
            if (k.id.equals(key)) {
                return k;
            }
        }
        throw new IllegalArgumentException("unknown activation '" + id + "'; valid: " + validIds());
    }

    /** Every id, comma-separated, for error and help messages. */
    public static String validIds() {
        return Arrays.stream(values()).map(ActivationKind::id).collect(Collectors.joining(", "));
    }
}
