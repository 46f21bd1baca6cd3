package dev.gradscope.train;

import dev.gradscope.nn.Optimizer;
import java.util.Locale;

/**
 * Keras's {@code LearningRateScheduler(schedule)}: before every epoch, sets the optimizer's learning rate to
 * {@code schedule.rate(epoch, initialRate)}. The built-in schedules are PyTorch's epoch schedulers, which Keras
 * users write as such functions: {@link #step} ({@code StepLR}), {@link #exponential} ({@code ExponentialLR}) and
 * {@link #cosine} ({@code CosineAnnealingLR}, Keras's {@code CosineDecay} with {@code alpha = minRate / initial}).
 *
 * <p>The schedule is a function of the epoch and the initial rate, the optimizer's when training begins, not of
 * the rate before; so a resumed run ({@link FitOptions.Builder#resumeFrom}), whose optimizer is built at the
 * rate the run started with (a training state does not change it), sets the rates the run that never stopped
 * had. Every epoch's rate is in the history as {@code learning_rate};
 * on a GPU the trainer captures its step graphs again after a change (they hold the rate). Combined with
 * {@link ReduceLROnPlateau}, the schedule sets every epoch's rate and so undoes the plateau's reductions: use one
 * or the other.
 */
public final class LearningRateScheduler implements Callback {
    /** A learning rate per epoch. */
    @FunctionalInterface
    public interface Schedule {
        /**
         * @param epoch       the epoch about to train, from 0
         * @param initialRate the optimizer's rate when training began
         * @return the epoch's rate, finite and > 0
         */
        double rate(int epoch, double initialRate);
    }

    private final Schedule schedule;
    private final String description;
    private Optimizer optimizer;
    private double initialRate;

    public LearningRateScheduler(Schedule schedule) {
        this(schedule, "a custom schedule");
    }

    private LearningRateScheduler(Schedule schedule, String description) {
        this.schedule = schedule;
        this.description = description;
    }

    /** PyTorch's {@code StepLR(step_size, gamma)}: the rate times {@code gamma} every {@code stepSize} epochs. */
    public static LearningRateScheduler step(int stepSize, double gamma) {
        if (stepSize < 1 || !(gamma > 0 && gamma <= 1)) {
            throw new IllegalArgumentException("a step schedule needs a step size >= 1 epoch and 0 < gamma <= 1, got "
                    + stepSize + " and " + gamma);
        }
        return new LearningRateScheduler((epoch, initial) -> initial * Math.pow(gamma, epoch / stepSize),
                String.format(Locale.ROOT, "step:%d:%s", stepSize, gamma));
    }

    /** PyTorch's {@code ExponentialLR(gamma)}: the rate times {@code gamma} every epoch. */
    public static LearningRateScheduler exponential(double gamma) {
        if (!(gamma > 0 && gamma <= 1)) {
            throw new IllegalArgumentException("an exponential schedule needs 0 < gamma <= 1, got " + gamma);
        }
        return new LearningRateScheduler((epoch, initial) -> initial * Math.pow(gamma, epoch),
                String.format(Locale.ROOT, "exponential:%s", gamma));
    }

    /**
     * Keras's {@code CosineDecay(initial, decay_steps = epochs, alpha = minRate / initial)} counted in epochs, which
     * is PyTorch's {@code CosineAnnealingLR(T_max = epochs, eta_min = minRate)} up to {@code epochs}: from the
     * initial rate at epoch 0 along half a cosine towards {@code minRate}, which epoch {@code epochs} reaches. From
     * there on the rate stays at {@code minRate}, as Keras's does; PyTorch's would rise again along the cosine.
     */
    public static LearningRateScheduler cosine(int epochs, double minRate) {
        if (epochs < 1 || !(minRate >= 0) || Double.isInfinite(minRate)) {
            throw new IllegalArgumentException("a cosine schedule needs epochs >= 1 and a finite minimum rate >= 0,"
                    + " got " + epochs + " and " + minRate);
        }
        return new LearningRateScheduler((epoch, initial) -> minRate
                + (initial - minRate) * (1 + Math.cos(Math.PI * Math.min(epoch, epochs) / epochs)) / 2,
                String.format(Locale.ROOT, "cosine:%s over %d epochs", minRate, epochs));
    }

    /** What the schedule is, e.g. {@code step:10:0.5}. */
    public String describe() {
        return description;
    }

    @Override
    public void onTrainBegin(TrainingRun run) {
        optimizer = run.model().optimizer();
        initialRate = optimizer.learningRate();
    }

    @Override
    public void onEpochBegin(int epoch) {
        double rate = schedule.rate(epoch, initialRate);
        if (!Optimizer.isPositiveFloat(rate)) {
            throw new IllegalStateException(description + " gives epoch " + (epoch + 1) + " the learning rate " + rate
                    + "; a rate must be above 0 and finite as a float");
        }
        if (rate != optimizer.learningRate()) {
            optimizer.setLearningRate(rate);
        }
    }

    /** The rate the schedule gives {@code epoch} (from 0) when training began at {@code initialRate}. */
    public double rate(int epoch, double initialRate) {
        return schedule.rate(epoch, initialRate);
    }
}
