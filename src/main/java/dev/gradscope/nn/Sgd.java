package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Stochastic gradient descent with optional momentum and Nesterov momentum, Keras's defaults and rule
 * (learning rate 0.01, momentum 0): {@code v = momentum v - lr g}, then {@code p += v}, or with
 * Nesterov {@code p += momentum v - lr g}. With a weight decay {@code wd > 0}, Keras 3's decoupled form: before
 * each update {@code p -= p * wd * lr}, in the update's own pass. The update counts its steps on the device
 * (Keras's {@code iterations}), from which a per-step schedule (a warmup, a cosine decay) gives each its rate.
 */
public final class Sgd extends BaseOptimizer {
    private final double momentum;
    private final boolean nesterov;
    private Backend backend;
    private Tensor velocity;

    public Sgd() {
        this(0.01);
    }

    public Sgd(double learningRate) {
        this(learningRate, 0, false);
    }

    public Sgd(double learningRate, double momentum, boolean nesterov) {
        this(learningRate, momentum, nesterov, 0);
    }

    public Sgd(double learningRate, double momentum, boolean nesterov, double weightDecay) {
        super("SGD", learningRate, weightDecay);
        if (!Optimizer.isFloatFraction(momentum)) {
            throw new IllegalArgumentException("SGD: need 0 <= momentum < 1 as a float; got momentum=" + momentum);
        }
        this.momentum = momentum;
        this.nesterov = nesterov;
    }

    @Override
    public void build(Backend backend, int parameterCount) {
        close();
        this.backend = backend;
        if (momentum != 0) {
            velocity = backend.allocate(DType.FLOAT32, parameterCount);
        }
        allocateCount(backend);
    }

    @Override
    public void step(Tensor parameters, Tensor gradients, StepEnd end) {
        backend.sgdUpdate(parameters, gradients, velocity, (float) learningRate(), stepSchedule(), (float) momentum,
                nesterov, (float) weightDecay(), count(), end); // which also counts the update
    }

    /** The momentum's velocity (none without momentum). */
    @Override
    public Map<String, Tensor> stateBuffers() {
        return velocity == null ? Map.of() : Map.of("velocity", velocity);
    }

    @Override
    public String id() {
        return "sgd";
    }

    @Override
    public Map<String, Object> config() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("name", id());
        c.put("learning_rate", learningRate());
        c.put("momentum", momentum);
        c.put("nesterov", nesterov);
        c.put("weight_decay", weightDecay());
        return c;
    }

    @Override
    public void close() {
        Tensor.closeAll(velocity);
        closeCount();
        velocity = null;
    }
}
