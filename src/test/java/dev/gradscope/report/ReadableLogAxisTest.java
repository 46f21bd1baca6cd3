package dev.gradscope.report;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ReadableLogAxisTest {
    private static double[] major(double lo, double hi, int maxTicks) {
        return ReadableLogAxis.ticks(lo, hi, maxTicks)[0];
    }

    @Test
    void aFewDecadesGetOneTwoFiveSteps() {
        assertArrayEquals(new double[] {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}, major(0.009, 1.1, 10));
    }

    @Test
    void manyDecadesGetPowersOfTen() {
        assertArrayEquals(new double[] {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1}, major(8e-7, 1.5, 10));
        double[][] both = ReadableLogAxis.ticks(8e-7, 1.5, 10);
        assertTrue(both[1].length > 0, "powers of ten come with minor grid lines at 2..9");
    }

    @Test
    void veryManyDecadesGetEveryNthPower() {
        double[] ticks = major(1e-30, 1e30, 8);
        assertTrue(ticks.length <= 8 && ticks.length >= 2, () -> ticks.length + " ticks");
        assertArrayEquals(new double[] {1e-30, 1e-20, 1e-10, 1, 1e10, 1e20, 1e30}, ticks);
    }

    @Test
    void lessThanADecadeGetsEvenSteps() {
        assertArrayEquals(new double[] {0.4, 0.6, 0.8, 1.0, 1.2}, major(0.35, 1.25, 5));
        assertArrayEquals(new double[] {1, 1.5, 2, 2.5}, major(0.9, 2.6, 5));
    }

    @Test
    void neverMoreThanTheRoomAllows() {
        for (double lo : new double[] {1e-300, 1e-9, 0.3, 0.999, 7}) {
            for (double factor : new double[] {1.0001, 1.5, 3, 30, 1e4, 1e20}) {
                for (int max = 2; max <= 12; max++) {
                    double[] ticks = major(lo, lo * factor, max);
                    int limit = max;
                    assertTrue(ticks.length <= Math.max(limit, 3), () -> ticks.length + " ticks for " + lo + " x" + factor);
                    for (double t : ticks) {
                        assertTrue(t >= lo && t <= lo * factor, t + " outside [" + lo + ", " + lo * factor + "]");
                    }
                }
            }
        }
    }
}
