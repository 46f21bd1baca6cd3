package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Adam (Kingma and Ba, 2015) with Keras's defaults and update rule: learning rate 1e-3,
 * beta1 0.9, beta2 0.999, epsilon 1e-7, bias corrections folded into the step size
 * {@code lr sqrt(1 - beta2^t) / (1 - beta1^t)} and epsilon added outside the square root. With a weight
 * decay {@code wd > 0} it is AdamW (Loshchilov and Hutter, 2019) as Keras 3 has it: before each update
 * {@code p -= p * wd * lr}, decoupled from the gradient (Keras's {@code AdamW} defaults to wd 0.004), in the
 * update's own pass.
 *
 * <p>With {@code amsgrad} it is Keras's AMSGrad variant (Reddi et al., 2018): a third buffer {@code v_hat} keeps
 * the running maximum of {@code v}, {@code v_hat = max(v_hat, v)}, and the update divides by
 * {@code sqrt(v_hat) + epsilon} instead, so that no parameter's step grows back when its gradients shrink. PyTorch's
 * {@code amsgrad=True} keeps the maximum of the same {@code v} but takes the bias correction of {@code v} inside
 * its denominator; Keras folds it into the step size, as here.
 *
 * <p>The step count {@code t} lives on the device, beside the moments: the update computes its step size
 * from it there and advances it in the same launch, so a step has no argument that changes from one step to the
 * next and can be captured once as a graph ({@link Backend#capture}).
 */
public final class Adam extends BaseOptimizer {
    private final Moments moments;
    private final boolean amsgrad;
    private final String id;
    private Backend backend;
    private Tensor firstMoment;
    private Tensor secondMoment;
    private Tensor secondMomentMaximum; // only with amsgrad: Keras's velocity_hats

    public Adam() {
        this(1e-3);
    }

    public Adam(double learningRate) {
        this(learningRate, 0.9, 0.999, 1e-7);
    }

    public Adam(double learningRate, double beta1, double beta2, double epsilon) {
        this(learningRate, beta1, beta2, epsilon, 0);
    }

    public Adam(double learningRate, double beta1, double beta2, double epsilon, double weightDecay) {
        this(learningRate, beta1, beta2, epsilon, weightDecay, false);
    }

    /** Adam, or AMSGrad when {@code amsgrad}. */
    public Adam(double learningRate, double beta1, double beta2, double epsilon, double weightDecay,
                boolean amsgrad) {
        this("adam", learningRate, beta1, beta2, epsilon, weightDecay, amsgrad);
    }

    /** Keras's {@code AdamW}'s default weight decay. */
    public static final double ADAMW_WEIGHT_DECAY = 0.004;

    /**
     * Keras's {@code AdamW}: this Adam with id {@code adamw}, which configs and training states record (Keras's
     * {@code AdamW} is its {@code Adam} with a weight decay that defaults to {@value #ADAMW_WEIGHT_DECAY}).
     */
    public static Adam adamW(double learningRate, double weightDecay, boolean amsgrad) {
        return new Adam("adamw", learningRate, 0.9, 0.999, 1e-7, weightDecay, amsgrad);
    }

    private Adam(String id, double learningRate, double beta1, double beta2, double epsilon, double weightDecay,
                 boolean amsgrad) {
        super(id.equals("adamw") ? "AdamW" : "Adam", learningRate, weightDecay);
        this.id = id;
        this.amsgrad = amsgrad;
        this.moments = Moments.of("Adam", beta1, beta2, epsilon);
    }

    @Override
    public void build(Backend backend, int parameterCount) {
        close();
        this.backend = backend;
        firstMoment = backend.allocate(DType.FLOAT32, parameterCount);
        secondMoment = backend.allocate(DType.FLOAT32, parameterCount);
        allocateCount(backend);
        if (amsgrad) {
            secondMomentMaximum = backend.allocate(DType.FLOAT32, parameterCount);
        }
    }

    @Override
    public void step(Tensor parameters, Tensor gradients, StepEnd end) {
        // which also counts the update
        backend.adamUpdate(parameters, gradients, firstMoment, secondMoment, secondMomentMaximum, learningRate(),
                stepSchedule(), moments.beta1(), moments.beta2(), (float) moments.epsilon(), (float) weightDecay(),
                count(), end);
    }

    /** Whether this is Keras's AMSGrad variant. */
    public boolean amsgrad() {
        return amsgrad;
    }

    /** The first and second moments, Keras's {@code momentums} and {@code velocities}; AMSGrad's {@code v_hat}. */
    @Override
    public Map<String, Tensor> stateBuffers() {
        if (firstMoment == null) {
            return Map.of();
        }
        Map<String, Tensor> buffers = new LinkedHashMap<>();
        buffers.put("m", firstMoment);
        buffers.put("v", secondMoment);
        if (secondMomentMaximum != null) {
            buffers.put("v_hat", secondMomentMaximum);
        }
        return buffers;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public Map<String, Object> config() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("name", id());
        c.put("learning_rate", learningRate());
        moments.putInto(c);
        c.put("amsgrad", amsgrad);
        c.put("weight_decay", weightDecay());
        return c;
    }

    @Override
    public void close() {
        Tensor.closeAll(firstMoment, secondMoment, secondMomentMaximum);
        closeCount();
        secondMomentMaximum = null;
        firstMoment = null;
        secondMoment = null;
    }
}
