package dev.gradscope.cli;

import dev.gradscope.nn.Optimizer;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.train.LearningRateScheduler;
import java.util.Locale;
import java.util.function.Function;

/**
 * {@code --lr-schedule}: {@code step:EPOCHS:GAMMA}, {@code exponential:GAMMA} or {@code cosine[:MIN_LR[:EPOCHS]]},
 * read into a {@link LearningRateScheduler} (per epoch), or {@code cosine-decay:DECAY_STEPS[:ALPHA]}, read into the
 * decay of a per-step {@link StepSchedule} (the update computes its rate; the warmup comes from {@code
 * --warmup-steps}); and the canonical text the run's config records (the cosine's length made explicit, so that a
 * resumed run with more epochs keeps the schedule it started with).
 *
 * @param scheduler    the per-epoch schedule, or null for a per-step one
 * @param stepSchedule the per-step decay (no warmup yet), or null for a per-epoch schedule
 */
record ScheduleOption(LearningRateScheduler scheduler, StepSchedule stepSchedule, String canonical) {
    static final String FORMS = "step:EPOCHS:GAMMA, exponential:GAMMA, cosine[:MIN_LR[:EPOCHS]] or"
            + " cosine-decay:DECAY_STEPS[:ALPHA]";

    ScheduleOption(LearningRateScheduler scheduler, String canonical) {
        this(scheduler, null, canonical);
    }

    /**
     * @param text        the option's value
     * @param epochs      the run's epochs: the cosine's length unless the text gives one, and the epochs whose
     *                    rates must be ones a float holds above 0
     * @param initialRate the optimizer's learning rate, which the schedule starts from
     * @param resumed     whether the schedule is a saved run's (which --resume cannot change)
     * @param invalid     what a bad value becomes
     */
    static ScheduleOption parse(String text, int epochs, double initialRate, boolean resumed,
                                Function<String, RuntimeException> invalid) {
        String[] parts = text.trim().split(":", -1);
        String kind = parts[0].trim().toLowerCase(Locale.ROOT);
        ScheduleOption option;
        try {
            switch (kind) {
                case "step" -> {
                    requireParts(parts, 3, 3, text, invalid);
                    int stepSize = integer(parts[1], "EPOCHS", text, invalid);
                    double gamma = real(parts[2], "GAMMA", text, invalid);
                    option = new ScheduleOption(LearningRateScheduler.step(stepSize, gamma),
                            "step:" + stepSize + ":" + gamma);
                }
                case "exponential" -> {
                    requireParts(parts, 2, 2, text, invalid);
                    double gamma = real(parts[1], "GAMMA", text, invalid);
                    option = new ScheduleOption(LearningRateScheduler.exponential(gamma), "exponential:" + gamma);
                }
                case "cosine" -> {
                    requireParts(parts, 1, 3, text, invalid);
                    double minRate = parts.length > 1 ? real(parts[1], "MIN_LR", text, invalid) : 0;
                    int length = parts.length > 2 ? integer(parts[2], "EPOCHS", text, invalid) : epochs;
                    if (minRate >= initialRate) {
                        throw invalid.apply("--lr-schedule " + text + ": the cosine's minimum rate " + minRate
                                + " must be below the learning rate it starts from, " + initialRate);
                    }
                    option = new ScheduleOption(LearningRateScheduler.cosine(length, minRate),
                            "cosine:" + minRate + ":" + length);
                }
                case "cosine-decay" -> {
                    requireParts(parts, 2, 3, text, invalid);
                    int decaySteps;
                    try {
                        decaySteps = Integer.parseInt(parts[1].trim());
                    } catch (NumberFormatException e) {
                        throw invalid.apply("--lr-schedule " + text + ": DECAY_STEPS must be a whole number of"
                                + " steps below 2^31, got '" + parts[1] + "'; the forms are " + FORMS);
                    }
                    if (decaySteps < 1) {
                        throw invalid.apply("--lr-schedule " + text + ": DECAY_STEPS must be at least 1 step, got "
                                + decaySteps);
                    }
                    double alpha = parts.length > 2 ? real(parts[2], "ALPHA", text, invalid) : 0;
                    return new ScheduleOption(null, StepSchedule.cosineDecay(0, 0, decaySteps, alpha),
                            "cosine-decay:" + decaySteps + ":" + alpha);
                }
                default -> throw invalid.apply("--lr-schedule: unknown schedule '" + parts[0] + "'; valid: " + FORMS);
            }
        } catch (IllegalArgumentException e) {
            throw invalid.apply("--lr-schedule " + text + ": " + e.getMessage());
        }
        for (int epoch = 0; epoch < epochs; epoch++) {
            double rate = option.scheduler().rate(epoch, initialRate);
            if (!Optimizer.isPositiveFloat(rate)) {
                throw invalid.apply("--lr-schedule " + text + " gives epoch " + (epoch + 1) + " of " + epochs
                        + " a learning rate of " + rate + ", which is not above 0 as a float"
                        + (resumed ? "; the saved run's schedule cannot go on that far: train at most "
                                + epochsText(epoch) : kind.equals("cosine") ? "; give the cosine a minimum rate above 0"
                                        + " (cosine:MIN_LR) or train at most " + epochsText(epoch) : ""));
            }
        }
        return option;
    }

    private static int integer(String field, String name, String text, Function<String, RuntimeException> invalid) {
        try {
            return Integer.parseInt(field.trim());
        } catch (NumberFormatException e) {
            throw invalid.apply("--lr-schedule " + text + ": " + name + " must be a whole number of epochs, got '"
                    + field + "'; the forms are " + FORMS);
        }
    }

    private static double real(String field, String name, String text, Function<String, RuntimeException> invalid) {
        try {
            return Double.parseDouble(field.trim());
        } catch (NumberFormatException e) {
            throw invalid.apply("--lr-schedule " + text + ": " + name + " must be a number, got '" + field
                    + "'; the forms are " + FORMS);
        }
    }

    private static void requireParts(String[] parts, int min, int max, String text,
                                     Function<String, RuntimeException> invalid) {
        if (parts.length < min || parts.length > max) {
            throw invalid.apply("--lr-schedule " + text + ": expected " + FORMS);
        }
    }

    /** "1 epoch", "3 epochs". */
    private static String epochsText(int epochs) {
        return epochs + (epochs == 1 ? " epoch" : " epochs");
    }
}
