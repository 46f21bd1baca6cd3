package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Nadam (Dozat, 2016, "Incorporating Nesterov Momentum into Adam"): Adam with Nesterov momentum, with Keras 3's
 * defaults and update rule: learning rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7. At update {@code t} (from
 * 1), after the decoupled weight decay {@code p -= p * wd * lr} (when wd > 0):
 * <pre>
 * u_t = beta1 (1 - 0.5 * 0.96^t),   u_t+1 = beta1 (1 - 0.5 * 0.96^(t+1))
 * u_product = u_product * beta1 * (1 - 0.5 * 0.96^t)      (Keras's _u_product: the product of u_1 .. u_t)
 * m = m + (g - m)(1 - beta1),        v = v + (g^2 - v)(1 - beta2)
 * m_hat = u_t+1 m / (1 - u_product u_t+1) + (1 - u_t) g / (1 - u_product)
 * v_hat = v / (1 - beta2^t)
 * p -= m_hat lr / (sqrt(v_hat) + epsilon)
 * </pre>
 * Keras 3 takes {@code 0.96^t}; the paper and Keras 2 took {@code 0.96^(0.004 t)}, a schedule that moves far
 * more slowly, and PyTorch's {@code NAdam} takes {@code 0.96^(0.004 t)} too (its {@code momentum_decay} 0.004),
 * with epsilon 1e-8 and a learning rate of 2e-3. This follows Keras 3. The powers are computed in double by
 * repeated squaring and the rest in float as Keras computes it ({@link Backend#nadamScalars}).
 *
 * <p>The step count and {@code u_product} (which starts at 1) live on the device, beside the moments: the update
 * reads both there and its last block advances them, so a step captured as a graph replays exactly. Both are
 * state to resume from: the count is the training state's {@code iterations}, the product one of its
 * {@link #stateScalars}.
 */
public final class Nadam extends BaseOptimizer {
    private final Moments moments;
    private Backend backend;
    private Tensor firstMoment;
    private Tensor secondMoment;
    private Tensor uProduct; // FLOAT32 [1]: Keras's _u_product

    public Nadam() {
        this(1e-3);
    }

    public Nadam(double learningRate) {
        this(learningRate, 0.9, 0.999, 1e-7, 0);
    }

    public Nadam(double learningRate, double beta1, double beta2, double epsilon, double weightDecay) {
        super("Nadam", learningRate, weightDecay);
        this.moments = Moments.of("Nadam", beta1, beta2, epsilon);
    }

    @Override
    public void build(Backend backend, int parameterCount) {
        close();
        this.backend = backend;
        firstMoment = backend.allocate(DType.FLOAT32, parameterCount);
        secondMoment = backend.allocate(DType.FLOAT32, parameterCount);
        allocateCount(backend);
        uProduct = backend.fromHost(new float[] {1f}, 1);
    }

    @Override
    public void step(Tensor parameters, Tensor gradients, StepEnd end) {
        backend.nadamUpdate(parameters, gradients, firstMoment, secondMoment, (float) learningRate(),
                stepSchedule(), moments.beta1(), moments.beta2(),
                (float) moments.epsilon(), (float) weightDecay(), count(), uProduct, end);
    }

    /** Keras's names: {@code momentum} and {@code velocity}. */
    @Override
    public Map<String, Tensor> stateBuffers() {
        if (firstMoment == null) {
            return Map.of();
        }
        Map<String, Tensor> buffers = new LinkedHashMap<>();
        buffers.put("momentum", firstMoment);
        buffers.put("velocity", secondMoment);
        return buffers;
    }

    /** {@code u_product}, the momentum schedule's product so far (1 before the first update). Reads the device. */
    @Override
    public Map<String, Float> stateScalars() {
        if (uProduct == null) {
            return Map.of();
        }
        return Map.of(U_PRODUCT, uProduct.toFloatArray()[0]);
    }

    @Override
    public void setStateScalars(Map<String, Float> values) {
        if (uProduct == null) {
            throw new IllegalStateException("Nadam is not built yet: no u_product to set");
        }
        Float product = values.get(U_PRODUCT);
        if (product == null || values.size() != 1) {
            throw new IllegalArgumentException("Nadam's scalar state is " + U_PRODUCT + " alone, got "
                    + values.keySet());
        }
        if (!(product >= 0 && product <= 1)) {
            throw new IllegalArgumentException("Nadam's " + U_PRODUCT + ", a product of factors in [0, 1), must be in [0, 1],"
                    + " got " + product);
        }
        backend.copyFromHost(new float[] {product}, uProduct);
    }

    /** The name of Keras's {@code _u_product} in {@link #stateScalars}. */
    public static final String U_PRODUCT = "u_product";

    @Override
    public String id() {
        return "nadam";
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
        Tensor.closeAll(firstMoment, secondMoment, uProduct);
        closeCount();
        firstMoment = null;
        secondMoment = null;
        uProduct = null;
    }
}
