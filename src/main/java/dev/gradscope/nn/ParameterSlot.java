package dev.gradscope.nn;

import dev.gradscope.tensor.Shapes;

/**
 * One parameter tensor a layer declares (a kernel, a bias, a PReLU slope): its name, shape and how it
 * starts. The model lays every slot out in one flat parameter buffer and one flat gradient buffer,
 * so the optimizer is one op and the per-layer norms are one segmented reduction.
 *
 * @param name        {@code "kernel"}, {@code "bias"}, {@code "alpha"}, ...
 * @param shape       the tensor's shape
 * @param initializer how it starts
 * @param fanIn       inputs per unit, for variance-scaling initializers
 * @param fanOut      outputs per unit, for variance-scaling initializers
 */
public record ParameterSlot(String name, int[] shape, Initializer initializer, int fanIn, int fanOut) {

    public ParameterSlot {
        shape = shape.clone();
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    public int size() {
        return (int) Shapes.size(shape);
    }

    /** Whether this slot is a weight matrix (as opposed to a bias or an activation parameter). */
    public boolean isKernel() {
        return name.equals("kernel");
    }
}
