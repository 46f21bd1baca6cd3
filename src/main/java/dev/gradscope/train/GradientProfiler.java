package dev.gradscope.train;

import dev.gradscope.nn.Layer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.tensor.UpdateNorms;
import java.util.ArrayList;
import java.util.List;

/**
 * The gradient-flow profiler, on by default in {@code fit}. Every step, on the device that trains and
 * inside the step, it records per parameter tensor the weight norm and the size of the update (the
 * trainer already measures the gradient norm), and per layer how many units passed gradient, how many
 * were saturated, and the sum and sum of squares of their activations. The host reads these buffers
 * once per epoch into a {@link Profile}.
 *
 * <p>Cost per step: almost none of its own. The weight and update norms come out of the optimizer's
 * update ({@link TrainingRun#measureUpdate}), and a watched layer adds its unit statistics in its own
 * backward pass ({@link Layer#watchUnits}), where the activation's derivative is evaluated anyway: a
 * few additions per parameter and per activation. Only a layer that cannot (maxout) gets a pass of its own.
 *
 * <p>Graph-safe: its in-step hooks only queue device ops on buffers allocated at the start of training, and
 * the step's row of its tables is chosen on the device ({@link TrainingRun#stepIndex()}), so a step captured
 * as a CUDA graph with the profiler in it measures every replayed step. Its host counts come from
 * {@link TrainingRun#stepsThisEpoch()} and {@link TrainingRun#examplesThisEpoch()}.
 */
public final class GradientProfiler implements Callback {
    /**
     * The |f'(z)| below which a unit counts as saturated: a hundredth of a unit slope, where sigmoid is at
     * |z| > 4.6 and tanh at |z| > 3; ReLU's flat half counts too.
     */
    public static final double DEFAULT_SATURATION_THRESHOLD = 0.01;

    private final double saturationThreshold;
    private TrainingRun run;
    private Backend backend;
    private Profile profile;
    /** {@code [steps, 2, segments]}: per step of the epoch, the squared weight norms, then the squared update norms. */
    private Tensor updateTable;
    /** {@code [2, segments]}: the current step's, written by the optimizer's update ({@link #stepNorms}). */
    private Tensor stepUpdate;
    private UpdateNorms stepNorms;
    private final List<WatchedLayer> watched = new ArrayList<>();
    private int globalStepAtEpochStart;

    /**
     * A layer whose units are watched, with its device accumulator {@code [4, units]}; {@code inBackward}
     * when the layer fills it in its own backward pass.
     */
    private record WatchedLayer(int index, Layer layer, Tensor statistics, boolean inBackward) {
    }

    public GradientProfiler() {
        this(DEFAULT_SATURATION_THRESHOLD);
    }

    public GradientProfiler(double saturationThreshold) {
        if (!(saturationThreshold > 0)) {
            throw new IllegalArgumentException("saturation threshold must be > 0, got " + saturationThreshold);
        }
        this.saturationThreshold = saturationThreshold;
    }

    /** What was measured so far (complete after training). */
    public Profile profile() {
        return profile;
    }

    @Override
    public void onTrainBegin(TrainingRun run) {
        release();
        this.run = run;
        Sequential model = run.model();
        this.backend = model.backend();
        int segments = run.segments().size();
        Profile earlier = run.history().profile();
        if (earlier != null) {
            // A resumed run: its profile goes on from the finished epochs'.
            if (earlier.saturationThreshold() != saturationThreshold) {
                throw new IllegalArgumentException("the resumed run's profile counts |f'| below "
                        + earlier.saturationThreshold() + " as saturated, this profiler below " + saturationThreshold
                        + ": one profile cannot mix them");
            }
            profile = earlier.copy();
            // After the earlier profile's last step; at least where this epoch's first step is when every
            // earlier epoch had full steps (the earlier profile may end before the epochs it did not profile).
            globalStepAtEpochStart = run.initialEpoch() * run.stepsPerEpoch();
            if (!earlier.steps().isEmpty()) {
                globalStepAtEpochStart = Math.max(globalStepAtEpochStart,
                        earlier.steps().get(earlier.steps().size() - 1).globalStep() + 1);
            }
        } else {
            profile = new Profile(run.segments(), saturationThreshold);
            globalStepAtEpochStart = run.initialEpoch() * run.stepsPerEpoch();
        }
        updateTable = backend.allocate(DType.FLOAT32, run.stepsPerEpoch(), 2, segments);
        stepUpdate = backend.allocate(DType.FLOAT32, 2, segments);
        stepNorms = new UpdateNorms(run.segmentStarts(), stepUpdate.rows(0, 1).reshape(segments),
                stepUpdate.rows(1, 1).reshape(segments), updateTable, run.stepIndex());
        List<Layer> layers = model.layers();
        for (int i = 0; i < layers.size() - 1; i++) { // the output layer's softmax is the loss's business
            Layer layer = layers.get(i);
            if (!layer.hasOwnUnits()) {
                continue; // a Dropout: its units are the layer's before it, watched there
            }
            Tensor statistics = backend.allocate(DType.FLOAT32, 4, layer.outputUnits());
            watched.add(new WatchedLayer(i, layer, statistics,
                    layer.watchUnits(statistics, (float) saturationThreshold)));
        }
    }

