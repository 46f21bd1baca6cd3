package dev.gradscope.nn;

import dev.gradscope.tensor.ActivationKind;

/**
 * Swish (Ramachandran, Zoph and Le, 2017, "Searching for Activation Functions"):
 * {@code f(x) = x sigmoid(beta x)}, with beta fixed or learned (one value shared by the layer).
 * With beta = 1 it is SiLU.
 */
public class Swish extends ActivationLayer {
    /** Swish with a fixed beta. */
    public Swish(double beta) {
        this(beta, false);
    }

    /** @param learnable whether beta is trained (one shared value) */
    public Swish(double beta, boolean learnable) {
        super(ActivationKind.SWISH, beta, learnable, false);
    }

    @Override
    public String typeName() {
        return "Swish";
    }
}
