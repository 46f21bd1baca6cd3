package dev.gradscope.nn;

/**
 * A layer whose output has its input's width, one value per unit ({@link ActivationLayer}, {@link Dropout},
 * {@link BatchNormalization}): building it only takes the width.
 */
abstract class ElementwiseLayer extends Layer {
    /** The width, in and out, once built. */
    protected int units;

    @Override
    public final int build(int inputUnits) {
        this.inputUnits = inputUnits;
        this.units = inputUnits;
        return units;
    }

    @Override
    public final int outputUnits() {
        return units;
    }
}