    @Override
    public void onEpochBegin(int epoch) {
        // A step that never reaches its update (training stopped) keeps NaN: "not measured".
        backend.fill(updateTable, Float.NaN);
        for (WatchedLayer w : watched) {
            backend.fill(w.statistics(), 0f);
        }
    }

    /**
     * Inside the step: has the update measured into the fixed {@link #stepNorms}, which also store them into
     * the step's row of the update table (chosen on the device); statistics for maxout.
     */
    @Override
    public void onGradientsComputed(int epoch, int step) {
        run.measureUpdate(stepNorms);
        for (WatchedLayer w : watched) {
            Layer.Activity activity = w.inBackward() ? null : w.layer().lastActivity();
            if (activity != null) {
                backend.accumulateUnitStatistics(activity.kind(), activity.z(), activity.param(), activity.y(),
                        (float) saturationThreshold, w.statistics());
            }
        }
    }

    @Override
    public boolean graphSafe() {
        return true;
    }

    /** It reads the gradient norms at the epoch's end only: the optimizer may measure them. */
    @Override
    public boolean readsGradientNormsInStep() {
        return false;
    }

    @Override
    public void onEpochEnd(int epoch, java.util.Map<String, Double> logs) {
        int segments = run.segments().size();
        int steps = run.stepsThisEpoch();
        if (steps > 0) {
            float[] gradients = run.squaredGradientNorms().rows(0, steps).toFloatArray();
            float[] updates = updateTable.rows(0, steps).toFloatArray();
            for (int s = 0; s < steps; s++) {
                profile.addStep(new Profile.StepStatistics(epoch, s, globalStepAtEpochStart + s,
                        roots(gradients, s * segments, segments), roots(updates, 2 * s * segments, segments),
                        roots(updates, (2 * s + 1) * segments, segments)));
            }
        }
        globalStepAtEpochStart += steps;
        for (WatchedLayer w : watched) {
            Layer.Activity activity = w.layer().lastActivity();
            long examplesThisEpoch = run.examplesThisEpoch();
            if (activity == null || examplesThisEpoch == 0) {
                continue;
            }
            int units = w.layer().outputUnits();
            float[] st = w.statistics().toFloatArray();
            int dead = 0;
            double active = 0;
            double saturated = 0;
            double sum = 0;
            double sumOfSquares = 0;
            for (int u = 0; u < units; u++) {
                if (st[u] == 0) {
                    dead++;
                }
                active += st[u];
                saturated += st[units + u];
                sum += st[2 * units + u];
                sumOfSquares += st[3 * units + u];
            }
            double count = (double) examplesThisEpoch * units;
            double mean = sum / count;
            double variance = Math.max(0, sumOfSquares / count - mean * mean);
            profile.addUnits(new Profile.UnitStatistics(epoch, w.index(), w.layer().name(), activity.kind().id(),
                    units, (double) dead / units, 1 - active / count, saturated / count, mean, Math.sqrt(variance)));
        }
    }

    private static double[] roots(float[] squares, int from, int count) {
        double[] out = new double[count];
        for (int i = 0; i < count; i++) {
            out[i] = Math.sqrt(squares[from + i]);
        }
        return out;
    }

    @Override
    public void onTrainEnd(History history) {
        release();
    }

    /** Stops watching the layers and frees the device buffers; what was measured stays in the profile. */
    void release() {
        for (WatchedLayer w : watched) {
            if (w.inBackward()) {
                w.layer().watchUnits(null, 0f);
            }
            w.statistics().close();
        }
        watched.clear();
        Tensor.closeAll(updateTable, stepUpdate);
        updateTable = null;
        stepUpdate = null;
        stepNorms = null;
    }
}
