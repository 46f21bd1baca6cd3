package dev.gradscope.nn;

import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.List;

/**
 * A fully connected layer, {@code y = f(x · W + b)}, with Keras's defaults: glorot-uniform kernel,
 * zero bias, linear activation.
 *
 * <p>The activation may be any element-wise kind with a fixed parameter, or {@code softmax} on the
 * output layer, where the loss fuses softmax with its own gradient (so the model's backward pass
 * starts from the logits, see {@link #backwardFromLogits}). A learnable activation (PReLU, a learned
 * Swish beta) is its own layer after a linear {@code Dense}.
 */
public class Dense extends Layer {
    private final int units;
    private final ActivationKind activation;
    private final double activationParameter;
    private Initializer kernelInitializer = Initializer.glorotUniform();
    private Initializer biasInitializer = Initializer.zeros();

    private Affine affine;
    private Tensor parameter;
    private Tensor preActivation;
    private Tensor output;
    private Tensor preActivationGradient;
    private Tensor lastPreActivation;
    private Tensor lastOutput;
    /** The profiler's per-unit accumulator ({@link #watchUnits}), or null when not watched. */
    private Tensor unitStatistics;
    private float saturationThreshold;

    /** A linear dense layer. */
    public Dense(int units) {
        this(units, ActivationKind.LINEAR);
    }

    /** A dense layer with an activation by id ({@code "relu"}, {@code "softmax"}...), default parameter. */
    public Dense(int units, String activation) {
        this(units, ActivationKind.fromId(activation));
    }

    public Dense(int units, ActivationKind activation) {
        this(units, activation, activation.defaultParameter());
    }

    /** A dense layer whose activation has the given alpha or beta. */
    public Dense(int units, ActivationKind activation, double activationParameter) {
        if (units < 1) {
            throw new IllegalArgumentException("Dense: units must be >= 1, got " + units);
        }
        if (activation == ActivationKind.PRELU) {
            throw new IllegalArgumentException("Dense: prelu learns its alpha; add a PReLU layer after a linear"
                    + " Dense instead");
        }
        this.units = units;
        this.activation = activation;
        this.activationParameter = activationParameter;
    }

    public Dense kernelInitializer(Initializer initializer) {
        this.kernelInitializer = initializer;
        return this;
    }

    public Dense biasInitializer(Initializer initializer) {
        this.biasInitializer = initializer;
        return this;
    }

    public ActivationKind activation() {
        return activation;
    }

    /** The activation's alpha or beta, fixed (the kind's default when not given; ignored by kinds without one). */
    public double activationParameter() {
        return activationParameter;
    }

    @Override
    public String typeName() {
        return "Dense";
    }

    @Override
    public int build(int inputUnits) {
        this.inputUnits = inputUnits;
        this.affine = new Affine(inputUnits, units);
        return units;
    }

    @Override
    public int outputUnits() {
        return units;
    }

    @Override
    public List<ParameterSlot> parameterSlots() {
        return affine.slots(kernelInitializer, biasInitializer);
    }

    @Override
    protected void bind(List<Tensor> parameters, List<Tensor> gradients) {
        affine.bind(parameters.get(0), parameters.get(1), gradients.get(0), gradients.get(1));
    }

    @Override
    protected void allocate(Backend backend, int maxBatch) {
        this.backend = backend;
        affine.allocate(backend, maxBatch);
        preActivation = backend.allocate(DType.FLOAT32, maxBatch, units);
        if (activation != ActivationKind.LINEAR) {
            output = backend.allocate(DType.FLOAT32, maxBatch, units);
            preActivationGradient = backend.allocate(DType.FLOAT32, maxBatch, units);
        }
        if (activation.hasParameter()) {
            parameter = backend.fromHost(new float[] {(float) activationParameter}, 1);
        }
    }

    /**
     * {@code z = x · W}, then {@code z += b} and {@code y = f(z)} in one op ({@link
     * Backend#biasActivationForward}); a linear layer adds the bias alone, the softmax output layer adds
     * it and then takes the softmax.
     */
    @Override
    public Tensor forward(Tensor x) {
        Tensor z = forwardLogits(x);
        if (activation == ActivationKind.SOFTMAX) {
            lastOutput = output.rows(0, x.rowCount());
            backend.softmax(z, lastOutput);
        }
        return activation == ActivationKind.LINEAR ? z : lastOutput;
    }

