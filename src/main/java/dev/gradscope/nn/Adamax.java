package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Adamax (Kingma and Ba, 2015, section 7): Adam with the infinity norm for its second moment, with Keras 3's
 * defaults and update rule: learning rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7. At update {@code t} (from
 * 1), after the decoupled weight decay {@code p -= p * wd * lr} (when wd > 0):
 * <pre>
 * m = m + (g - m)(1 - beta1)
 * u = max(beta2 u, |g|)
 * p -= lr m / ((1 - beta1^t) (u + epsilon))
 * </pre>
 * Epsilon is added to {@code u} inside the product, as Keras 3 does; PyTorch's {@code Adamax} adds it to
 * {@code |g|} inside the maximum ({@code max(beta2 u, |g| + eps)}, eps 1e-8) and defaults its rate to 2e-3.
 * {@code u} needs no bias correction: the maximum is not an average that starts at 0. {@code 1 - beta1^t} is
 * computed in double from the device's step count and rounded to float ({@link Backend#adamaxUpdate}), so a step
 * captured as a graph replays exactly.
 */
public final class Adamax extends BaseOptimizer {
    private final Moments moments;
    private Backend backend;
    private Tensor firstMoment;
    private Tensor infinityNorm;

    public Adamax() {
        this(1e-3);
    }

    public Adamax(double learningRate) {
        this(learningRate, 0.9, 0.999, 1e-7, 0);
    }

    public Adamax(double learningRate, double beta1, double beta2, double epsilon, double weightDecay) {
        super("Adamax", learningRate, weightDecay);
        this.moments = Moments.of("Adamax", beta1, beta2, epsilon);
    }

    @Override
    public void build(Backend backend, int parameterCount) {
        close();
        this.backend = backend;
        firstMoment = backend.allocate(DType.FLOAT32, parameterCount);
        infinityNorm = backend.allocate(DType.FLOAT32, parameterCount);
        allocateCount(backend);
    }

    @Override
    public void step(Tensor parameters, Tensor gradients, StepEnd end) {
        backend.adamaxUpdate(parameters, gradients, firstMoment, infinityNorm, (float) learningRate(),
                stepSchedule(), moments.beta1(), moments.beta2(),
                (float) moments.epsilon(), (float) weightDecay(), count(), end);
    }

    /** Keras's names: {@code momentum} ({@code m}) and {@code norm} ({@code u}). */
    @Override
    public Map<String, Tensor> stateBuffers() {
        if (firstMoment == null) {
            return Map.of();
        }
        Map<String, Tensor> buffers = new LinkedHashMap<>();
        buffers.put("momentum", firstMoment);
        buffers.put("norm", infinityNorm);
        return buffers;
    }

    @Override
    public String id() {
        return "adamax";
    }

    @Override
    public Map<String, Object> config() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("name", id());
        c.put("learning_rate", learningRate());
        moments.putInto(c);
        c.put("weight_decay", weightDecay());
        return c;
    }

    @Override
    public void close() {
        Tensor.closeAll(firstMoment, infinityNorm);
        closeCount();
        firstMoment = null;
        infinityNorm = null;
    }
}
