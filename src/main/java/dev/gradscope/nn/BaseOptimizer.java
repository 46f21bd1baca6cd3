package dev.gradscope.nn;

/**
 * What every optimizer here shares, as Keras 3's {@code BaseOptimizer}: a learning rate that a schedule or a
 * plateau may change between steps, and decoupled weight decay (before each update
 * {@code p -= p * weightDecay * learningRate}, in the update's own op). Each update op also ends the step.
 */
abstract class BaseOptimizer implements Optimizer {
    private double learningRate;
    private final double weightDecay;

    /**
     * @param name         the optimizer's name in error messages
     * @param learningRate above 0 and finite as a float
     * @param weightDecay  at least 0 and finite as a float; 0 leaves the update exactly as without it
     */
    BaseOptimizer(String name, double learningRate, double weightDecay) {
        this.learningRate = Optimizer.requirePositiveRate(name, learningRate);
        this.weightDecay = Optimizer.requireWeightDecay(name, weightDecay);
    }

    @Override
    public final double learningRate() {
        return learningRate;
    }

    @Override
    public final void setLearningRate(double learningRate) {
        this.learningRate = Optimizer.requirePositiveRate(id(), learningRate);
    }

    /** Keras 3's {@code weight_decay}. */
    public final double weightDecay() {
        return weightDecay;
    }

    /** The backend's update op takes the whole step end. */
    @Override
    public final boolean endsSteps() {
        return true;
    }
}
