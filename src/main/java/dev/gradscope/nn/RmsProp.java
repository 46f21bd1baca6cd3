package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * RMSprop (Hinton, 2012, lecture 6e of "Neural Networks for Machine Learning") with Keras 3's defaults and
 * update rule: learning rate 1e-3, rho 0.9, momentum 0, epsilon 1e-7, not centered, no weight decay. Per step,
 * after the decoupled weight decay {@code p -= p * wd * lr} (when wd > 0):
 * <pre>
 * velocity = rho velocity + (1 - rho) g^2
 * centered:  average_gradient = rho average_gradient + (1 - rho) g
 *            denominator = velocity - average_gradient^2 + epsilon
 * otherwise: denominator = velocity + epsilon
 * increment = lr g / sqrt(denominator)
 * momentum:  momentum_buffer = momentum momentum_buffer + increment;  p -= momentum_buffer
 * otherwise: p -= increment
 * </pre>
 * Epsilon is added inside the square root, as Keras 3 does; PyTorch's {@code RMSprop} adds it outside
 * ({@code sqrt(v) + eps}, eps 1e-8) and defaults its rho ({@code alpha}) to 0.99. The buffers start at 0. The
 * rule does not depend on a step count, but the update counts its steps on the device (Keras's
 * {@code iterations}), from which a per-step schedule gives each update its rate.
 */
public final class RmsProp extends BaseOptimizer {
    private final double rho;
    private final double momentum;
    private final double epsilon;
    private final boolean centered;
    private Backend backend;
    private Tensor velocity;
    private Tensor momentumBuffer; // only with momentum
    private Tensor averageGradient; // only when centered

    public RmsProp() {
        this(1e-3);
    }

    public RmsProp(double learningRate) {
        this(learningRate, 0.9, 0, 1e-7, false, 0);
    }

    public RmsProp(double learningRate, double rho, double momentum, double epsilon, boolean centered,
                   double weightDecay) {
        super("RMSprop", learningRate, weightDecay);
        if (!Optimizer.isFloatFraction(rho)
                || !Optimizer.isFloatFraction(momentum) || !Optimizer.isPositiveFloat(epsilon)) {
            throw new IllegalArgumentException("RMSprop: need 0 <= rho < 1, 0 <= momentum < 1 and a finite epsilon > 0,"
                    + " as floats; got rho=" + rho + " momentum=" + momentum + " epsilon=" + epsilon);
        }
        this.rho = rho;
        this.momentum = momentum;
        this.epsilon = epsilon;
        this.centered = centered;
    }

    @Override
    public void build(Backend backend, int parameterCount) {
        close();
        this.backend = backend;
        velocity = backend.allocate(DType.FLOAT32, parameterCount);
        if (momentum != 0) {
            momentumBuffer = backend.allocate(DType.FLOAT32, parameterCount);
        }
        if (centered) {
            averageGradient = backend.allocate(DType.FLOAT32, parameterCount);
        }
        allocateCount(backend);
    }

    @Override
    public void step(Tensor parameters, Tensor gradients, StepEnd end) {
        // which also counts the update
        backend.rmspropUpdate(parameters, gradients, velocity, averageGradient, momentumBuffer, (float) learningRate(),
                stepSchedule(), (float) rho, (float) momentum, (float) epsilon, centered, (float) weightDecay(),
                count(), end);
    }

    /**
     * Keras's names: {@code velocity} always, {@code momentum} with momentum, {@code average_gradient} when
     * centered.
     */
    @Override
    public Map<String, Tensor> stateBuffers() {
        if (velocity == null) {
            return Map.of();
        }
        Map<String, Tensor> buffers = new LinkedHashMap<>();
        buffers.put("velocity", velocity);
        if (momentumBuffer != null) {
            buffers.put("momentum", momentumBuffer);
        }
        if (averageGradient != null) {
            buffers.put("average_gradient", averageGradient);
        }
        return buffers;
    }

    @Override
    public String id() {
        return "rmsprop";
    }

    @Override
    public Map<String, Object> config() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("name", id());
        c.put("learning_rate", learningRate());
        c.put("rho", rho);
        c.put("momentum", momentum);
        c.put("epsilon", epsilon);
        c.put("centered", centered);
        c.put("weight_decay", weightDecay());
        return c;
    }

    @Override
    public void close() {
        Tensor.closeAll(velocity, momentumBuffer, averageGradient);
        closeCount();
        velocity = null;
        momentumBuffer = null;
        averageGradient = null;
    }
}
