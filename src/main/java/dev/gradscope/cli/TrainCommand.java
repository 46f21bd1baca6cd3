package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.Mnist;
import dev.gradscope.nn.Adagrad;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.BatchNormalization;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.report.RunReport;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.train.Callback;
import dev.gradscope.train.ClassificationReport;
import dev.gradscope.train.Diagnosis;
import dev.gradscope.train.EarlyStopping;
import dev.gradscope.train.Evaluation;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.GradientProfiler;
import dev.gradscope.train.History;
import dev.gradscope.train.ModelCheckpoint;
import dev.gradscope.train.Monitor;
import dev.gradscope.train.NonFiniteEvent;
import dev.gradscope.train.ReduceLROnPlateau;
import dev.gradscope.train.TensorBoard;
import dev.gradscope.train.Trainer;
import dev.gradscope.train.TrainingRun;
import dev.gradscope.train.TrainingState;
import dev.gradscope.train.TrainingStateCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code gradscope train}: trains the chapter's MLP on MNIST (or {@code --dataset}'s images) with the gradient
 * profiler on, prints the diagnosis, and with {@code --out} writes every run artifact ({@link RunReport}).
 */
@Command(name = "train", mixinStandardHelpOptions = true,
        versionProvider = GradScope.Version.class, sortOptions = false,
        description = "Train an MLP (by default the chapter's 784-512-256-128-64-10) on MNIST or Fashion-MNIST.")