    /**
     * The forward pass up to the pre-activation, which it returns: {@code x · W + b}, the logits of an
     * output layer. For an element-wise activation it also writes {@code y = f(z)} (the same op adds the
     * bias); for softmax it does not: a model's loss fuses the softmax, so training skips it.
     */
    public Tensor forwardLogits(Tensor x) {
        int batch = x.rowCount();
        Tensor z = preActivation.rows(0, batch);
        lastPreActivation = z;
        if (activation == ActivationKind.LINEAR || activation == ActivationKind.SOFTMAX) {
            affine.forward(x, z);
            lastOutput = null;
        } else {
            affine.product(x, z);
            lastOutput = output.rows(0, batch);
            backend.biasActivationForward(activation, z, affine.bias(), parameter, lastOutput);
        }
        return z;
    }

    /**
     * {@code dz = dy * f'(z)} with the bias gradient (and, when watched, the unit statistics) in one op
     * ({@link Backend#biasActivationBackward}), then the GEMMs for dW and dx.
     */
    @Override
    public Tensor backward(Tensor dy, boolean needInputGradient) {
        if (activation == ActivationKind.SOFTMAX) {
            throw new IllegalStateException(name() + ": softmax is only supported on the output layer, where the"
                    + " loss fuses it");
        }
        if (activation == ActivationKind.LINEAR) {
            return affine.backward(dy, needInputGradient);
        }
        Tensor dz = preActivationGradient.rows(0, dy.rowCount());
        backend.biasActivationBackward(activation, lastPreActivation, parameter,
                unitStatistics == null ? null : lastOutput, dy, dz, affine.biasGradient(), saturationThreshold,
                unitStatistics);
        return affine.backwardProducts(dz, needInputGradient);
    }

    @Override
    public boolean watchUnits(Tensor statistics, float saturationThreshold) {
        if (activation == ActivationKind.LINEAR || activation == ActivationKind.SOFTMAX) {
            return false;
        }
        this.unitStatistics = statistics;
        this.saturationThreshold = saturationThreshold;
        return true;
    }

    @Override
    public Activity lastActivity() {
        if (activation == ActivationKind.LINEAR || activation == ActivationKind.SOFTMAX || lastOutput == null) {
            return null;
        }
        return new Activity(activation, lastPreActivation, parameter, lastOutput);
    }

    /** The pre-activation {@code x · W + b} of the last forward: the logits when this is the output layer. */
    public Tensor logits() {
        return lastPreActivation;
    }

    /** Backward pass given the loss gradient with respect to {@link #logits()} (skips the activation). */
    public Tensor backwardFromLogits(Tensor dLogits, boolean needInputGradient) {
        return affine.backward(dLogits, needInputGradient);
    }

    /**
     * The output layer's forward pass in training: {@code z = x · W} without the bias, which the loss adds
     * ({@link Loss#apply(Backend, Tensor, Tensor, Tensor, float, Tensor, Tensor, Tensor)} with {@link #bias()});
     * so are {@link #logits()} once the loss has run. The activation is the loss's business, as in
     * {@link #forwardLogits}.
     */
    public Tensor forwardProduct(Tensor x) {
        Tensor z = preActivation.rows(0, x.rowCount());
        lastPreActivation = z;
        lastOutput = null;
        affine.product(x, z);
        return z;
    }

    /** The bias, for a loss that adds it ({@link #forwardProduct}). */
    public Tensor bias() {
        return affine.bias();
    }

    /** Where the bias gradient goes, for a loss that writes it ({@link #forwardProduct}). */
    public Tensor biasGradient() {
        return affine.biasGradient();
    }

    /**
     * Backward pass after a loss that wrote the bias gradient itself: dW and (when needed) dx from the loss
     * gradient with respect to {@link #logits()}.
     */
    public Tensor backwardProductsFromLogits(Tensor dLogits, boolean needInputGradient) {
        return affine.backwardProducts(dLogits, needInputGradient);
    }

    @Override
    public String describe() {
        String act = activation.hasParameter()
                ? activation.id() + "(" + activation.parameterName() + "=" + activationParameter + ")"
                : activation.id();
        return "units=" + units + ", activation=" + act + ", kernel=" + kernelInitializer;
    }

    @Override
    public void close() {
        if (affine != null) {
            affine.close();
        }
        Tensor.closeAll(preActivation, output, preActivationGradient, parameter);
    }
}
