package dev.gradscope.cli;

import dev.gradscope.train.LearningRateScheduler;
import java.util.Locale;
import java.util.function.Function;

/**
 * {@code --lr-schedule}: {@code step:EPOCHS:GAMMA}, {@code exponential:GAMMA} or {@code cosine[:MIN_LR[:EPOCHS]]},
 * read into a {@link LearningRateScheduler} and the canonical text the run's config records (the cosine's length
 * made explicit, so that a resumed run with more epochs keeps the schedule it started with).
 */
record ScheduleOption(LearningRateScheduler scheduler, String canonical) {
    static final String FORMS = "step:EPOCHS:GAMMA, exponential:GAMMA or cosine[:MIN_LR[:EPOCHS]]";

    /**
     * @param text    the option's value
     * @param epochs  the run's epochs: the cosine's length unless the text gives one
     * @param invalid what a bad value becomes
     */
    static ScheduleOption parse(String text, int epochs, Function<String, RuntimeException> invalid) {
        String[] parts = text.trim().split(":", -1);
        String kind = parts[0].trim().toLowerCase(Locale.ROOT);
        try {
            switch (kind) {
                case "step" -> {
                    requireParts(parts, 3, 3, text, invalid);
                    int stepSize = Integer.parseInt(parts[1].trim());
                    double gamma = Double.parseDouble(parts[2].trim());
                    return new ScheduleOption(LearningRateScheduler.step(stepSize, gamma),
                            "step:" + stepSize + ":" + gamma);
                }
                case "exponential" -> {
                    requireParts(parts, 2, 2, text, invalid);
                    double gamma = Double.parseDouble(parts[1].trim());
                    return new ScheduleOption(LearningRateScheduler.exponential(gamma), "exponential:" + gamma);
                }
                case "cosine" -> {
                    requireParts(parts, 1, 3, text, invalid);
                    double minRate = parts.length > 1 ? Double.parseDouble(parts[1].trim()) : 0;
                    int length = parts.length > 2 ? Integer.parseInt(parts[2].trim()) : epochs;
                    if (minRate == 0 && length < epochs) {
                        throw invalid.apply("--lr-schedule " + text + ": the cosine reaches a rate of 0 after " + length
                                + " epochs, and a run of " + epochs + " cannot train at 0; give it a minimum rate"
                                + " above 0 (cosine:MIN_LR:" + length + ") or train at most " + length + " epochs");
                    }
                    return new ScheduleOption(LearningRateScheduler.cosine(length, minRate),
                            "cosine:" + minRate + ":" + length);
                }
                default -> throw invalid.apply("--lr-schedule: unknown schedule '" + parts[0] + "'; valid: " + FORMS);
            }
        } catch (NumberFormatException e) {
            throw invalid.apply("--lr-schedule " + text + ": " + e.getMessage() + " is not a number; the forms are "
                    + FORMS);
        } catch (IllegalArgumentException e) {
            throw invalid.apply("--lr-schedule " + text + ": " + e.getMessage());
        }
    }

    private static void requireParts(String[] parts, int min, int max, String text,
                                     Function<String, RuntimeException> invalid) {
        if (parts.length < min || parts.length > max) {
            throw invalid.apply("--lr-schedule " + text + ": expected " + FORMS);
        }
    }
}
