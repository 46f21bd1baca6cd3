package dev.gradscope.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import org.junit.jupiter.api.Test;

/**
 * The per-step schedule against Keras 3's {@code CosineDecay} (keras/src/optimizers/schedules/
 * learning_rate_schedule.py), written out here in double with {@code Math.cos}, at chosen steps: the first, the last
 * of the warmup, its end, the middle of the decay, its end and past it.
 */
class StepScheduleTest {
    /**
     * Keras's {@code CosineDecay(initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps)} at
     * {@code step}; {@code warmupTarget} NaN stands for None.
     */
    private static double keras(double initial, int decaySteps, double alpha, double warmupTarget, int warmupSteps,
                                long step) {
        if (Double.isNaN(warmupTarget)) {
            double s = Math.min(step, decaySteps);
            return initial * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * s / decaySteps)) + alpha);
        }
        double s = Math.min(step, decaySteps + warmupSteps);
        if (s < warmupSteps) {
            return (warmupTarget - initial) * (s / warmupSteps) + initial;
        }
        double completed = (s - warmupSteps) / decaySteps;
        return warmupTarget * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * completed)) + alpha);
    }

    private static void assertRate(double expected, double actual, double peak, String what) {
        assertTrue(Math.abs(expected - actual) <= Tolerances.SCHEDULE_RATE_OF_PEAK * peak,
                what + ": expected " + expected + ", got " + actual);
    }

    @Test
    void aWarmupThenACosineDecayIsKerasCosineDecayWithAWarmupTarget() {
        double lr = 3e-3;
        StepSchedule schedule = StepSchedule.cosineDecay(1e-4, 100, 1000, 0.05);
        for (long step : new long[] {0, 1, 50, 99, 100, 101, 350, 600, 1099, 1100, 1101, 5000}) {
            assertRate(keras(1e-4, 1000, 0.05, lr, 100, step), schedule.rate(lr, step), lr, "step " + step);
        }
        assertEquals(1e-4, schedule.rate(lr, 0), "the warmup starts at its start rate, exactly");
        assertEquals(lr * (1 - 0.05 + 0.05), schedule.rate(lr, 100), "the decay starts at the rate, exactly");
        assertRate(lr * 0.05, schedule.rate(lr, 1100), lr, "the decay ends at alpha times the rate");
        assertEquals(schedule.rate(lr, 1100), schedule.rate(lr, 1_000_000), "and stays there");
        assertRate((lr + 0.05 * lr) / 2, schedule.rate(lr, 600), lr, "half way: the middle of the two");
    }

    @Test
    void aCosineDecayWithoutWarmupIsKerasCosineDecayWithoutWarmupTarget() {
        StepSchedule schedule = StepSchedule.cosineDecay(0, 0, 7, 0);
        for (long step = 0; step <= 9; step++) {
            assertRate(keras(1e-3, 7, 0, Double.NaN, 0, step), schedule.rate(1e-3, step), 1e-3, "step " + step);
        }
        assertEquals(1e-3, schedule.rate(1e-3, 0));
    }

    @Test
    void aWarmupAloneRisesLinearlyThenHoldsTheRate() {
        StepSchedule schedule = StepSchedule.warmup(0, 4);
        assertEquals(0.0, schedule.rate(2e-3, 0));
        assertEquals(2e-3 * (1 / 4.0), schedule.rate(2e-3, 1));
        assertEquals(2e-3 * (3 / 4.0), schedule.rate(2e-3, 3));
        assertEquals(2e-3, schedule.rate(2e-3, 4));
        assertEquals(2e-3, schedule.rate(2e-3, 1 << 30));
    }

    @Test
    void noScheduleIsTheLearningRateItselfAtEveryStep() {
        assertEquals(false, StepSchedule.NONE.isScheduled());
        for (long step : new long[] {0, 1, 123_456_789}) {
            assertEquals(1.2345e-3, StepSchedule.NONE.rate(1.2345e-3, step));
        }
    }

    @Test
    void theSeriesCosineIsCosOverTheHalfTurn() {
        for (int i = 0; i <= 1000; i++) {
            double x = Math.PI * i / 1000;
            assertTrue(Math.abs(Math.cos(x) - StepSchedule.cosine(x)) <= Tolerances.SCHEDULE_RATE_OF_PEAK,
                    "cos(" + x + ")");
        }
        assertEquals(1.0, StepSchedule.cosine(0));
    }

    /**
     * A decay of over a billion steps puts a step within 2e-9 of pi, where the series is a rounding below -1: the rate
     * must stay at 0 rather than go negative (the reviewer's case; exactly it is +2.9e-21).
     */
    @Test
    void theRateNearTheEndOfAVeryLongDecayIsNeverNegative() {
        StepSchedule schedule = StepSchedule.cosineDecay(0, 0, 1829488165, 0);
        double rate = schedule.rate(1e-3, 1829488163);
        assertTrue(rate >= 0 && rate < 1e-18, "rate " + rate);
        assertEquals(0.0, schedule.rate(1e-3, 1829488165));
    }

    @Test
    void badSchedulesNameWhatIsWrong() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new StepSchedule(-1e-3, 5, 0, 0)).getMessage()
                .contains("the warmup's start rate must be a finite number >= 0, got -0.001"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new StepSchedule(0, -1, 0, 0)).getMessage()
                .contains("must be >= 0, got -1 and 0"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new StepSchedule(0, 0, 10, 1.5)).getMessage()
                .contains("the cosine's alpha must be in [0, 1], got 1.5"));
        assertThrows(IllegalArgumentException.class, () -> new StepSchedule(0, 0, 10, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> new StepSchedule(Double.NaN, 3, 10, 0));
    }
}
