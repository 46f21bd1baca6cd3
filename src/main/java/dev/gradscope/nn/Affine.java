package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.List;

/**
 * The affine part shared by {@link Dense} and {@link Maxout}: {@code z = x · W + b} with
 * {@code W [in, out]} (Keras's kernel layout) and its backward products
 * {@code dW = xᵀ · dz}, {@code db = column sums of dz}, {@code dx = dz · Wᵀ}. A layer with an element-wise
 * activation fuses the bias into its activation's ops instead ({@link #product}, {@link #backwardProducts}).
 */
final class Affine implements AutoCloseable {
    private final int in;
    private final int out;
    private Backend backend;
    private Tensor kernel;
    private Tensor bias;
    private Tensor kernelGradient;
    private Tensor biasGradient;
    private Tensor inputGradient;
    private Tensor lastInput;

    Affine(int in, int out) {
        this.in = in;
        this.out = out;
    }

    List<ParameterSlot> slots(Initializer kernelInitializer, Initializer biasInitializer) {
        return List.of(new ParameterSlot("kernel", new int[] {in, out}, kernelInitializer, in, out),
                new ParameterSlot("bias", new int[] {out}, biasInitializer, in, out));
    }

    void bind(Tensor kernel, Tensor bias, Tensor kernelGradient, Tensor biasGradient) {
        this.kernel = kernel;
        this.bias = bias;
        this.kernelGradient = kernelGradient;
        this.biasGradient = biasGradient;
    }

    void allocate(Backend backend, int maxBatch) {
        this.backend = backend;
        this.inputGradient = backend.allocate(DType.FLOAT32, maxBatch, in);
    }

    /** {@code z = x · W + b}; remembers x for the backward products. */
    void forward(Tensor x, Tensor z) {
        product(x, z);
        backend.addRowVectorAccumulate(z, bias);
    }

    /**
     * {@code z = x · W}, the GEMM alone, for a layer that adds the bias fused with its activation
     * ({@link Backend#biasActivationForward} with {@link #bias()}); remembers x for the backward products.
     */
    void product(Tensor x, Tensor z) {
        lastInput = x;
        backend.gemm(false, false, 1f, x, kernel, 0f, z);
    }

    /** Writes dW and db from {@code dz}; returns dx, or null when it is not needed. */
    Tensor backward(Tensor dz, boolean needInputGradient) {
        backend.columnSums(dz, biasGradient);
        return backwardProducts(dz, needInputGradient);
    }

    /**
     * The GEMMs of the backward pass alone, for a layer that wrote db fused with its activation's backward
     * ({@link Backend#biasActivationBackward} into {@link #biasGradient()}): writes dW; returns dx, or null
     * when it is not needed. dW goes {@linkplain Backend#aside aside}: the rest of the backward pass needs
     * only dx, and no layer writes x, dz or dW before {@link Sequential#computeGradients} joins.
     */
    Tensor backwardProducts(Tensor dz, boolean needInputGradient) {
        Tensor x = lastInput;
        backend.aside(() -> backend.gemm(true, false, 1f, x, dz, 0f, kernelGradient));
        if (!needInputGradient) {
            return null;
        }
        Tensor dx = inputGradient.rows(0, dz.rowCount());
        backend.gemm(false, true, 1f, dz, kernel, 0f, dx);
        return dx;
    }

    Tensor bias() {
        return bias;
    }

    Tensor biasGradient() {
        return biasGradient;
    }

    Tensor kernel() {
        return kernel;
    }

    @Override
    public void close() {
        if (inputGradient != null) {
            inputGradient.close();
        }
    }
}
