package dev.gradscope.nn;

import dev.gradscope.tensor.ActivationKind;

/**
 * Parametric ReLU (He et al., 2015, "Delving Deep into Rectifiers"): {@code f(x) = x} for
 * {@code x > 0}, {@code alpha x} otherwise, with alpha learned. Per unit by default, as in Keras;
 * alpha starts at 0.25 as in the paper (Keras starts it at 0, which is plain ReLU).
 */
public class PReLU extends ActivationLayer {
    /** Per-unit alpha starting at 0.25. */
    public PReLU() {
        this(true);
    }

    /** @param perUnit one alpha per unit, or one alpha shared by the whole layer */
    public PReLU(boolean perUnit) {
        this(ActivationKind.PRELU.defaultParameter(), perUnit);
    }

    public PReLU(double initialAlpha, boolean perUnit) {
        super(ActivationKind.PRELU, initialAlpha, true, perUnit);
    }

    @Override
    public String typeName() {
        return "PReLU";
    }
}
