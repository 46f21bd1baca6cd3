package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.Tensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Adagrad (Duchi, Hazan and Singer, 2011) with Keras 3's defaults and update rule: learning rate 1e-3,
 * initial accumulator value 0.1, epsilon 1e-7. Per step, after the decoupled weight decay {@code p -= p * wd * lr}
 * (when wd > 0):
 * <pre>
 * accumulator = accumulator + g^2
 * p -= lr g / sqrt(accumulator + epsilon)
 * </pre>
 * The accumulator starts at the initial value, not 0, so the first steps are not {@code lr sign(g)}; it only
 * grows, and with it each parameter's step shrinks. PyTorch's {@code Adagrad} differs: learning rate 1e-2, the
 * accumulator from 0, epsilon 1e-10 added outside the square root ({@code sqrt(accumulator) + eps}). The rule does
 * not depend on a step count; the update counts its steps on the device for a per-step schedule, as RMSprop's.
 */
public final class Adagrad extends BaseOptimizer {
    /** Keras's {@code initial_accumulator_value}. */
    public static final double DEFAULT_INITIAL_ACCUMULATOR = 0.1;

    private final double initialAccumulator;
    private final double epsilon;
    private Backend backend;
    private Tensor accumulator;

    public Adagrad() {
        this(1e-3);
    }

    public Adagrad(double learningRate) {
        this(learningRate, DEFAULT_INITIAL_ACCUMULATOR, 1e-7, 0);
    }

    public Adagrad(double learningRate, double initialAccumulator, double epsilon, double weightDecay) {
        super("Adagrad", learningRate, weightDecay);
        if (!Optimizer.isNonNegativeFloat(initialAccumulator) || !Optimizer.isPositiveFloat(epsilon)) {
            throw new IllegalArgumentException("Adagrad: need an initial accumulator value >= 0 and epsilon > 0,"
                    + " finite as floats; got initial_accumulator_value=" + initialAccumulator + " epsilon="
                    + epsilon);
        }
        this.initialAccumulator = initialAccumulator;
        this.epsilon = epsilon;
    }

    @Override
    public void build(Backend backend, int parameterCount) {
        close();
        this.backend = backend;
        float[] start = new float[parameterCount];
        Arrays.fill(start, (float) initialAccumulator);
        accumulator = backend.fromHost(start, parameterCount);
        allocateCount(backend);
    }

    @Override
    public void step(Tensor parameters, Tensor gradients, StepEnd end) {
        backend.adagradUpdate(parameters, gradients, accumulator, (float) learningRate(), stepSchedule(),
                (float) epsilon, (float) weightDecay(), count(), end); // which also counts the update
    }

    /** Keras's name: {@code accumulator}. */
    @Override
    public Map<String, Tensor> stateBuffers() {
        return accumulator == null ? Map.of() : Map.of("accumulator", accumulator);
    }

    @Override
    public String id() {
        return "adagrad";
    }

    @Override
    public Map<String, Object> config() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("name", id());
        c.put("learning_rate", learningRate());
        c.put("initial_accumulator_value", initialAccumulator);
        c.put("epsilon", epsilon);
        c.put("weight_decay", weightDecay());
        return c;
    }

    @Override
    public void close() {
        Tensor.closeAll(accumulator);
        closeCount();
        accumulator = null;
    }
}
