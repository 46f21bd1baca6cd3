package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.fail;

import dev.gradscope.Tolerances;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.DoubleSupplier;

/**
 * Central-difference gradient checks for float32 code, with deeplearning4j's rule: an analytic
 * derivative {@code a} and a numeric one {@code n} agree when {@code |a-n| / (|a|+|n|)} is below the
 * relative tolerance or {@code |a-n|} is below the absolute one.
 *
 * <p>The engine computes in float32, so the numeric side is noisy at about float epsilon times the
 * loss divided by the step; the tests keep losses small (a weighted sum of a few outputs) and the step
 * at {@link Tolerances#F32_GRADCHECK_STEP}, which keeps that noise near 1e-4 of typical gradients.
 */
final class GradientCheck {
    private GradientCheck() {
    }

    /** Something the check can nudge: element {@code i} of a float array that the loss reads. */
    interface Nudgeable {
        int size();

        float get(int i);

        void set(int i, float value);
    }

    /**
     * Compares {@code analytic[i]} against {@code (loss(x_i + h) - loss(x_i - h)) / 2h} for every
     * element; fails with the first mismatches and the worst one.
     */
    static void check(String what, Nudgeable x, float[] analytic, DoubleSupplier loss, double step,
                      double relativeTolerance, double absoluteTolerance) {
        if (analytic.length != x.size()) {
            fail(what + ": " + analytic.length + " analytic values for " + x.size() + " elements");
        }
        List<String> failures = new ArrayList<>();
        double worst = 0;
        String worstLine = "";
        for (int i = 0; i < x.size(); i++) {
            float original = x.get(i);
            x.set(i, original + (float) step);
            double plus = loss.getAsDouble();
            x.set(i, original - (float) step);
            double minus = loss.getAsDouble();
            x.set(i, original);
            // Divide by the step actually taken: float rounding changes x +- h.
            double taken = (double) (original + (float) step) - (double) (original - (float) step);
            double numeric = (plus - minus) / taken;
            double a = analytic[i];
            double absError = Math.abs(a - numeric);
            double relError = absError == 0 ? 0 : absError / (Math.abs(a) + Math.abs(numeric));
            if (relError > relativeTolerance && absError > absoluteTolerance) {
                String line = String.format(Locale.ROOT, "  [%d] analytic %.8g numeric %.8g (rel %.3g, abs %.3g)", i, a,
                        numeric, relError, absError);
                if (failures.size() < 5) {
                    failures.add(line);
                }
                if (relError > worst) {
                    worst = relError;
                    worstLine = line;
                }
            }
        }
        if (!failures.isEmpty()) {
            fail(what + ": gradient check failed for " + x.size() + " elements (rel tol " + relativeTolerance
                    + ", abs tol " + absoluteTolerance + ")\n" + String.join("\n", failures) + "\n worst:"
                    + worstLine);
        }
    }

    /** A float array as a {@link Nudgeable} that copies itself to the device after every change. */
    static Nudgeable hostMirror(float[] values, Runnable upload) {
        return new Nudgeable() {
            @Override
            public int size() {
                return values.length;
            }

            @Override
            public float get(int i) {
                return values[i];
            }

            @Override
            public void set(int i, float value) {
                values[i] = value;
                upload.run();
            }
        };
    }
}
