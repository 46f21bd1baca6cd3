package dev.gradscope.train;

import dev.gradscope.data.TensorBoardEvents;
import dev.gradscope.nn.Sequential;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Keras's {@code TensorBoard(log_dir, histogram_freq)} callback: after every epoch, appends the epoch's logs to
 * event files that {@code tensorboard --logdir DIR} shows, with the gradient profiler's numbers beside them.
 *
 * <p>As Keras does, {@code DIR/train} gets the training metrics and {@code DIR/validation} the validation ones
 * under the same tags, {@code epoch_loss} and {@code epoch_accuracy}, so that TensorBoard draws both runs on one
 * chart; {@code epoch_learning_rate} goes to {@code train}. Epoch tags are at step {@code epoch} (from 0). When the
 * run is profiled, {@code train} also gets, per parameter tensor (named as in a weights file, {@code dense.kernel})
 * and at the global step (from 0), {@code gradient_norm/...}, {@code weight_norm/...} and {@code update_ratio/...}
 * (||update|| / ||weights||); and per watched layer and epoch {@code dead_fraction/...},
 * {@code inactive_fraction/...}, {@code saturated_fraction/...}, {@code activation_mean/...} and
 * {@code activation_std/...}. With a histogram frequency of {@code k > 0}, every epoch whose number (from 0) is a
 * multiple of {@code k} adds a histogram of each parameter tensor, {@code weights/dense.kernel}, as Keras's
 * {@code histogram_freq} does.
 *
 * <p>The profiler's numbers are read on the host once per epoch anyway; this callback reads nothing more from the
 * device, except the weights for a histogram. A resumed run writes its new epochs into a new file beside the
 * earlier ones, as TensorFlow does.
 *
 * <p>The event files are a view of the run, not part of it: when one cannot be written (a full disk, a folder
 * that cannot be made), the callback says so once on standard error, with the reason, and training goes on
 * without it; {@link #failure()} keeps the reason.
 */
public final class TensorBoard implements Callback {
    private final Path logDir;
    private final int histogramFrequency;
    private TrainingRun run;
    private TensorBoardEvents train;
    private TensorBoardEvents validation;
    private String failure;

    /**
     * @param logDir             the folder TensorBoard is pointed at
     * @param histogramFrequency every how many epochs to add weight histograms; 0 for none
     */
    public TensorBoard(Path logDir, int histogramFrequency) {
        if (histogramFrequency < 0) {
            throw new IllegalArgumentException("the histogram frequency must be >= 0 epochs (0: none), got "
                    + histogramFrequency);
        }
        this.logDir = logDir;
        this.histogramFrequency = histogramFrequency;
    }

    public TensorBoard(Path logDir) {
        this(logDir, 0);
    }

    public Path logDir() {
        return logDir;
    }

    public int histogramFrequency() {
        return histogramFrequency;
    }

    /** The event file of the training series, once training has begun. */
    public Path trainFile() {
        return train == null ? null : train.file();
    }

    /** The event file of the validation series, once an epoch logged one. */
    public Path validationFile() {
        return validation == null ? null : validation.file();
    }

    /** Why the event files stopped being written, or null while they are. */
    public String failure() {
        return failure;
    }

    @Override
    public void onTrainBegin(TrainingRun run) {
        this.run = run;
        train = null;
        validation = null;
        failure = null;
        guarded(() -> train = TensorBoardEvents.create(logDir.resolve("train")));
    }

    /** Runs {@code write}; a failure stops this callback's writing, with one line saying why, not the training. */
    private void guarded(Runnable write) {
        if (failure != null) {
            return;
        }
        try {
            write.run();
        } catch (java.io.UncheckedIOException e) {
            failure = e.getMessage();
            System.err.println("gradscope: warning: " + failure + "; training goes on without TensorBoard events");
        }
    }

    @Override
    public void onEpochEnd(int epoch, Map<String, Double> logs) {
        guarded(() -> writeEpoch(epoch, logs));
    }

    private void writeEpoch(int epoch, Map<String, Double> logs) {
        TensorBoardEvents.Events trainEvents = new TensorBoardEvents.Events();
        TensorBoardEvents.Events validationEvents = new TensorBoardEvents.Events();
        for (Map.Entry<String, Double> log : logs.entrySet()) {
            String metric = log.getKey();
            if (metric.startsWith("val_")) {
                validationEvents.scalar("epoch_" + metric.substring(4), epoch, log.getValue());
            } else {
                trainEvents.scalar("epoch_" + metric, epoch, log.getValue());
            }
        }
        Profile profile = run.history().profile();
        if (profile != null) {
            addProfile(trainEvents, profile, epoch);
        }
        if (histogramFrequency > 0 && epoch % histogramFrequency == 0) {
            addWeightHistograms(trainEvents, run.model(), epoch);
        }
        train.append(trainEvents);
        if (!validationEvents.isEmpty()) {
            if (validation == null) {
                validation = TensorBoardEvents.create(logDir.resolve("validation"));
            }
            validation.append(validationEvents);
        }
    }

    private static void addProfile(TensorBoardEvents.Events events, Profile profile, int epoch) {
        List<Profile.Segment> segments = profile.segments();
        for (Profile.StepStatistics step : profile.steps()) {
            if (step.epoch() != epoch) {
                continue;
            }
            for (int s = 0; s < segments.size(); s++) {
                String tensor = tensorName(segments.get(s));
                events.scalar("gradient_norm/" + tensor, step.globalStep(), step.gradientNorms()[s]);
                events.scalar("weight_norm/" + tensor, step.globalStep(), step.weightNorms()[s]);
                if (!Double.isNaN(step.updateNorms()[s])) {
                    events.scalar("update_ratio/" + tensor, step.globalStep(), step.updateRatio(s));
                }
            }
        }
        for (Profile.UnitStatistics units : profile.units()) {
            if (units.epoch() != epoch) {
                continue;
            }
            String layer = units.layerName();
            events.scalar("dead_fraction/" + layer, epoch, units.deadFraction());
            events.scalar("inactive_fraction/" + layer, epoch, units.inactiveFraction());
            events.scalar("saturated_fraction/" + layer, epoch, units.saturatedFraction());
            events.scalar("activation_mean/" + layer, epoch, units.mean());
            events.scalar("activation_std/" + layer, epoch, units.std());
        }
    }

    private static void addWeightHistograms(TensorBoardEvents.Events events, Sequential model, int epoch) {
        for (Sequential.ParameterGroup group : model.parameterGroups()) {
            events.histogram("weights/" + group.layer().name() + "." + group.slot().name(), epoch,
                    group.value().toFloatArray());
        }
    }

    /** A parameter tensor's name in a weights file: {@code dense.kernel}. */
    private static String tensorName(Profile.Segment segment) {
        return segment.layerName() + "." + segment.parameter();
    }
}
