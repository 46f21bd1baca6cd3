package dev.gradscope.nn;

import java.util.Map;

/**
 * The decay rates and epsilon of an optimizer that keeps moving averages of the gradient (Adam, Nadam, Adamax),
 * checked once for all of them: {@code beta1} and {@code beta2} in [0, 1) and {@code epsilon} above 0, as the
 * floats the update kernels take.
 *
 * @param beta1   the first moment's decay rate (Keras's {@code beta_1})
 * @param beta2   the second moment's, or the infinity norm's, decay rate (Keras's {@code beta_2})
 * @param epsilon Keras's {@code epsilon}
 */
record Moments(double beta1, double beta2, double epsilon) {

    Moments {
        if (!Optimizer.isFloatFraction(beta1) || !Optimizer.isFloatFraction(beta2)
                || !Optimizer.isPositiveFloat(epsilon)) {
            throw new IllegalArgumentException("need 0 <= beta1, beta2 < 1 and epsilon > 0, as floats; got"
                    + " beta1=" + beta1 + " beta2=" + beta2 + " epsilon=" + epsilon);
        }
    }

    /** The settings for {@code optimizer}, whose name an invalid one's message starts with. */
    static Moments of(String optimizer, double beta1, double beta2, double epsilon) {
        try {
            return new Moments(beta1, beta2, epsilon);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(optimizer + ": " + e.getMessage());
        }
    }

    /** Adds {@code beta_1}, {@code beta_2} and {@code epsilon} to an optimizer's Keras config, in Keras's order. */
    void putInto(Map<String, Object> config) {
        config.put("beta_1", beta1);
        config.put("beta_2", beta2);
        config.put("epsilon", epsilon);
    }
}
