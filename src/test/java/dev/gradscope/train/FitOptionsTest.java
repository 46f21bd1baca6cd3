package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** FitOptions' defaults and the errors for values it refuses, which name the value. */
class FitOptionsTest {
    @Test
    void stepsPerGraphIsOneByDefaultAndMustBePositive() {
        assertEquals(1, FitOptions.builder().build().stepsPerGraph());
        assertEquals(8, FitOptions.builder().stepsPerGraph(8).build().stepsPerGraph());
        for (int bad : new int[] {0, -3}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> FitOptions.builder().stepsPerGraph(bad).build());
            assertTrue(e.getMessage().contains("steps per graph") && e.getMessage().contains("got " + bad),
                    e.getMessage());
        }
    }
}
