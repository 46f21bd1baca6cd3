package dev.gradscope.nn;

import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.List;

/**
 * An element-wise activation as its own layer (Keras's {@code Activation}), with a parameter that is
 * fixed or learned. A learned parameter is one value shared by every unit or one value per unit; its
 * gradient is the sum over the batch (and over the units when shared) of {@code dy * df/dparam}.
 * {@link PReLU} and {@link Swish} are the two named uses of the learnable case.
 */
public class ActivationLayer extends ElementwiseLayer {
    private final ActivationKind kind;
    private final double initialParameter;
    private final boolean learnable;
    private final boolean perUnit;

    private Tensor parameter;
    private Tensor parameterGradient;
    private Tensor ownedParameter;
    private Tensor output;
    private Tensor inputGradient;
    private Tensor lastInput;
    private Tensor lastOutput;
    /** The profiler's per-unit accumulator ({@link #watchUnits}), or null when not watched. */
    private Tensor unitStatistics;
    private float saturationThreshold;

    /** A fixed activation by id, with its default parameter. */
    public ActivationLayer(String kind) {
        this(ActivationKind.fromId(kind));
    }

    public ActivationLayer(ActivationKind kind) {
        this(kind, kind.defaultParameter(), false, false);
    }

    /**
     * @param kind             an element-wise kind
     * @param initialParameter alpha or beta (ignored by kinds without one)
     * @param learnable        whether the optimizer trains the parameter
     * @param perUnit          one parameter per unit instead of one shared by all (learnable only)
     */
    public ActivationLayer(ActivationKind kind, double initialParameter, boolean learnable, boolean perUnit) {
        if (!kind.isElementWise()) {
            throw new IllegalArgumentException("Activation layer: " + kind.id()
                    + " is not element-wise; use it as the activation of the output Dense layer");
        }
        if (learnable && !kind.hasParameter()) {
            throw new IllegalArgumentException("Activation layer: " + kind.id() + " has no parameter to learn");
        }
        this.kind = kind;
        this.initialParameter = initialParameter;
        this.learnable = learnable;
        this.perUnit = perUnit;
    }

    public ActivationKind kind() {
        return kind;
    }

    /** The parameter's value: fixed, or where the learned one started (ignored by kinds without one). */
    public double initialParameter() {
        return initialParameter;
    }

    /** Whether the optimizer trains the parameter (it is then a tensor of the model's parameters). */
    public boolean learnable() {
        return learnable;
    }

    /** Whether a learned parameter has one value per unit rather than one shared by all. */
    public boolean perUnit() {
        return perUnit;
    }

    @Override
    public String typeName() {
        return "Activation";
    }


    @Override
    public List<ParameterSlot> parameterSlots() {
        if (!learnable) {
            return List.of();
        }
        return List.of(new ParameterSlot(kind.parameterName(), new int[] {perUnit ? units : 1},
                Initializer.constant(initialParameter), units, units));
    }

    @Override
    protected void bind(List<Tensor> parameters, List<Tensor> gradients) {
        if (!learnable) {
            return;
        }
        parameter = parameters.get(0);
        parameterGradient = gradients.get(0);
    }

    @Override
    protected void allocate(Backend backend, int maxBatch) {
        this.backend = backend;
        output = backend.allocate(DType.FLOAT32, maxBatch, units);
        inputGradient = backend.allocate(DType.FLOAT32, maxBatch, units);
        if (!learnable && kind.hasParameter()) {
            ownedParameter = backend.fromHost(new float[] {(float) initialParameter}, 1);
            parameter = ownedParameter;
        }
    }

    @Override
    public Tensor forward(Tensor x) {
        lastInput = x;
        Tensor y = output.rows(0, x.rowCount());
        backend.activationForward(kind, x, parameter, y);
        lastOutput = y;
        return y;
    }

    @Override
    public Tensor backward(Tensor dy, boolean needInputGradient) {
        if (learnable) {
            backend.activationParameterGradient(kind, lastInput, parameter, dy, parameterGradient);
        }
        if (!needInputGradient) {
            if (unitStatistics != null) {
                backend.accumulateUnitStatistics(kind, lastInput, parameter, lastOutput, saturationThreshold,
                        unitStatistics);
            }
            return null;
        }
        Tensor dx = inputGradient.rows(0, dy.rowCount());
        if (unitStatistics == null) {
            backend.activationBackward(kind, lastInput, parameter, dy, dx);
        } else {
            backend.activationBackwardWithStatistics(kind, lastInput, parameter, lastOutput, dy, dx,
                    saturationThreshold, unitStatistics);
        }
        return dx;
    }

    @Override
    public boolean watchUnits(Tensor statistics, float saturationThreshold) {
        this.unitStatistics = statistics;
        this.saturationThreshold = saturationThreshold;
        return true;
    }

    @Override
    public Activity lastActivity() {
        return lastOutput == null ? null : new Activity(kind, lastInput, parameter, lastOutput);
    }

    @Override
    public String describe() {
        if (!kind.hasParameter()) {
            return kind.id();
        }
        String how = learnable ? (perUnit ? "learned per unit" : "learned, shared") : "fixed";
        return kind.id() + "(" + kind.parameterName() + "=" + initialParameter + ", " + how + ")";
    }

    @Override
    public void close() {
        Tensor.closeAll(output, inputGradient, ownedParameter);
    }
}
