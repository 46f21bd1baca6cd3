package dev.gradscope.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The end-of-run reading of a {@link Profile}: a per-layer table and plain verdicts.
 *
 * <p>Thresholds, each a named constant:
 * <ul>
 *   <li>vanishing: the first layer's kernel receives less than {@value #VANISHING_RATIO} of the output
 *       layer's gradient norm (means over the first {@value #WINDOW} steps);</li>
 *   <li>exploding: it receives more than {@value #EXPLODING_RATIO} times the output layer's, or any
 *       kernel's gradient norm grows more than {@value #EXPLODING_GROWTH} times from the first steps to
 *       a largest above {@value #EXPLODING_NORM}, or starts above {@value #EXPLODING_NORM}, or a gradient
 *       becomes non-finite (a layer whose vanished gradient recovers grows as much, to an ordinary size);</li>
 *   <li>dying units: at least {@value #DEAD_FRACTION} of a layer's units passed no gradient in the last
 *       epoch;</li>
 *   <li>saturation: at least {@value #SATURATED_FRACTION} of a layer's activations sat where the slope is
 *       small but not zero ({@link Profile.UnitStatistics#softSaturatedFraction()}) in the last epoch.</li>
 * </ul>
 * Otherwise the verdict is healthy; a run without a profile gets one verdict, not profiled.
 *
 * @param layers   one row per layer with a kernel, input side first
 * @param verdicts what the numbers say, worst first
 */
public record Diagnosis(List<LayerRow> layers, List<Verdict> verdicts) {
    public static final double VANISHING_RATIO = 0.1;
    public static final double EXPLODING_RATIO = 10;
    public static final double EXPLODING_GROWTH = 1e4;
    /**
     * A kernel gradient norm above this at the start is exploding whatever the other layers do: with a
     * batch-mean loss, Glorot- or He-initialised networks start between about 0.01 and 5.
     */
    public static final double EXPLODING_NORM = 20;
    public static final double DEAD_FRACTION = 0.5;
    public static final double SATURATED_FRACTION = 0.5;
    /** Steps averaged for a "start" or "end" gradient norm: single steps are noisy. */
    public static final int WINDOW = 20;

    /**
     * One layer of the table.
     *
     * @param depth             1 for the layer nearest the input
     * @param layerName         e.g. {@code dense_1}
     * @param gradientNormStart mean ||dL/dW|| over the first steps
     * @param gradientNormEnd   mean ||dL/dW|| over the last steps
     * @param ratioToOutput     gradientNormStart / the output layer's
     * @param deadFraction      units that passed no gradient in the last epoch (NaN: not watched)
     * @param saturatedFraction activations in the small-slope region in the last epoch (NaN: not watched)
     */
    public record LayerRow(int depth, String layerName, double gradientNormStart, double gradientNormEnd,
                           double ratioToOutput, double deadFraction, double saturatedFraction) {
    }

    /** A finding and its sentence. */
    public record Verdict(Kind kind, String text) {
        @Override
        public String toString() {
            return text;
        }
    }

    /** What a verdict found; {@code NOT_PROFILED}: nothing to judge the gradient flow by (the profiler was off). */
    public enum Kind { NON_FINITE, EXPLODING, VANISHING, DEAD_UNITS, SATURATION, HEALTHY, NOT_PROFILED }

    /** Reads a run's history; a run without a profile gets no table and one verdict saying so. */
    public static Diagnosis of(History history) {
        Profile profile = history.profile();
        List<Verdict> verdicts = new ArrayList<>();
        if (history.nonFinite() != null) {
            verdicts.add(new Verdict(Kind.NON_FINITE, "exploding: " + history.nonFinite()));
        }
        if (profile == null || profile.steps().isEmpty()) {
            if (verdicts.isEmpty()) {
                verdicts.add(new Verdict(Kind.NOT_PROFILED, "no profile was recorded (the profiler was off)"));
            }
            return new Diagnosis(List.of(), verdicts);
        }
        List<Integer> kernels = profile.kernelSegments();
        List<Profile.StepStatistics> steps = profile.steps();
        int window = Math.min(WINDOW, steps.size());
        double[] start = kernelsOnly(Profile.meanFiniteGradientNorms(steps.subList(0, window)), kernels);
        double[] end = kernelsOnly(Profile.meanFiniteGradientNorms(steps.subList(steps.size() - window,
                steps.size())), kernels);
        int output = kernels.size() - 1;
        List<LayerRow> rows = new ArrayList<>();
        int lastEpoch = profile.epochs() - 1;
        for (int d = 0; d < kernels.size(); d++) {
            Profile.Segment segment = profile.segments().get(kernels.get(d));
            Profile.UnitStatistics units = profile.unitsFedBy(segment.layerIndex(), lastEpoch);
            rows.add(new LayerRow(d + 1, segment.layerName(), start[d], end[d], start[d] / start[output],
                    units == null ? Double.NaN : units.deadFraction(),
                    units == null ? Double.NaN : units.softSaturatedFraction()));
        }

        if (kernels.size() > 1) {
            double ratio = rows.get(0).ratioToOutput();
            if (ratio < VANISHING_RATIO) {
                verdicts.add(new Verdict(Kind.VANISHING, String.format(Locale.ROOT,
                        "vanishing: layer 1 (%s) receives 1/%s of the output layer's gradient",
                        rows.get(0).layerName(), round(1 / ratio))));
            } else if (ratio > EXPLODING_RATIO) {
                verdicts.add(new Verdict(Kind.EXPLODING, String.format(Locale.ROOT,
                        "exploding: gradient norm grew %sx across layers, from the output layer to layer 1 (%s)",
                        round(ratio), rows.get(0).layerName())));
            }
        }
        for (int d = 0; d < kernels.size(); d++) {
            if (start[d] > EXPLODING_NORM) {
                verdicts.add(new Verdict(Kind.EXPLODING, String.format(Locale.ROOT,
                        "exploding: %s's gradient norm starts at %s (healthy networks start below %s)",
                        rows.get(d).layerName(), round(start[d]), round(EXPLODING_NORM))));
                break;
            }
        }
        for (int d = 0; d < kernels.size(); d++) {
            double largest = maxNorm(steps, kernels.get(d));
            double growth = largest / start[d];
            if (growth > EXPLODING_GROWTH && largest > EXPLODING_NORM) {
                verdicts.add(new Verdict(Kind.EXPLODING, String.format(Locale.ROOT,
                        "exploding: %s's gradient norm grew %sx during training", rows.get(d).layerName(),
                        round(growth))));
                break;
            }
        }
        for (LayerRow row : rows) {
            if (row.deadFraction() >= DEAD_FRACTION) {
                verdicts.add(new Verdict(Kind.DEAD_UNITS, String.format(Locale.ROOT,
                        "dying units: %.0f%% of %s's units passed no gradient in the last epoch",
                        100 * row.deadFraction(), row.layerName())));
            }
            if (row.saturatedFraction() >= SATURATED_FRACTION) {
                verdicts.add(new Verdict(Kind.SATURATION, String.format(Locale.ROOT,
                        "saturation: %.0f%% of %s's activations sat where |f'| < %s in the last epoch",
                        100 * row.saturatedFraction(), row.layerName(), profile.saturationThreshold())));
            }
        }
        if (verdicts.isEmpty()) {
            verdicts.add(new Verdict(Kind.HEALTHY, String.format(Locale.ROOT,
                    "healthy: every layer receives between 1/%s and %sx of the output layer's gradient",
                    round(1 / VANISHING_RATIO), round(EXPLODING_RATIO))));
        }
        return new Diagnosis(rows, verdicts);
    }

    private static double[] kernelsOnly(double[] perSegment, List<Integer> kernels) {
        double[] out = new double[kernels.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = perSegment[kernels.get(i)];
        }
        return out;
    }

    private static double maxNorm(List<Profile.StepStatistics> steps, int segment) {
        double max = 0;
        for (Profile.StepStatistics s : steps) {
            double v = s.gradientNorms()[segment];
            max = Double.isFinite(v) ? Math.max(max, v) : max;
        }
        return max;
    }

    /** 70, 7.3, 0.25 or 1.2e+04: what a reader wants to see. */
    static String round(double x) {
        if (!Double.isFinite(x)) {
            return String.valueOf(x);
        }
        if (x >= 1e4) {
            return String.format(Locale.ROOT, "%.1e", x);
        }
        return x >= 10 ? String.format(Locale.ROOT, "%.0f", x) : String.format(Locale.ROOT, "%.2g", x);
    }

    /** The verdicts, one per line, then the table, for a terminal. */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        verdicts.forEach(v -> sb.append(v.text()).append('\n'));
        if (!layers.isEmpty()) {
            sb.append(String.format(Locale.ROOT, "%-6s %-14s %14s %14s %12s %8s %11s%n", "depth", "layer",
                    "|dW| start", "|dW| end", "/ output", "dead %", "saturated %"));
            for (LayerRow r : layers) {
                sb.append(String.format(Locale.ROOT, "%-6d %-14s %14.4g %14.4g %12.4g %8s %11s%n", r.depth(),
                        r.layerName(), r.gradientNormStart(), r.gradientNormEnd(), r.ratioToOutput(),
                        percent(r.deadFraction()), percent(r.saturatedFraction())));
            }
        }
        return sb.toString();
    }

    private static String percent(double fraction) {
        return Double.isNaN(fraction) ? "-" : String.format(Locale.ROOT, "%.1f", 100 * fraction);
    }
}
