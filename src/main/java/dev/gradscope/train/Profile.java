package dev.gradscope.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What the gradient profiler measured during a run: per step and per parameter tensor the gradient
 * norm, the weight norm and the size of the update; per epoch and per layer how its units behaved.
 * Reachable from {@link History#profile()}.
 */
public final class Profile {
    /**
     * One parameter tensor of one layer (a kernel, a bias, a PReLU alpha).
     *
     * @param layerIndex index of the layer in the model
     * @param layerName  e.g. {@code dense_2}
     * @param layerType  e.g. {@code Dense}
     * @param parameter  {@code kernel}, {@code bias}, {@code alpha}, {@code beta}
     */
    public record Segment(int layerIndex, String layerName, String layerType, String parameter) {
        public boolean isKernel() {
            return parameter.equals("kernel");
        }
    }

    /**
     * The norms of one step, one value per {@link Segment}, taken before clipping.
     *
     * @param epoch         epoch (from 0)
     * @param step          step within the epoch (from 0)
     * @param globalStep    step since the start of training (from 0)
     * @param gradientNorms ||dL/dtheta|| per segment
     * @param weightNorms   ||theta|| per segment, before the update
     * @param updateNorms   ||theta_after - theta_before|| per segment (NaN when not measured)
     */
    public record StepStatistics(int epoch, int step, int globalStep, double[] gradientNorms, double[] weightNorms,
                                 double[] updateNorms) {
        /** ||update|| / ||weights|| of a segment: about 1e-3 is the usual healthy rate. */
        public double updateRatio(int segment) {
            return updateNorms[segment] / weightNorms[segment];
        }
    }

    /**
     * How one layer's units behaved over one epoch.
     *
     * @param epoch             epoch (from 0)
     * @param layerIndex        index of the layer in the model
     * @param layerName         e.g. {@code dense_2}
     * @param activation        the activation's id
     * @param units             number of units
     * @param deadFraction      fraction of units whose derivative was 0 for every example of the epoch
     * @param inactiveFraction  fraction of (example, unit) pairs with f'(z) = 0 (ReLU's flat half)
     * @param saturatedFraction fraction of (example, unit) pairs with |f'(z)| below the threshold, zeros
     *                          included
     * @param mean              mean activation over examples and units
     * @param std               standard deviation of the activations
     */
    public record UnitStatistics(int epoch, int layerIndex, String layerName, String activation, int units,
                                 double deadFraction, double inactiveFraction, double saturatedFraction,
                                 double mean, double std) {
        /** Saturated but still passing some gradient: sigmoid's and tanh's tails, not ReLU's flat half. */
        public double softSaturatedFraction() {
            double soft = saturatedFraction - inactiveFraction;
            // Both fractions are sums of float counts: a difference below one part in a million is noise.
            return soft < 1e-6 ? 0 : soft;
        }
    }

    private final List<Segment> segments;
    private final double saturationThreshold;
    private final List<StepStatistics> steps = new ArrayList<>();
    private final List<UnitStatistics> units = new ArrayList<>();

    public Profile(List<Segment> segments, double saturationThreshold) {
        this.segments = List.copyOf(segments);
        this.saturationThreshold = saturationThreshold;
    }

    /**
     * A profile with these steps and unit statistics, as a run's files hold them ({@code gradients.csv},
     * {@code layers.csv}), for reading a finished run back.
     */
    public static Profile of(List<Segment> segments, double saturationThreshold, List<StepStatistics> steps,
                             List<UnitStatistics> units) {
        Profile profile = new Profile(segments, saturationThreshold);
        for (StepStatistics s : steps) {
            if (s.gradientNorms().length != segments.size() || s.weightNorms().length != segments.size()
                    || s.updateNorms().length != segments.size()) {
                throw new IllegalArgumentException("step " + s.globalStep() + " has norms for "
                        + s.gradientNorms().length + " tensors, the profile " + segments.size());
            }
            profile.addStep(s);
        }
        units.forEach(profile::addUnits);
        return profile;
    }

    /** A copy that more steps and epochs may be added to without changing this one. */
    Profile copy() {
        Profile copy = new Profile(segments, saturationThreshold);
        copy.steps.addAll(steps);
        copy.units.addAll(units);
        return copy;
    }

    void addStep(StepStatistics s) {
        steps.add(s);
    }

    void addUnits(UnitStatistics u) {
        units.add(u);
    }

    public List<Segment> segments() {
        return segments;
    }

    public List<StepStatistics> steps() {
        return Collections.unmodifiableList(steps);
    }

    public List<UnitStatistics> units() {
        return Collections.unmodifiableList(units);
    }

    /** The |f'| below which a unit counts as saturated. */
    public double saturationThreshold() {
        return saturationThreshold;
    }

    /** Indices of the kernel segments, in layer order: one per Dense or Maxout layer, input side first. */
    public List<Integer> kernelSegments() {
        List<Integer> result = new ArrayList<>();
        for (int i = 0; i < segments.size(); i++) {
            if (segments.get(i).isKernel()) {
                result.add(i);
            }
        }
        return result;
    }

    /**
     * Mean gradient norm of each segment over the steps of one epoch (from 0), leaving out steps where
     * that norm was not finite, so a run that blew up is still described by its finite steps; NaN where
     * no step qualifies.
     */
    public double[] meanGradientNorms(int epoch) {
        return meanFiniteGradientNorms(steps.stream().filter(s -> s.epoch() == epoch).toList());
    }

    /** Mean of each segment's finite gradient norms over {@code steps}; NaN where none is finite. */
    public static double[] meanFiniteGradientNorms(List<StepStatistics> steps) {
        int n = steps.isEmpty() ? 0 : steps.get(0).gradientNorms().length;
        double[] mean = new double[n];
        for (int i = 0; i < n; i++) {
            double sum = 0;
            int count = 0;
            for (StepStatistics s : steps) {
                double v = s.gradientNorms()[i];
                if (Double.isFinite(v)) {
                    sum += v;
                    count++;
                }
            }
            mean[i] = count == 0 ? Double.NaN : sum / count;
        }
        return mean;
    }

    /**
     * The units a kernel feeds in one epoch: the first watched layer from the kernel's own (a Dense with an
     * activation) up to the next kernel's: an activation layer right after it (PReLU, Swish...), or after a
     * BatchNormalization or a Dropout; null when none was watched. It goes by layer positions only, so a profile
     * read back from a run's files, whose segments do not say their layers' types, finds the same units.
     */
    public UnitStatistics unitsFedBy(int layerIndex, int epoch) {
        int nextKernel = segments.stream().filter(s -> s.isKernel() && s.layerIndex() > layerIndex)
                .mapToInt(Segment::layerIndex).min().orElse(Integer.MAX_VALUE);
        UnitStatistics first = null;
        for (UnitStatistics u : units) {
            if (u.epoch() == epoch && u.layerIndex() >= layerIndex && u.layerIndex() < nextKernel
                    && (first == null || u.layerIndex() < first.layerIndex())) {
                first = u;
            }
        }
        return first;
    }

    /** Number of epochs with at least one recorded step. */
    public int epochs() {
        return steps.isEmpty() ? 0 : steps.get(steps.size() - 1).epoch() + 1;
    }
}