final class TrainCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Mixin
    RunOptions run;

    @Option(names = "--epochs", defaultValue = "10", description = "Passes over the training data (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--out", paramLabel = "DIR",
            description = "Write history.json, model.safetensors and " + ResumedRun.FILE + " (all three updated after"
                    + " every epoch; train --resume DIR goes on from the last), gradients.csv, layers.csv,"
                    + " diagnosis.txt, charts and report.html here.")
    Path out;

    @Option(names = "--load-weights", paramLabel = "FILE",
            description = "Start from the weights in FILE instead of --init: a model.safetensors that train --out"
                    + " wrote (trained with the same --activation and --hidden), or any safetensors file with this"
                    + " model's tensor names and shapes.")
    Path loadWeights;

    @Option(names = "--resume", paramLabel = "DIR",
            description = "Go on with the run that train --out DIR saved, from the last epoch it finished, with its"
                    + " settings, its optimizer's state and its shuffles: the same numbers as if it had never"
                    + " stopped (on the same device and TF32 setting, which are the run's unless given). Writes to"
                    + " DIR. --epochs is the total to reach (default: the run's own); --device, --tf32/--no-tf32,"
                    + " --data-dir, --dataset (the run's own only), --no-graph, --steps-per-graph, --quiet, --tensorboard"
                    + " and --histogram-freq may be given, nothing else.")
    Path resume;

    @Option(names = "--validation-split", paramLabel = "FRACTION", defaultValue = "0",
            description = "Hold out the last FRACTION of the training images (Keras's validation_split, taken before"
                    + " any shuffling) and report val_loss and val_accuracy on them instead of on the test set, so"
                    + " --save-best, --early-stopping and --reduce-lr-on-plateau never see the test set; the test set"
                    + " is evaluated once, after training (default: 0, validation on the test set, as the chapter"
                    + " does).")
    double validationSplit;

    @Option(names = "--save-best", paramLabel = "METRIC",
            description = "Keep in --out's model.safetensors the epoch with the best METRIC (val_loss, val_accuracy,"
                    + " loss or accuracy; lowest loss, highest accuracy) instead of the last epoch.")
    String saveBest;

    @Option(names = "--early-stopping", paramLabel = "[METRIC:]PATIENCE",
            description = "Stop when METRIC (default: val_loss; or val_accuracy, loss, accuracy) has not improved for"
                    + " PATIENCE epochs, as Keras's EarlyStopping; the weights stay the last epoch's (add"
                    + " --restore-best-weights, or --save-best METRIC to keep the best in the file).")
    String earlyStopping;

    @Option(names = "--restore-best-weights",
            description = "With --early-stopping: end the run with the weights of the epoch with the best METRIC"
                    + " (Keras's restore_best_weights=True), whether it stopped early or not; model.safetensors"
                    + " (unless --save-best chooses its own), the per-class figures and test_* are of that model.")
    boolean restoreBestWeights;

    @Option(names = "--min-delta", paramLabel = "D", defaultValue = "0",
            description = "With --early-stopping: how much an epoch must beat the best by to count as an improvement"
                    + " (default: ${DEFAULT-VALUE}).")
    double minDelta;

    @Option(names = "--reduce-lr-on-plateau", paramLabel = "[METRIC:]PATIENCE",
            description = "Multiply the learning rate by --lr-factor when METRIC (default: val_loss) has not improved"
                    + " for PATIENCE epochs, as Keras's ReduceLROnPlateau (min_delta 1e-4); every epoch's rate is in"
                    + " history.json as learning_rate.")
    String reduceLrOnPlateau;

    @Option(names = "--lr-factor", paramLabel = "F", defaultValue = "0.1",
            description = "With --reduce-lr-on-plateau: what the rate is multiplied by (default: ${DEFAULT-VALUE}).")
    double lrFactor;

    @Option(names = "--min-lr", paramLabel = "LR", defaultValue = "0",
            description = "With --reduce-lr-on-plateau: the lowest learning rate (default: ${DEFAULT-VALUE}).")
    double minLearningRate;

    @Option(names = "--lr-schedule", paramLabel = "SCHEDULE",
            description = "Set the learning rate before every epoch: step:EPOCHS:GAMMA (times GAMMA every EPOCHS"
                    + " epochs, PyTorch's StepLR), exponential:GAMMA (times GAMMA every epoch) or"
                    + " cosine[:MIN_LR[:EPOCHS]] (half a cosine from --learning-rate to MIN_LR, default 0, over"
                    + " EPOCHS, default --epochs; PyTorch's CosineAnnealingLR, Keras's CosineDecay); or at every"
                    + " step: cosine-decay:DECAY_STEPS[:ALPHA] (after any --warmup-steps, half a cosine from"
                    + " --learning-rate to ALPHA times it, default 0, over DECAY_STEPS steps; Keras's CosineDecay"
                    + " as an optimizer schedule; every optimizer).")
    String lrSchedule;

    @Option(names = "--warmup-steps", paramLabel = "N", defaultValue = "0",
            description = "Raise the learning rate linearly from --warmup-start to --learning-rate over the first N"
                    + " steps (Keras's CosineDecay warmup_steps, PyTorch's LinearLR); then the rate stays, or"
                    + " --lr-schedule cosine-decay takes over. Computed on the device at every step, from the"
                    + " optimizer's update count (default: ${DEFAULT-VALUE}).")
    int warmupSteps;

    @Option(names = "--warmup-start", paramLabel = "LR", defaultValue = "0",
            description = "With --warmup-steps: the rate of the first step (Keras's initial_learning_rate with a"
                    + " warmup_target; default: ${DEFAULT-VALUE}).")
    double warmupStart;

    @Option(names = "--tensorboard", paramLabel = "DIR",
            description = "Also write every epoch's logs and the profiler's per-step gradient, weight and update"
                    + " norms and per-layer unit statistics as TensorBoard event files in DIR/train and"
                    + " DIR/validation (Keras's TensorBoard callback): tensorboard --logdir DIR shows them.")
    Path tensorboard;

    @Option(names = "--histogram-freq", paramLabel = "N", defaultValue = "0",
            description = "With --tensorboard: add a histogram of every parameter tensor every N epochs (Keras's"
                    + " histogram_freq; default: ${DEFAULT-VALUE}, none).")
    int histogramFrequency;

    @Option(names = "--no-profile", description = "Switch the gradient profiler off (no per-layer statistics).")
    boolean noProfile;

    @Option(names = "--clip-norm", paramLabel = "MAX", defaultValue = "0",
            description = "Rescale the gradients when their global L2 norm exceeds MAX (default: off).")
    double clipNorm;

    @Option(names = "--clip-value", paramLabel = "LIMIT", defaultValue = "0",
            description = "Clamp every gradient element to [-LIMIT, LIMIT] (default: off).")
    double clipValue;

    @Option(names = "--keep-going-on-nan",
            description = "Do not stop at the first non-finite gradient (by default training stops there).")
    boolean keepGoingOnNan;

    @Option(names = {"-q", "--quiet"}, description = "Print only errors, the final result and the diagnosis.")
    boolean quiet;


    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        ResumedRun resumed = resume == null ? null : resumeFrom(resume);
        try {
            return train(resumed);
        } finally {
            if (resumed != null) {
                resumed.close();
            }
        }
    }

    /**
     * Opens the saved run in {@code dir} and takes its settings into this command's options, keeping those that
     * {@code --resume} allows where they were given.
     */
    private ResumedRun resumeFrom(Path dir) {
        List<String> refused = spec.commandLine().getParseResult().matchedOptions().stream()
                .map(OptionSpec::longestName).filter(name -> !ResumedRun.ALLOWED_OPTIONS.contains(name)).distinct()
                .toList();
        if (!refused.isEmpty()) {
            throw run.usage("--resume goes on with the saved run as it was set up, so it takes no "
                    + String.join(", ", refused) + "; it may be given "
                    + String.join(", ", ResumedRun.ALLOWED_OPTIONS.subList(1, ResumedRun.ALLOWED_OPTIONS.size())));
        }
        run.validate(); // what was given (--device, --steps-per-graph) before the saved settings come in
        ResumedRun resumed = ResumedRun.open(dir);
        try {
            String where = resumed.file().toString();
            model = ModelOptions.fromConfigWithOptimizer(resumed.config(), where);
            run.batchSize = resumed.integer("batch_size", 0);
            run.seed = resumed.longInteger("seed");
            // train_examples counts the images trained on; a held-out validation split came from the same first
            // images of the training set, so the run reads as many as both and cuts them where it did.
            validationSplit = resumed.config().containsKey("validation_split") ? resumed.real("validation_split") : 0;
            run.trainLimit = resumed.integer("train_examples", 0)
                    + (validationSplit > 0 ? resumed.integer("validation_examples", 0) : 0);
            resumeDataset(resumed, dir);
            // A run records the data set's own folder relative, read from the working directory (the launcher's is
            // the root), and a folder the user gave absolute; one saved before recorded it as given, read the same way.
            String savedDataDir = resumed.text("data_dir");
            if (!given("--data-dir") && savedDataDir != null
                    && !Path.of(savedDataDir).equals(Path.of(run.machine.data.dataset().defaultDir()))) {
                run.machine.data.dataDir = Path.of(savedDataDir);
            }
            if (!given("--device") && resumed.text("device") != null) {
                run.machine.device = resumed.text("device");
            }
            if (!given("--tf32")) {
                run.machine.tf32 = resumed.flag("tf32");
            }
            if (!given("--steps-per-graph")) {
                run.stepsPerGraph = resumed.integer("steps_per_graph", 1);
            }
            noProfile = !resumed.flag("profile");
            clipNorm = resumed.real("clip_norm");
            clipValue = resumed.real("clip_value");
            keepGoingOnNan = !resumed.flag("stop_on_non_finite");
            saveBest = resumed.text("save_best");
            if (resumed.config().get("reduce_lr_on_plateau") instanceof Map<?, ?> plateau) {
                if (!(plateau.get("patience") instanceof Integer patience) || !(plateau.get("monitor") instanceof String
                        metric) || !(plateau.get("factor") instanceof Number factor)
                        || !(plateau.get("min_lr") instanceof Number floor)) {
                    throw new InvalidDataException(where + ": config.reduce_lr_on_plateau is not a monitor, patience,"
                            + " factor and min_lr: " + plateau);
                }
                reduceLrOnPlateau = metric + ":" + patience;
                lrFactor = factor.doubleValue();
                minLearningRate = floor.doubleValue();
            }
            if (resumed.config().get("early_stopping") instanceof Map<?, ?> stopping) {
                if (!(stopping.get("patience") instanceof Integer patience) || !(stopping.get("monitor") instanceof String
                        metric) || !(stopping.get("min_delta") instanceof Number delta)) {
                    throw new InvalidDataException(where + ": config.early_stopping is not a monitor, patience and"
                            + " min_delta: " + stopping);
                }
                earlyStopping = metric + ":" + patience;
                minDelta = delta.doubleValue();
                // A run saved before the option existed did not restore.
                Object restore = stopping.containsKey("restore_best_weights") ? stopping.get("restore_best_weights")
                        : Boolean.FALSE;
                if (!(restore instanceof Boolean restores)) {
                    throw new InvalidDataException(where + ": config.early_stopping.restore_best_weights is not true"
                            + " or false: " + restore);
                }
                restoreBestWeights = restores;
            }
            // The run's TensorBoard folder and histogram frequency go on unless given (another folder keeps the
            // frequency).
            if (resumed.config().get("tensorboard") instanceof Map<?, ?> board) {
                if (!(board.get("log_dir") instanceof String logDir) || !(board.get("histogram_freq") instanceof
                        Integer frequency)) {
                    throw new InvalidDataException(where + ": config.tensorboard is not a log_dir and"
                            + " histogram_freq: " + board);
                }
                if (!given("--tensorboard")) {
                    tensorboard = Path.of(logDir);
                }
                if (!given("--histogram-freq")) {
                    histogramFrequency = frequency;
                }
            }
            lrSchedule = resumed.text("lr_schedule");
            // A run saved before per-step schedules had none.
            warmupSteps = resumed.config().containsKey("warmup_steps") ? resumed.integer("warmup_steps", 0) : 0;
            warmupStart = resumed.config().containsKey("warmup_start") ? resumed.real("warmup_start") : 0;
            out = dir;
            int done = resumed.epochsDone();
            if (given("--epochs") && epochs <= done) {
                throw run.usage("--epochs " + epochs + ": the run in " + dir + " has finished " + done + " epochs;"
                        + " --epochs is the total to reach");
            }
            if (!given("--epochs")) {
                epochs = resumed.integer("epochs", 0);
                if (epochs <= done) {
                    throw run.usage("the run in " + dir + " has finished all its " + done + " epochs; pass --epochs N"
                            + " (more than " + done + ") to train it further");
                }
            }
            if (lrSchedule != null) { // a schedule that more epochs would run down to 0: the user's --epochs
                ScheduleOption.parse(lrSchedule, epochs, model.resolve(corrupt(where)).learningRate(), true,
                        run::usage);
            }
            // The saved settings are data: one that no run could have had is the file's fault (exit 1).
            Function<String, RuntimeException> corrupt = corrupt(where);
            run.validate(corrupt);
            if (run.trainLimit < 1) {
                throw corrupt.apply("train_examples must be >= 1, got " + run.trainLimit);
            }
            validate(corrupt);
            model.resolve(corrupt);
            return resumed;
        } catch (RuntimeException e) {
            resumed.close();
            throw e;
        }
    }

    /**
     * Takes the saved run's data set (MNIST for a run saved before runs recorded one); a {@code --dataset} that names
     * another is a usage error, as the run's other settings are.
     */
    private void resumeDataset(ResumedRun resumed, Path dir) {
        String saved = resumed.text("dataset");
        DatasetKind kind;
        try {
            kind = saved == null ? DatasetKind.MNIST : DatasetKind.fromId(saved);
        } catch (IllegalArgumentException e) {
            throw new InvalidDataException(resumed.file() + ": its config does not describe a train run:"
                    + " config.dataset: " + e.getMessage(), e);
        }
        if (given("--dataset") && run.machine.data.dataset() != kind) {
            throw run.usage("--dataset " + run.machine.data.dataset + ": the run in " + dir + " trained on " + kind.id()
                    + ", and --resume goes on with the run's own data set");
        }
        run.machine.data.dataset = kind.id();
    }

    /** What a saved setting that no run could have had becomes: the file's fault (exit 1). */
    private static Function<String, RuntimeException> corrupt(String where) {
        return message -> new InvalidDataException(where + ": its config does not describe a train run: " + message);
    }

    private boolean given(String option) {
        return spec.commandLine().getParseResult().hasMatchedOption(option);
    }

    /** Checks the options of this command's own; a bad one becomes {@code invalid}'s exception. */
    private Callbacks validate(Function<String, RuntimeException> invalid) {
        if (epochs < 1) {
            throw invalid.apply("--epochs must be >= 1, got " + epochs);
        }
        if (!(validationSplit >= 0 && validationSplit < 1)) {
            throw invalid.apply("--validation-split must be a fraction >= 0 and < 1 (0 is off), got " + validationSplit);
        }
        // the backends clip with the float of the limit: 1e-50 would be 0 (no step at all) and 1e39 infinite
        if (!(clipNorm == 0 || Optimizer.isPositiveFloat(clipNorm))) {
            throw invalid.apply("--clip-norm must be 0 (off) or a positive number that a float can hold, got "
                    + clipNorm);
        }
        if (!(clipValue == 0 || Optimizer.isPositiveFloat(clipValue))) {
            throw invalid.apply("--clip-value must be 0 (off) or a positive number that a float can hold, got "
                    + clipValue);
        }
        clipNorm += 0.0; // a -0 given is the 0 it means
        clipValue += 0.0;
        validationSplit += 0.0;
        if (saveBest != null && !Monitor.METRICS.contains(saveBest)) {
            throw invalid.apply("--save-best: unknown metric '" + saveBest + "'; valid: "
                    + String.join(", ", Monitor.METRICS));
        }
        if (saveBest != null && out == null) {
            throw invalid.apply("--save-best needs --out DIR: the weights are kept in DIR/" + SavedWeights.FILE);
        }
        if (tensorboard != null && tensorboard.toString().isBlank()) {
            throw invalid.apply("--tensorboard needs a folder, got an empty path");
        }
        if (histogramFrequency < 0) {
            throw invalid.apply("--histogram-freq must be a count of epochs >= 0 (0: none), got "
                    + histogramFrequency);
        }
        ScheduleOption schedule = schedule(invalid);
        return new Callbacks(earlyStopping(invalid), reduceLearningRate(invalid), schedule,
                stepSchedule(schedule, invalid));
    }

    /**
     * The callbacks the options ask for, each null when not asked for, and the per-step schedule
     * ({@link StepSchedule#NONE} when not asked for).
     */
    private record Callbacks(EarlyStopping stopper, ReduceLROnPlateau plateau, ScheduleOption schedule,
                             StepSchedule stepSchedule) {
    }

    /** The {@code --lr-schedule}, or null without it; a bad value becomes {@code invalid}'s exception. */
    private ScheduleOption schedule(Function<String, RuntimeException> invalid) {
        ScheduleOption option = lrSchedule == null ? null
                : ScheduleOption.parse(lrSchedule, epochs, model.resolve(invalid).learningRate(), resume != null,
                        invalid);
        if (option != null && option.scheduler() != null && warmupSteps > 0) {
            throw invalid.apply("--warmup-steps warms up the rate step by step, which --lr-schedule " + lrSchedule
                    + " would set again every epoch: give --lr-schedule cosine-decay:DECAY_STEPS for a decay after"
                    + " the warmup");
        }
        if (option != null && reduceLrOnPlateau != null) {
            throw invalid.apply("--lr-schedule sets every " + (option.scheduler() != null ? "epoch's" : "step's")
                    + " learning rate, which would undo the reductions of --reduce-lr-on-plateau: give one of them");
        }
        return option;
    }

    /**
     * The per-step schedule of {@code --warmup-steps}, {@code --warmup-start} and {@code --lr-schedule cosine-decay}
     * ({@link StepSchedule#NONE} without them), checked against the optimizer; a bad value becomes {@code invalid}'s
     * exception.
     */
    private StepSchedule stepSchedule(ScheduleOption option, Function<String, RuntimeException> invalid) {
        if (warmupSteps < 0) {
            throw invalid.apply("--warmup-steps must be a count of steps >= 0, got " + warmupSteps);
        }
        if (warmupSteps == 0 && warmupStart != 0) {
            throw invalid.apply("--warmup-start is the rate a warmup starts from; give --warmup-steps N too");
        }
        if (warmupSteps > 0 && reduceLrOnPlateau != null) {
            throw invalid.apply("--warmup-steps sets every step's learning rate, which would undo the reductions of"
                    + " --reduce-lr-on-plateau: give one of them");
        }
        StepSchedule decay = option == null ? null : option.stepSchedule();
        StepSchedule schedule;
        try {
            schedule = new StepSchedule(warmupStart, warmupSteps, decay == null ? 0 : decay.decaySteps(),
                    decay == null ? 0 : decay.alpha());
        } catch (IllegalArgumentException e) {
            throw invalid.apply("--warmup-start " + warmupStart + ": " + e.getMessage());
        }
        if (!Optimizer.isNonNegativeFloat(warmupStart)) {
            throw invalid.apply("--warmup-start must be a rate >= 0 that a float holds, got " + warmupStart);
        }
        if (schedule.isScheduled()) {
            ModelOptions.Resolved resolved = model.resolve(invalid);
            try (Optimizer optimizer = resolved.newOptimizer()) {
                optimizer.setStepSchedule(schedule);
            } catch (IllegalArgumentException e) {
                throw invalid.apply((warmupSteps > 0 ? "--warmup-steps" : "--lr-schedule " + lrSchedule) + ": "
                        + e.getMessage());
            }
        }
        return schedule;
    }

    /**
     * Refuses a per-step cosine that reaches a rate of 0 (ALPHA 0, or one a float holds as 0) before the run's last
     * update, as the epoch cosine refuses an epoch at rate 0: the updates after its end would train nothing.
     */
    private void requireNoStepsAtRateZero(StepSchedule schedule, double learningRate, int stepsPerEpoch,
                                          boolean resumed) {
        if (schedule.decaySteps() == 0 || Optimizer.isPositiveFloat(schedule.alpha() * learningRate)) {
            return;
        }
        long end = (long) schedule.warmupSteps() + schedule.decaySteps(); // the first update at rate 0
        long updates = (long) epochs * stepsPerEpoch;
        if (updates <= end) {
            return;
        }
        long epochsWithin = end / stepsPerEpoch; // 0 when the cosine ends inside the first epoch
        String most = epochsWithin == 0 ? "" : epochsWithin == 1 ? "1 epoch" : epochsWithin + " epochs";
        throw run.usage("--lr-schedule " + lrSchedule + " reaches a learning rate of 0 at update " + (end + 1) + " of "
                + updates + " (" + epochs + " epochs of " + stepsPerEpoch + "), after which the run would train"
                + " nothing" + (resumed ? "; the saved run's schedule cannot go on that far: train at most " + most
                        : ": give the cosine an ALPHA above 0 (cosine-decay:DECAY_STEPS:ALPHA)"
                                + (most.isEmpty() ? " or" : ",") + " DECAY_STEPS of at least "
                                + (updates - schedule.warmupSteps()) + (most.isEmpty() ? "" : ", or train at most "
                                        + most)));
    }

    /** The {@code --early-stopping} callback, or null without it; a bad value becomes {@code invalid}'s exception. */
    private EarlyStopping earlyStopping(Function<String, RuntimeException> invalid) {
        if (!(minDelta >= 0) || Double.isInfinite(minDelta)) {
            throw invalid.apply("--min-delta must be a number >= 0, got " + minDelta);
        }
        if (earlyStopping == null) {
            return null;
        }
        MetricPatience watch = MetricPatience.parse("--early-stopping", earlyStopping, invalid);
        return new EarlyStopping(watch.metric(), watch.patience(), minDelta, restoreBestWeights);
    }

    /**
     * The {@code --reduce-lr-on-plateau} callback (Keras's min_delta, 1e-4, and no cooldown), or null without it; a
     * bad value becomes {@code invalid}'s exception.
     */
    private ReduceLROnPlateau reduceLearningRate(Function<String, RuntimeException> invalid) {
        if (!(lrFactor > 0 && lrFactor < 1)) {
            throw invalid.apply("--lr-factor must be a number between 0 and 1, got " + lrFactor);
        }
        if (!(minLearningRate >= 0) || Double.isInfinite(minLearningRate)) {
            throw invalid.apply("--min-lr must be a number >= 0, got " + minLearningRate);
        }
        if (reduceLrOnPlateau == null) {
            return null;
        }
        MetricPatience watch = MetricPatience.parse("--reduce-lr-on-plateau", reduceLrOnPlateau, invalid);
        return new ReduceLROnPlateau(watch.metric(), lrFactor, watch.patience(), PLATEAU_MIN_DELTA, 0,
                minLearningRate);
    }

    /** Keras's {@code ReduceLROnPlateau} default: how much an epoch must beat the best by. */
    private static final double PLATEAU_MIN_DELTA = 1e-4;

    /** {@code [METRIC:]PATIENCE}: the metric a callback watches (default val_loss) and its patience in epochs. */
    private record MetricPatience(String metric, int patience) {
        static MetricPatience parse(String option, String text, Function<String, RuntimeException> invalid) {
            int colon = text.lastIndexOf(':');
            String metric = colon < 0 ? "val_loss" : text.substring(0, colon).trim();
            String patience = text.substring(colon + 1).trim();
            if (!Monitor.METRICS.contains(metric)) {
                throw invalid.apply(option + ": unknown metric '" + metric + "'; valid: "
                        + String.join(", ", Monitor.METRICS));
            }
            try {
                int epochs = Integer.parseInt(patience);
                if (epochs >= 0) {
                    return new MetricPatience(metric, epochs);
                }
            } catch (NumberFormatException e) {
                // reported below
            }
            throw invalid.apply(option + ": the patience must be a count of epochs >= 0, got '" + patience
                    + "' (e.g. " + option + " 3 or " + option + " val_accuracy:5)");
        }
    }

    private Integer train(ResumedRun resumed) {
        Callbacks asked = validate(run::usage);
        if (earlyStopping == null && given("--min-delta")) {
            throw run.usage("--min-delta is the improvement --early-stopping asks for; give --early-stopping too");
        }
        if (earlyStopping == null && restoreBestWeights) {
            throw run.usage("--restore-best-weights puts back the weights of the epoch --early-stopping found best;"
                    + " give --early-stopping too");
        }
        if (tensorboard == null && given("--histogram-freq")) {
            throw run.usage("--histogram-freq sets how often --tensorboard writes weight histograms; give"
                    + " --tensorboard DIR too");
        }
        if (reduceLrOnPlateau == null && (given("--lr-factor") || given("--min-lr"))) {
            throw run.usage("--lr-factor and --min-lr set how --reduce-lr-on-plateau reduces the learning rate; give"
                    + " --reduce-lr-on-plateau too");
        }
        ModelOptions.Resolved resolved = model.resolve(run);
        Mnist mnist = run.loadData();
        // The images to train on and to validate on, known before the device is opened: an impossible split is
        // refused without starting CUDA.
        Dataset train = trainingData(run, mnist);
        Dataset validation = mnist.test();
        if (validationSplit > 0) {
            Dataset.Split split;
            try {
                split = train.validationSplit(validationSplit);
            } catch (IllegalArgumentException e) {
                throw run.usage("--validation-split " + validationSplit + ": " + e.getMessage());
            }
            train = split.train();
            validation = split.validation();
        }
        requireNoStepsAtRateZero(asked.stepSchedule(), resolved.learningRate(),
                (train.rows() + run.batchSize - 1) / run.batchSize, resumed != null);
        Devices.Selection device = run.openDevice();
        try (var backend = device.backend();
             Sequential net = resolved.build(backend, run.seed, mnist.train().featureCount(),
                     mnist.train().classCount())) {
            if (device.fallback() != null) {
                System.err.println("gradscope: " + device.fallback());
            }
            Map<String, Object> config = config("train", resolved, run, epochs, backend, train, validation);
            config.put("validation_split", validationSplit);
            Map<String, Object> checksums = new LinkedHashMap<>();
            checksums.put("train", train.checksum());
            checksums.put("validation", validation.checksum());
            config.put(DATA_CHECKSUMS, checksums);
            config.put("profile", !noProfile);
            config.put("clip_norm", clipNorm);
            config.put("clip_value", clipValue);
            config.put("stop_on_non_finite", !keepGoingOnNan);
            config.put("initial_weights", resumed != null ? resumed.config().get("initial_weights")
                    : loadWeights == null ? null : loadWeights.toString());
            config.put("save_best", saveBest);
            EarlyStopping stopper = asked.stopper();
            Map<String, Object> stopping = null;
            if (stopper != null) {
                stopping = new LinkedHashMap<>();
                stopping.put("monitor", stopper.monitor());
                stopping.put("patience", stopper.patience());
                stopping.put("min_delta", stopper.minDelta());
                stopping.put("restore_best_weights", stopper.restoresBestWeights());
            }
            config.put("early_stopping", stopping);
            ReduceLROnPlateau plateau = asked.plateau();
            Map<String, Object> plateauConfig = null;
            if (plateau != null) {
                plateauConfig = new LinkedHashMap<>();
                plateauConfig.put("monitor", plateau.monitor());
                plateauConfig.put("patience", plateau.patience());
                plateauConfig.put("factor", plateau.factor());
                plateauConfig.put("min_delta", plateau.minDelta());
                plateauConfig.put("cooldown", plateau.cooldown());
                plateauConfig.put("min_lr", plateau.minLearningRate());
            }
            config.put("reduce_lr_on_plateau", plateauConfig);
            ScheduleOption schedule = asked.schedule();
            config.put("lr_schedule", schedule == null ? null : schedule.canonical());
            config.put("warmup_steps", warmupSteps);
            config.put("warmup_start", warmupStart);
            Map<String, Object> boardConfig = null;
            if (tensorboard != null) {
                boardConfig = new LinkedHashMap<>();
                // absolute, so that a resume from another working directory writes beside the run's events
                boardConfig.put("log_dir", realPath(tensorboard).toString());
                boardConfig.put("histogram_freq", histogramFrequency);
            }
            config.put("tensorboard", boardConfig);
            TrainingState state = null;
            // A resumed run that had stopped early trains nothing; with --restore-best-weights it still ends as the
            // run did (restores the best copy, rewrites the weights, history, report and per-class files), so that a
            // run interrupted after its last epoch's state but before those writes gets them, the same ones again.
            boolean finishing = false;
            if (loadWeights != null) {
                SavedWeights.load(net, loadWeights, resolved);
            }
            if (resumed != null) {
                if (train.rows() != resumed.integer("train_examples", 0)) {
                    throw new InvalidDataException(resumed.file() + ": the run trained on "
                            + resumed.integer("train_examples", 0) + " images, " + run.machine.data.dataDir() + " has "
                            + train.rows());
                }
                requireSameImages(resumed, config);
                state = resumed.load(net);
                boolean stopped = stopper != null && stopper.replay(state.history());
                if (stopper != null && stopper.restoresBestWeights()) {
                    requireCopyOfBest(stopper, state, resumed.file());
                }
                if (stopped) {
                    System.out.println("nothing to train: the run in " + resume + " stopped early after epoch "
                            + (stopper.stoppedEpoch() + 1) + " (" + stopper.reason() + "), and would stop there again");
                    if (!stopper.restoresBestWeights()) {
                        return 0;
                    }
                    finishing = true;
                }
                if (finishing) {
                    // not a resume that trains: the run's own record of its resumes stays as it was
                    if (resumed.config().containsKey("resumed_at_epochs")) {
                        config.put("resumed_at_epochs", resumed.config().get("resumed_at_epochs"));
                    }
                } else {
                    config.put("resumed_at_epochs", resumed.resumedAtEpochs());
                }
            }
            if (!quiet && !finishing) {
                System.out.print(net.summary());
            }
            if (state != null && !finishing) {
                String savedOn = resumed.text("backend") + (resumed.flag("tf32") ? " with TF32" : "");
                String goesOnOn = backend.name() + (backend.tf32() ? " with TF32" : "");
                if (!savedOn.equals(goesOnOn)) {
                    System.err.println("gradscope: note: the run trained on " + savedOn + " and goes on on " + goesOnOn
                            + ": the numbers from here differ from an uninterrupted run's by the rounding of the"
                            + " two");
                }
            }
            if (state != null && !quiet && !finishing) {
                System.out.printf(Locale.ROOT, "resuming %s after epoch %d of %d (%s)%n", resume, state.epochs(),
                        epochs, resumed.file());
            }
            FitOptions.Builder fit = FitOptions.builder().batchSize(run.batchSize).epochs(epochs)
                    .validation(validation).verbose(quiet || finishing ? 0 : 1)
                    // the profile stays the state's: no step is measured
                    .profiler(noProfile || finishing ? null : new GradientProfiler())
                    .clipGlobalNorm(clipNorm).clipValue(clipValue).stopOnNonFinite(!keepGoingOnNan)
                    .graph(!run.noGraph).stepsPerGraph(run.stepsPerGraph).resumeFrom(state);
            ModelCheckpoint checkpoint = null;
            TrainingStateCheckpoint stateCheckpoint = null;
            if (out != null) {
                fit.callback(new HistoryWriter(out.resolve(RunReport.HISTORY_FILE), config));
                Path weights = out.resolve(SavedWeights.FILE);
                checkpoint = saveBest == null ? new ModelCheckpoint(weights, SavedWeights.metadata(config))
                        : ModelCheckpoint.bestOf(weights, SavedWeights.metadata(config), saveBest,
                                SavedWeights.refreshKept(config));
                fit.callback(checkpoint);
                stateCheckpoint = new TrainingStateCheckpoint(out.resolve(ResumedRun.FILE),
                        SavedWeights.metadata(config));
                fit.callback(stateCheckpoint);
            }
            if (stopper != null) {
                fit.callback(stopper); // after the checkpoints: the epoch that stops the run is saved too
            }
            if (plateau != null && !finishing) {
                fit.callback(plateau);
            }
            if (schedule != null && schedule.scheduler() != null && !finishing) {
                fit.callback(schedule.scheduler());
            }
            net.optimizer().setStepSchedule(asked.stepSchedule()); // which the resumed state's iterations go on with
            TensorBoard board = null;
            if (tensorboard != null && !finishing) { // no epoch to show: no new events file
                // After the checkpoints: an epoch TensorBoard shows is one a resume does not train again.
                board = new TensorBoard(tensorboard, histogramFrequency);
                fit.callback(board);
            }
            History history = net.fit(train, fit.build());
            // With --restore-best-weights the model ends as its best epoch left it, as Keras's model object does:
            // the file that keeps the last epoch gets it too (a --save-best file keeps the epoch it chose), and
            // what follows (per-class figures, test_*, the final line) describes it.
            int restored = stopper == null ? -1 : stopper.restoredEpoch();
            int modelEpoch = restored >= 0 ? restored + 1 : history.epochs();
            if (restored >= 0 && checkpoint != null && saveBest == null) {
                checkpoint.saveRestored(net, restored, logsOf(history, restored));
            }
            Diagnosis diagnosis;
            Path report = null;
            // The trained model per class on the test set: one more inference pass, for the report and a line here;
            // none for a model whose outputs are not finite (a diverged run), whose numbers would say nothing.
            ClassificationReport classes = history.epochs() > 0
                    ? ClassificationReport.of(net, mnist.test(), run.batchSize, mnist.kind().classNames()) : null;
            boolean finiteOutputs = classes != null && classes.nonFiniteRows() == 0;
            if (classes != null && !finiteOutputs) {
                System.out.println("per class: not reported: " + classes.nonFiniteRows() + " of " + classes.examples()
                        + " test images get non-finite outputs from the trained model");
                classes = null;
            }
            // val_* came from the held-out images: the test set is seen once, now, by the model as training left it,
            // as Keras's evaluate after fit; not for a diverged model, whose numbers would say nothing either.
            Evaluation tested = validationSplit > 0 && finiteOutputs ? net.evaluate(mnist.test(), run.batchSize) : null;
            if (validationSplit > 0 && classes == null && history.epochs() > 0) {
                System.out.println("test: not evaluated: the trained model's outputs are not finite");
            }
            if (out != null) {
                RunReport.Written written = RunReport.write(out, "gradscope train: " + resolved.units().activation(),
                        setting(resolved, mnist.kind(), train, validation, mnist.test(), run.batchSize, backend),
                        history, config, classes, tested, modelEpoch);
                diagnosis = written.diagnosis();
                report = written.report();
                if (restored >= 0) { // which epoch's model the run ended with, for compare and other readers
                    HistoryJson.put(out.resolve(RunReport.HISTORY_FILE), HistoryJson.RESTORED_KEY,
                            HistoryJson.restoredDocument(modelEpoch, stopper.monitor(), stopper.best(),
                                    logsOf(history, restored)));
                }
            } else {
                diagnosis = Diagnosis.of(history);
            }
            NonFiniteEvent event = history.nonFinite();
            if (event != null) {
                System.out.println(event.stopped()
                        ? "training stopped: non-finite gradient at " + RunReport.where(history, event)
                                + "; the parameters keep their last finite values" + (net.state() == null ? ""
                                        : " (batch normalization's moving statistics took that step's forward pass,"
                                                + " which may have made them non-finite too)")
                        : "warning: non-finite gradient at " + RunReport.where(history, event)
                                + "; training went on (--keep-going-on-nan)");
            }
            if (checkpoint != null && checkpoint.skipped().isPresent()) {
                System.out.println("weights not saved: " + checkpoint.skipped().get() + "; "
                        + (checkpoint.savedEpoch() > 0
                                ? checkpoint.file() + " holds the weights after epoch " + checkpoint.savedEpoch()
                                : "this run wrote no " + checkpoint.file()
                                        + (Files.exists(checkpoint.file()) ? "; the one there holds an earlier run's"
                                                + " weights" : "")));
            }
            if (stateCheckpoint != null && stateCheckpoint.skipped().isPresent()) {
                System.out.println("training state not saved: " + stateCheckpoint.skipped().get()
                        + (stateCheckpoint.savedEpoch() > 0 ? "; " + stateCheckpoint.file() + " holds the state after"
                                + " epoch " + stateCheckpoint.savedEpoch() + ", which train --resume goes on from" : ""));
            }
            if (checkpoint != null && saveBest != null && checkpoint.savedEpoch() > 0) {
                System.out.printf(Locale.ROOT, "weights: %s holds epoch %d, the best %s (%.4f)%n", checkpoint.file(),
                        checkpoint.savedEpoch(), saveBest, checkpoint.best());
                if (tested != null && checkpoint.savedEpoch() != modelEpoch) {
                    System.out.printf(Locale.ROOT, "test: test_loss and test_accuracy are the model's after epoch %d;"
                            + " gradscope evaluate %s tests epoch %d%n", modelEpoch, checkpoint.file(),
                            checkpoint.savedEpoch());
                }
            }
            // A run stopped by a non-finite gradient was not stopped early, whatever its last logs say; a finishing
            // run said where it stopped already.
            if (stopper != null && stopper.stoppedEpoch() >= 0 && (event == null || !event.stopped()) && !finishing) {
                System.out.println(stopper.stoppedEpoch() + 1 < epochs
                        ? "stopped early after epoch " + (stopper.stoppedEpoch() + 1) + " of " + epochs + ": "
                                + stopper.reason()
                        : "early stopping: " + stopper.reason() + " by the last epoch; a resume with more --epochs"
                                + " would stop here too");
            }
            if (restored >= 0) {
                List<String> holders = new ArrayList<>();
                if (checkpoint != null && saveBest == null && checkpoint.savedEpoch() == modelEpoch) {
                    holders.add(checkpoint.file().toString());
                }
                if (classes != null) {
                    holders.add("the per-class figures");
                }
                if (tested != null) {
                    holders.add("the test evaluation");
                }
                System.out.printf(Locale.ROOT, "restored the weights of epoch %d, the best %s (%.4f): %s%sthe final"
                        + " line are that model's%n", modelEpoch, stopper.monitor(), stopper.best(),
                        String.join(", ", holders), holders.isEmpty() ? "" : " and ");
            } else if (stopper != null && stopper.restoresBestWeights() && stopper.bestEpoch() < 0
                    && history.epochs() > 0) {
                System.out.println("restored nothing: no epoch had a finite " + stopper.monitor() + "; the model keeps"
                        + " the last epoch's weights");
            }
            if (board != null && board.failure() == null && !quiet) {
                System.out.println("tensorboard: events in " + board.logDir() + " (tensorboard --logdir "
                        + board.logDir() + ")");
            }
            if (classes != null && !quiet && classes.examples() > 0) {
                int weakest = classes.weakestClass();
                int[] confused = classes.mostConfused();
                System.out.printf(Locale.ROOT, "per class: lowest recall %s %.4f%s%n", classes.label(weakest),
                        classes.recall(weakest), confused == null ? "" : "; most confused: " + classes.label(confused[0])
                                + " taken for " + classes.label(confused[1]) + " " + classes.count(confused[0],
                                confused[1]) + " times");
            }
            List<Double> rates = history.get("learning_rate");
            if (rates.stream().distinct().count() > 1) {
                System.out.println("learning rate: " + schedule(rates));
            }
            Map<String, Double> ended = logsOf(history, modelEpoch - 1);
            System.out.printf(Locale.ROOT, "final: loss %.4f, accuracy %.4f, val_loss %.4f, val_accuracy %.4f%s%s%n",
                    ended.get("loss"), ended.get("accuracy"), ended.get("val_loss"), ended.get("val_accuracy"),
                    tested == null ? "" : String.format(Locale.ROOT,
                            ", test_loss %.4f, test_accuracy %.4f", tested.loss(), tested.accuracy()),
                    report == null ? "" : "; wrote " + report);
            System.out.print("diagnosis:\n" + diagnosis.describe());
        }
        return 0;
    }

    /**
     * Refuses a resumed state whose copy of the best weights is not that of the best epoch {@code stopper} found in its
     * history (by the same metric): a run of this command with --restore-best-weights saves that copy with every state
     * once it has a best epoch, so another copy, or none, is a state edited or mixed up with another run's, from
     * which the run cannot end as it would have. Nothing is written before.
     */
    private static void requireCopyOfBest(EarlyStopping stopper, TrainingState state, Path file) {
        Optional<TrainingState.BestWeights> copy = state.bestWeights();
        if (copy.isPresent() ? stopper.isCopyOfBest(copy.get()) : stopper.bestEpoch() < 0) {
            return;
        }
        String best = stopper.bestEpoch() < 0 ? "no epoch of its history has a finite " + stopper.monitor()
                : "its history's best " + stopper.monitor() + " is epoch " + (stopper.bestEpoch() + 1) + "'s";
        String kept = copy.map(c -> "keeps the best " + c.monitor() + " weights of epoch " + (c.epoch() + 1))
                .orElse("keeps no best weights");
        throw new InvalidDataException(file + ": the run restores its best weights (--restore-best-weights) and "
                + best + ", but the state " + kept + "; it cannot end as the run would have");
    }

    /**
     * Where {@code folder} is or will be: its real path (absolute, links and {@code ..} resolved as the file system
     * resolves them), that of the nearest folder above it that exists followed by the rest of it when it does not
     * exist yet. Nothing is created: a run refused before it trains writes nothing.
     */
    static Path realPath(Path folder) {
        Path absolute = folder.toAbsolutePath();
        Path root = absolute.getRoot();
        for (int existing = absolute.getNameCount(); existing >= 0; existing--) {
            Path above = existing == 0 ? root : root.resolve(absolute.subpath(0, existing));
            try {
                Path real = above.toRealPath();
                return existing == absolute.getNameCount() ? real
                        : real.resolve(absolute.subpath(existing, absolute.getNameCount())).normalize();
            } catch (java.io.IOException e) {
                // not there (yet): try the folder above it
            }
        }
        return absolute.normalize();
    }

    /** Epoch {@code epoch}'s (from 0) logs in {@code history}. */
    private static Map<String, Double> logsOf(History history, int epoch) {
        Map<String, Double> logs = new LinkedHashMap<>();
        history.metrics().forEach((metric, values) -> logs.put(metric, values.get(epoch)));
        return logs;
    }

    /** The config key of the checksums of the images a run trained and validated on ({@link Dataset#checksum}). */
    static final String DATA_CHECKSUMS = "data_checksums";

    /**
     * Refuses to resume a run on other images than it trained and validated on (another data set, or another copy of
     * it in --data-dir): the epochs to come would learn and choose from other images than the epochs saved. A run
     * saved before runs recorded checksums is checked by its validation images' count.
     */
    private void requireSameImages(ResumedRun resumed, Map<String, Object> config) {
        Object saved = resumed.config().get(DATA_CHECKSUMS);
        Object now = config.get(DATA_CHECKSUMS);
        String where = resumed.file() + ": the run trained and validated on other images than "
                + run.machine.data.dataDir() + " holds now";
        if (saved != null && !saved.equals(now)) {
            throw new InvalidDataException(where + " (checksums " + saved + " then, " + now + " now); resume with"
                    + " the run's own --data-dir");
        }
        if (saved == null && resumed.config().get("validation_examples") instanceof Integer count
                && !count.equals(config.get("validation_examples"))) {
            throw new InvalidDataException(where + " (" + count + " validation images then, "
                    + config.get("validation_examples") + " now); resume with the run's own --data-dir");
        }
    }

    /** The training set, cut to {@code --train-limit} rows when given. */
    static Dataset trainingData(RunOptions run, Mnist mnist) {
        return run.trainLimit > 0 ? mnist.train().take(Math.min(run.trainLimit, mnist.train().rows())) : mnist.train();
    }

    /** What a run's history.json records under {@code config}: the model, the run and the device. */
    static Map<String, Object> config(String command, ModelOptions.Resolved resolved, RunOptions run, int epochs,
                                      Backend backend, Dataset train, Dataset validation) {
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("command", command);
        config.putAll(resolved.config());
        config.put("epochs", epochs);
        config.put("batch_size", run.batchSize);
        config.put("seed", run.seed);
        config.put("device", run.machine.device);
        config.put("backend", backend.name());
        config.put("backend_description", backend.description());
        config.put("tf32", backend.tf32());
        // Steps replayed as CUDA graphs unless --no-graph or the backend has none (the CPU). Known before
        // training: the commands' own callbacks (progress, profiler) are all graph-safe, so nothing else
        // makes fit fall back to eager steps.
        boolean graph = !run.noGraph && backend.supportsGraphs();
        config.put("graph", graph);
        // The steps each graph launch runs (--steps-per-graph, at most an epoch's full batches); null when
        // the steps run eagerly.
        config.put("steps_per_graph", graph ? Trainer.stepsPerGraph(run.stepsPerGraph, train.rows(), run.batchSize)
                : null);
        config.put("dataset", run.machine.data.dataset().id());
        config.put("data_dir", run.machine.data.recordedDataDir());
        config.put("train_examples", train.rows());
        config.put("validation_examples", validation.rows());
        return config;
    }

    /**
     * One line on what is trained, for report pages and chart subtitles, e.g. {@code 784-512-256-128-64-10
     * sigmoid, categorical_crossentropy, adam (lr 0.001), glorot_uniform, batch 256, 60000 MNIST training and
     * 10000 test images, cpu}.
     */
    static String setting(ModelOptions.Resolved resolved, DatasetKind dataset, Dataset train, Dataset validation,
                          int batchSize, Backend backend) {
        return setting(resolved, dataset, train, validation, validation, batchSize, backend);
    }

    /**
     * {@link #setting} of a run that validates on {@code validation} and is tested on {@code test}: the same set
     * unless it held out a validation split of its training images, which the line then counts, e.g. {@code 54000
     * MNIST training images (6000 more held out for validation) and 10000 test images}.
     */
    static String setting(ModelOptions.Resolved resolved, DatasetKind dataset, Dataset train, Dataset validation,
                          Dataset test, int batchSize, Backend backend) {
        String images = String.format(Locale.ROOT, "%d %s training%s and %d test images", train.rows(),
                dataset.title(), validation == test ? "" : " images (" + validation.rows()
                        + " more held out for validation)", test.rows());
        return String.format(Locale.ROOT,
                "%s %s, %s, %s (lr %s%s), %s, batch %d, %s, %s",
                architecture(train.featureCount(), resolved.hidden(), train.classCount()),
                resolved.units().activation()
                        + (resolved.batchNorm() ? ", batch norm" + batchNormSettings(resolved) : "")
                        + (resolved.dropout() > 0 ? ", dropout " + number(resolved.dropout()) : ""),
                resolved.loss().id()
                        + (resolved.labelSmoothing() > 0 ? " (label smoothing " + number(resolved.labelSmoothing()) + ")"
                                : ""),
                resolved.optimizerId(),
                number(resolved.learningRate()),
                optimizerSettings(resolved),
                resolved.initializer(), batchSize, images, backend.name());
    }

    /** What {@link #setting} says of batch normalization's momentum and epsilon: those other than Keras's. */
    private static String batchNormSettings(ModelOptions.Resolved resolved) {
        List<String> settings = new ArrayList<>();
        if (resolved.batchNormMomentum() != BatchNormalization.DEFAULT_MOMENTUM) {
            settings.add("momentum " + number(resolved.batchNormMomentum()));
        }
        if (resolved.batchNormEpsilon() != ModelOptions.DEFAULT_BATCH_NORM_EPSILON) {
            settings.add("epsilon " + number(resolved.batchNormEpsilon()));
        }
        return settings.isEmpty() ? "" : " (" + String.join(", ", settings) + ")";
    }

    /** What {@link #setting} says of the optimizer besides its id and rate: what differs from Keras's defaults. */
    private static String optimizerSettings(ModelOptions.Resolved resolved) {
        StringBuilder sb = new StringBuilder();
        for (String[] setting : OptimizerOptions.nonDefaultSettings(resolved)) {
            sb.append(", ").append(setting[0].substring(2).replace('-', ' '));
            if (setting[1] != null) {
                sb.append(' ').append(setting[1]);
            }
        }
        return sb.toString();
    }

    /** {@code 784-512-256-128-64-10}; a run of equal widths is shortened: {@code 784-128x10-10}. */
    static String architecture(int inputs, int[] hidden, int classes) {
        StringBuilder sb = new StringBuilder().append(inputs);
        for (int i = 0; i < hidden.length; ) {
            int j = i;
            while (j < hidden.length && hidden[j] == hidden[i]) {
                j++;
            }
            sb.append('-').append(hidden[i]);
            if (j - i > 2) {
                sb.append('x').append(j - i);
            } else if (j - i == 2) {
                sb.append('-').append(hidden[i]);
            }
            i = j;
        }
        return sb.append('-').append(classes).toString();
    }

    /** {@code 0.001 (epochs 1-3), 1.0E-4 (epochs 4-10)}: each learning rate and the epochs that trained with it. */
    static String schedule(List<Double> rates) {
        List<String> parts = new java.util.ArrayList<>();
        for (int first = 0; first < rates.size(); ) {
            int last = first;
            while (last + 1 < rates.size() && rates.get(last + 1).equals(rates.get(first))) {
                last++;
            }
            parts.add(rates.get(first) + (first == last ? " (epoch " + (first + 1) + ")"
                    : " (epochs " + (first + 1) + "-" + (last + 1) + ")"));
            first = last + 1;
        }
        return String.join(", ", parts);
    }

    static String number(double x) {
        return x == Math.rint(x) && Math.abs(x) < 1e6 ? String.valueOf((long) x) : String.valueOf(x);
    }

    /**
     * Rewrites history.json after every epoch, so an interrupted run keeps what it learned so far (a resumed
     * run's history holds the earlier epochs too).
     */
    private static final class HistoryWriter implements Callback {
        private final Path file;
        private final Map<String, Object> config;
        private TrainingRun run;

        HistoryWriter(Path file, Map<String, Object> config) {
            this.file = file;
            this.config = config;
        }

        @Override
        public void onTrainBegin(TrainingRun run) {
            this.run = run;
        }

        @Override
        public void onEpochEnd(int epoch, Map<String, Double> logs) {
            HistoryJson.write(file, run.history(), config);
        }

        @Override
        public void onTrainEnd(History history) {
            HistoryJson.write(file, history, config);
        }
    }
}
