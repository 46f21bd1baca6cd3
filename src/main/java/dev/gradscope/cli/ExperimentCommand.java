package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.Mnist;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.BarChart;
import dev.gradscope.report.Chart;
import dev.gradscope.report.CsvTable;
import dev.gradscope.report.ExperimentReport;
import dev.gradscope.report.ExperimentReport.Run;
import dev.gradscope.report.HtmlReport;
import dev.gradscope.report.LineChart;
import dev.gradscope.report.RunReport;
import dev.gradscope.tensor.Backend;
import dev.gradscope.train.Diagnosis;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.History;
import dev.gradscope.train.ModelCheckpoint;
import dev.gradscope.train.Profile;
import dev.gradscope.train.TensorBoard;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code gradscope experiment NAME}: the experiments of section 5.4 of the chapter, one command each.
 * Every run writes {@link RunReport}'s files under {@code OUT/runs/RUN/}; the experiment writes the
 * cross-run figures, {@code summary.csv} and {@code report.html} into {@code OUT} ({@link ExperimentReport}).
 *
 * <ul>
 *   <li>{@code losses}: the sigmoid MLP with MSE and with cross-entropy (Figures 5.15 and 5.16);</li>
 *   <li>{@code activations}: sigmoid, tanh, softsign, relu and elu with cross-entropy (Figures 5.17, 5.18);</li>
 *   <li>{@code gradients}: every activation of the chapter, gradient norm against depth after the first epoch,
 *       for the chapter's MLP and a deep, narrow one;</li>
 *   <li>{@code normalization}: a deep MLP per activation without and with batch normalization, gradient norm
 *       against depth: the vanishing gradient and its cure;</li>
 *   <li>{@code init}: a ReLU MLP whose kernels start at growing scales, trained with plain SGD until the
 *       gradients overflow;</li>
 *   <li>{@code optimizers}: the chapter's MLP once per optimizer at its Keras default learning rate, and how
 *       each one sizes the step of every layer (the update ratio ||ΔW|| / ||W|| against depth).</li>
 * </ul>
 */
@Command(name = "experiment", mixinStandardHelpOptions = true, versionProvider = GradScope.Version.class,
        description = "Reproduce an experiment of section 5.4 of the chapter and write its report.",
        subcommands = {ExperimentCommand.Losses.class, ExperimentCommand.Activations.class,
                ExperimentCommand.Gradients.class, ExperimentCommand.Normalization.class, ExperimentCommand.Init.class,
                ExperimentCommand.Optimizers.class})
final class ExperimentCommand implements Runnable {
    /** The experiments, for the "missing experiment" message. */
    static final String NAMES = "losses, activations, gradients, normalization, init or optimizers";

    /** The chapter's activations, in its order. */
    static final List<String> CHAPTER_ACTIVATIONS = List.of("step", "linear", "sigmoid", "tanh", "hardtanh", "arctan",
            "softsign", "bent_identity", "relu", "leaky_relu", "elu", "prelu", "swish", "maxout");

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing experiment: " + NAMES);
    }

    /**
     * One run of an experiment.
     *
     * @param name     how figures and tables name it
     * @param dirName  its folder under {@code runs/}
     * @param model    the network and how it learns
     * @param clipping how its gradients are clipped before each update ({@link Clipping#NONE}: not at all)
     */
    record RunSpec(String name, String dirName, ModelOptions.Resolved model, Clipping clipping) {
        /** A run whose gradients are not clipped. */
        RunSpec(String name, String dirName, ModelOptions.Resolved model) {
            this(name, dirName, model, Clipping.NONE);
        }

        /**
         * The same run changed by a cure, named {@code NAME + nameSuffix} in folder {@code DIR + dirSuffix}, so
         * that {@link #pairs} finds the two.
         */
        RunSpec variant(String nameSuffix, String dirSuffix, ModelOptions.Resolved model, Clipping clipping) {
            return new RunSpec(name + nameSuffix, dirName + dirSuffix, model, clipping);
        }
    }

    /**
     * Gradient clipping as {@code train --clip-norm} and {@code --clip-value} do it ({@link
     * FitOptions#clipGlobalNorm}, {@link FitOptions#clipValue}): after the profiler has measured the gradients,
     * before the optimizer's update.
     *
     * @param globalNorm rescale all gradients together when their global L2 norm exceeds this (0: off)
     * @param value      clamp every gradient element to [-value, value] (0: off)
     */
    record Clipping(double globalNorm, double value) {
        static final Clipping NONE = new Clipping(0, 0);

        boolean on() {
            return globalNorm > 0 || value > 0;
        }

        /** "global norm 1", "value 0.5", "global norm 1, then value 0.5": what the page and the run's setting say. */
        String text() {
            List<String> parts = new ArrayList<>();
            if (globalNorm > 0) {
                parts.add("global norm " + scaleText(globalNorm));
            }
            if (value > 0) {
                parts.add("value " + scaleText(value));
            }
            return parts.isEmpty() ? "none" : String.join(", then ", parts);
        }
    }

    /**
     * A run and the same run with a cure (batch normalization, gradient clipping), whose name is the first's
     * followed by the cure's suffix ({@link RunSpec#variant}).
     */
    record Pair(Run without, Run with) {
    }

    /** Each run that has a variant named {@code NAME + suffix}, with that variant, in the runs' order. */
    static List<Pair> pairs(List<Run> runs, String suffix) {
        List<Pair> result = new ArrayList<>();
        for (Run run : runs) {
            Run with = find(runs, run.name() + suffix);
            if (with != null) {
                result.add(new Pair(run, with));
            }
        }
        return result;
    }

    /** What every experiment shares: options, data, device, the loop over runs and the report. */
    abstract static class Experiment implements Callable<Integer> {
        @Mixin
        RunOptions run;

        @Option(names = "--out", paramLabel = "DIR",
                description = "Folder for report.html, the figures, summary.csv and runs/ (default: out/experiment-NAME).")
        Path out;

        @Option(names = {"-q", "--quiet"}, description = "Print only errors and the final result.")
        boolean quiet;

        @Option(names = "--tensorboard", paramLabel = "DIR",
                description = "Also write each run's epochs and profile as TensorBoard event files in DIR/RUN, so"
                        + " that tensorboard --logdir DIR shows the runs side by side.")
        Path tensorboard;

        /** The epochs each run trains; its initial value is the experiment's default, which the help shows. */
        @Option(names = "--epochs", description = "Epochs per run (default: ${DEFAULT-VALUE}).")
        int epochs;

        private final String name;
        private final String title;

        /**
         * @param name          the subcommand's name, e.g. {@code activations}
         * @param defaultEpochs the epochs each run trains unless {@code --epochs} says otherwise
         * @param title         the page's title
         */
        Experiment(String name, int defaultEpochs, String title) {
            this.name = name;
            this.epochs = defaultEpochs;
            this.title = title;
        }

        /** The subcommand's name, e.g. {@code activations}. */
        final String name() {
            return name;
        }

        /** The runs, in order; option errors are usage errors thrown here, before any data is read. */
        abstract List<RunSpec> plan();

        /**
         * Builds the experiment's page from its finished runs.
         *
         * @param setting one line on what every run shares (batch, data, device)
         */
        abstract void report(ExperimentReport report, List<Run> runs, String setting);

        /** The one-line outcome printed at the end, e.g. which runs exploded. */
        abstract String outcome(List<Run> runs);

        @Override
        public Integer call() {
            run.validate();
            if (epochs < 1) {
                throw run.usage("--epochs must be >= 1, got " + epochs);
            }
            List<RunSpec> specs = plan();
            Path dir = out != null ? out : Path.of("out", "experiment-" + name());
            Mnist mnist = run.loadData();
            Devices.Selection device = run.openDevice();
            try (Backend backend = device.backend()) {
                if (device.fallback() != null) {
                    System.err.println("gradscope: " + device.fallback());
                }
                Dataset train = TrainCommand.trainingData(run, mnist);
                List<Run> runs = new ArrayList<>();
                for (int i = 0; i < specs.size(); i++) {
                    runs.add(train(specs.get(i), i, specs.size(), dir, backend, mnist.kind(), train, mnist.test()));
                }
                String setting = String.format(Locale.ROOT, "%d epoch%s, batch %d, %d %s training and %d test"
                                + " images, seed %d, %s", epochs, epochs == 1 ? "" : "s", run.batchSize, train.rows(),
                        mnist.kind().title(), mnist.test().rows(), run.seed, backend.name());
                ExperimentReport report = new ExperimentReport(dir, title);
                report(report, runs, setting);
                report.page().heading("Reproduce");
                report.page().preformatted(commandLine(train.rows(), backend.name()));
                Path page = report.write();
                System.out.println(outcome(runs));
                System.out.println("wrote " + page);
            }
            return 0;
        }

        private String commandLine(int trainRows, String backendName) {
            StringBuilder sb = new StringBuilder("gradscope experiment ").append(name())
                    .append(" --device ").append(backendName).append(" --epochs ").append(epochs)
                    .append(" \\\n    --batch-size ").append(run.batchSize).append(" --seed ").append(run.seed);
            DataOptions data = run.machine.data;
            if (data.dataset() != DatasetKind.DEFAULT) {
                sb.append(" --dataset ").append(data.dataset().id());
            }
            if (!data.dataDir().equals(Path.of(data.dataset().defaultDir()))) {
                sb.append(" --data-dir ").append(data.dataDir());
            }
            if (run.trainLimit > 0) {
                sb.append(" --train-limit ").append(trainRows);
            }
            if (run.machine.tf32) {
                sb.append(" --tf32");
            }
            for (String argument : extraArguments().trim().split(" (?=--)")) {
                sb.append(" \\\n    ").append(argument);
            }
            return sb.toString();
        }

        /** The experiment's own options as given, for the page's command line. */
        abstract String extraArguments();

        private Run train(RunSpec spec, int index, int count, Path dir, Backend backend, DatasetKind dataset,
                          Dataset train, Dataset test) {
            String setting = TrainCommand.setting(spec.model(), dataset, train, test, run.batchSize, backend)
                    + (spec.clipping().on() ? ", gradients clipped by " + spec.clipping().text() : "");
            if (!quiet) {
                System.out.printf(Locale.ROOT, "[%d/%d] %s: %s%n", index + 1, count, spec.name(), setting);
            }
            Map<String, Object> config = TrainCommand.config("experiment " + name(), spec.model(), run, epochs,
                    backend, train, test);
            config.put("run", spec.name());
            config.put("clip_norm", spec.clipping().globalNorm());
            config.put("clip_value", spec.clipping().value());
            Path runDir = dir.resolve(ExperimentReport.RUNS_DIR).resolve(spec.dirName());
            long start = System.nanoTime();
            History history;
            try (Sequential net = spec.model().build(backend, run.seed, train.featureCount(), train.classCount())) {
                // Each run keeps its weights as train --out does, for gradscope evaluate.
                FitOptions.Builder fit = FitOptions.builder().batchSize(run.batchSize).epochs(epochs)
                        .validation(test).verbose(quiet ? 0 : 1).graph(!run.noGraph)
                        .stepsPerGraph(run.stepsPerGraph)
                        .clipGlobalNorm(spec.clipping().globalNorm()).clipValue(spec.clipping().value())
                        .callback(new ModelCheckpoint(runDir.resolve(SavedWeights.FILE), SavedWeights.metadata(config)));
                if (tensorboard != null) {
                    fit.callback(new TensorBoard(tensorboard.resolve(spec.dirName())));
                }
                history = net.fit(train, fit.build());
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            RunReport.Written written = RunReport.write(runDir, "experiment " + name() + ": " + spec.name(), setting,
                    history, config);
            Run result = new Run(spec.name(), runDir, history, written.diagnosis(), seconds);
            if (!quiet) {
                System.out.printf(Locale.ROOT, "[%d/%d] %s: loss %.4f, accuracy %.4f, val_accuracy %.4f,"
                                + " layer 1 / output ||dW|| %s, %.1f s%n  %s%n", index + 1, count, spec.name(),
                        result.last("loss"), result.last("accuracy"), result.last("val_accuracy"),
                        ratioText(result.firstToLastRatio()), seconds,
                        written.diagnosis().verdicts().stream().map(Diagnosis.Verdict::text)
                                .collect(Collectors.joining("\n  ")));
            }
            return result;
        }

        /** A usage error for an experiment option. */
        CommandLine.ParameterException usage(String message) {
            return run.usage(message);
        }

        /** The chapter's setup: Adam with Keras's defaults and glorot_uniform kernels. */
        static ModelOptions.Resolved adam(Mlp.HiddenUnits units, int[] hidden, Loss loss) {
            return adam(units, hidden, loss, Initializer.glorotUniform());
        }

        /** Adam with Keras's defaults and kernels drawn from {@code init}. */
        static ModelOptions.Resolved adam(Mlp.HiddenUnits units, int[] hidden, Loss loss, Initializer init) {
            return new ModelOptions.Resolved(units, hidden, loss, init, "adam", 1e-3, 0, false);
        }

        /** The activation ids, checked; a bad one is a usage error that lists the valid ones. */
        List<Mlp.HiddenUnits> hiddenUnits(List<String> ids, String option) {
            if (ids == null || ids.isEmpty()) {
                throw usage(option + " needs at least one activation; valid: " + Mlp.HiddenUnits.validIds());
            }
            List<Mlp.HiddenUnits> units = new ArrayList<>();
            for (String id : ids) {
                try {
                    units.add(Mlp.HiddenUnits.of(id));
                } catch (IllegalArgumentException e) {
                    throw usage(option + ": " + e.getMessage()
                            + (e.getMessage().contains("valid:") ? "" : "; valid: " + Mlp.HiddenUnits.validIds()));
                }
            }
            if (units.stream().map(Mlp.HiddenUnits::activation).distinct().count() < units.size()) {
                throw usage(option + " names an activation twice: " + ids);
            }
            return units;
        }
    }

    /**
     * Options for an MLP of {@code hidden} widths of {@code activation} units (with their default parameter) trained
     * with categorical cross-entropy from {@code init} kernels, to be resolved with an optimizer's settings ({@link
     * OptimizerOptions#resolve}) as train resolves its own.
     */
    static ModelOptions chapterModel(String activation, int[] hidden, String init) {
        ModelOptions model = new ModelOptions();
        model.activation = activation;
        model.maxoutPieces = 2; // the option's default
        model.hidden = hidden.clone();
        model.loss = Loss.CATEGORICAL_CROSSENTROPY.id();
        model.init = init;
        return model;
    }

    /** The chapter's MLP on MNIST (or any data set of its format), e.g. {@code 784-512-256-128-64-10}. */
    private static String chapterMlp() {
        return TrainCommand.architecture(Mnist.PIXELS, Mlp.CHAPTER_HIDDEN, Mnist.CLASS_COUNT);
    }

    /**
     * A section of the page: {@code heading}, a paragraph on how to read the figure (none when
     * {@code explanation} is null), then the figure, written as {@code baseName}.png/.svg/.csv.
     */
    private static void figure(ExperimentReport report, String heading, String explanation, Chart chart,
                               String baseName) {
        report.page().heading(heading);
        if (explanation != null) {
            report.page().paragraph(explanation);
        }
        report.figure(chart, baseName);
    }

    /** The hidden widths of a deep MLP: {@code layers} layers of {@code width} units. */
    static int[] uniformHidden(int layers, int width) {
        int[] hidden = new int[layers];
        Arrays.fill(hidden, width);
        return hidden;
    }

    /** Mean kernel gradient norm of each layer over the first epoch, against depth, one line per run. */
    private static LineChart depthChart(String subtitle, List<Run> runs) {
        return ExperimentReport.gradientNormByDepth("Gradient norm against depth, epoch 1", subtitle, runs, 0);
    }

    /** The page's last section: the summary table ({@code summary.csv}) and a link to each run's report. */
    private static void runsSection(ExperimentReport report, List<Run> runs) {
        report.page().heading("Runs");
        report.summary(runs).runLinks(runs);
    }

    /** "1/12", "0" or "3.2x": a ratio as a reader compares it (below 1 as a fraction). */
    static String ratioText(double ratio) {
        if (ratio == 0) {
            return "0";
        }
        if (!Double.isFinite(ratio) || ratio < 0) {
            return String.valueOf(ratio);
        }
        if (ratio < 1) {
            return "1/" + round(1 / ratio);
        }
        return round(ratio) + "x";
    }

    /** Two significant digits, e.g. 5.7, 58, 550000; an exponent from a million up and below 0.001. */
    static String round(double x) {
        if (!Double.isFinite(x)) {
            return String.valueOf(x);
        }
        if (Math.abs(x) >= 1e6 || (x != 0 && Math.abs(x) < 1e-3)) {
            return String.format(Locale.ROOT, "%.1e", x);
        }
        if (Math.abs(x) >= 10) {
            double unit = Math.pow(10, Math.floor(Math.log10(Math.abs(x))) - 1);
            return String.format(Locale.ROOT, "%.0f", Math.rint(x / unit) * unit);
        }
        String s = String.format(Locale.ROOT, "%.2g", x);
        return s.contains(".") ? s.replaceAll("0+$", "").replaceAll("\\.$", "") : s;
    }

    private static String percent(double fraction) {
        return String.format(Locale.ROOT, "%.1f%%", 100 * fraction);
    }

    private static Run find(List<Run> runs, String name) {
        return runs.stream().filter(r -> r.name().equals(name)).findFirst().orElse(null);
    }

    // ---------------------------------------------------------------------------------------------

    /** Figures 5.15 and 5.16: MSE vs cross-entropy on the sigmoid MLP. */
    @Command(name = "losses", mixinStandardHelpOptions = true,
            versionProvider = GradScope.Version.class, sortOptions = false,
            description = "Figures 5.15 and 5.16: the sigmoid MLP trained with MSE and with cross-entropy (Adam,"
                    + " batch 256): training loss, train and test accuracy per epoch.")
    static final class Losses extends Experiment {
        /** How far ahead cross-entropy's epoch-1 training accuracy must be to call it faster. */
        static final double MARGIN = 0.01;

        @Option(names = "--activation", defaultValue = "sigmoid",
                description = "Hidden activation of both runs (default: ${DEFAULT-VALUE}, as in the chapter).")
        String activation;

        @Mixin
        BatchNormOption batchNorm;

        Losses() {
            super("losses", 10, "MSE vs cross-entropy (chapter section 5.4, Figures 5.15 and 5.16)");
        }

        @Override
        String extraArguments() {
            return " --activation " + activation + batchNorm.argument();
        }

        @Override
        List<RunSpec> plan() {
            Mlp.HiddenUnits units = hiddenUnits(List.of(activation), "--activation").get(0);
            batchNorm.requireSeparateActivations(List.of(units), "--activation", this::usage);
            List<RunSpec> specs = new ArrayList<>();
            for (Loss loss : List.of(Loss.MEAN_SQUARED_ERROR, Loss.CATEGORICAL_CROSSENTROPY)) {
                specs.add(new RunSpec(loss.id(), loss.id(), batchNorm.applyTo(adam(units, Mlp.CHAPTER_HIDDEN, loss))));
            }
            return specs;
        }

        @Override
        void report(ExperimentReport report, List<Run> runs, String setting) {
            String model = chapterMlp() + " " + activation + (batchNorm.on ? ", batch norm" : "")
                    + ", Adam (lr 0.001), glorot_uniform";
            Run mse = find(runs, Loss.MEAN_SQUARED_ERROR.id());
            Run ce = find(runs, Loss.CATEGORICAL_CROSSENTROPY.id());
            HtmlReport page = report.page();
            page.paragraph("The chapter trains its MLP (" + model + ") twice: once with the mean squared error on the"
                    + " softmax output and once with categorical cross-entropy. Its claim: cross-entropy learns"
                    + " faster, because the softmax's own slope damps MSE's gradient (most of all when the output is"
                    + " confidently wrong), while cross-entropy's gradient at the logits is simply p − y.");
            batchNorm.describe(page, ", in both runs");
            page.paragraph("Both runs: " + setting + ".");
            double ceTrain = ce.history().get("accuracy").get(0);
            double mseTrain = mse.history().get("accuracy").get(0);
            String detail = String.format(Locale.ROOT,
                    "Mean training accuracy during epoch 1: %.4f with cross-entropy, %.4f with MSE. Test accuracy"
                            + " after epoch 1: %.4f and %.4f; after epoch %d: %.4f and %.4f. Mean gradient norm reaching"
                            + " layer 1 in epoch 1: %s with cross-entropy, %s with MSE.",
                    ceTrain, mseTrain, ce.history().get("val_accuracy").get(0),
                    mse.history().get("val_accuracy").get(0), epochs, ce.last("val_accuracy"),
                    mse.last("val_accuracy"), round(firstLayerNorm(ce)), round(firstLayerNorm(mse)));
            String margin = round(100 * MARGIN) + " percentage point" + (MARGIN == 0.01 ? "" : "s");
            if (ceTrain - mseTrain >= MARGIN) {
                page.verdict(HtmlReport.Tone.SUCCESS, "Confirmed: cross-entropy learns faster than MSE",
                        detail + " (The criterion: cross-entropy's epoch-1 training accuracy leads by at least "
                                + margin + ".)");
            } else if (mseTrain - ceTrain >= MARGIN) {
                page.verdict(HtmlReport.Tone.WARNING, "Not confirmed in this run: MSE learned faster", detail);
            } else {
                page.verdict(HtmlReport.Tone.WARNING, "Not confirmed in this run: cross-entropy and MSE learned"
                        + " about equally fast in epoch 1 (within " + margin + ")", detail);
            }
            String fig515 = "Figure 5.15: training loss per epoch";
            figure(report, fig515, "The two losses are on different scales (cross-entropy in nats, MSE as a mean of"
                    + " squared probability errors), so compare how fast each falls, not their heights; the y axis is"
                    + " logarithmic.", ExperimentReport.metricPerEpoch(fig515, model, "training loss", true, runs,
                    "loss"), "fig-5-15-loss");
            String fig516 = "Figure 5.16: train and test accuracy per epoch";
            figure(report, fig516, "Train accuracy is the mean over each epoch's batches while the weights were still"
                    + " changing, as Keras reports it; test accuracy is measured after the epoch.",
                    ExperimentReport.trainAndTestAccuracy(fig516, model, runs), "fig-5-16-accuracy");
            figure(report, "Gradient flow", "Mean kernel gradient norm of each layer over the first epoch, against"
                    + " depth.", depthChart(model, runs), "gradient-norm-by-depth");
            runsSection(report, runs);
        }

        @Override
        String outcome(List<Run> runs) {
            Run mse = find(runs, Loss.MEAN_SQUARED_ERROR.id());
            Run ce = find(runs, Loss.CATEGORICAL_CROSSENTROPY.id());
            return String.format(Locale.ROOT, "final val_accuracy: categorical_crossentropy %.4f, mse %.4f",
                    ce.last("val_accuracy"), mse.last("val_accuracy"));
        }
    }

    private static double firstLayerNorm(Run run) {
        Profile p = run.profile();
        return p == null || p.steps().isEmpty() ? Double.NaN : RunReport.kernelGradientNormsByDepth(p, 0)[0];
    }

    // ---------------------------------------------------------------------------------------------

    /** Figures 5.17 and 5.18: five activations with cross-entropy. */
    @Command(name = "activations", mixinStandardHelpOptions = true,
            versionProvider = GradScope.Version.class, sortOptions = false,
            description = "Figures 5.17 and 5.18: the chapter's MLP with sigmoid, tanh, softsign, relu and elu"
                    + " (cross-entropy, Adam, batch 256): training loss per epoch, final train and test accuracy,"
                    + " and the gradient each layer receives.")
    static final class Activations extends Experiment {
        static final List<String> DEFAULT = List.of("sigmoid", "tanh", "softsign", "relu", "elu");

        @Option(names = "--activations", split = ",", paramLabel = "ID",
                description = "Activations to compare (default: sigmoid,tanh,softsign,relu,elu).")
        List<String> activations = new ArrayList<>(DEFAULT);

        @Mixin
        BatchNormOption batchNorm;

        Activations() {
            super("activations", 10, "Activations and gradient flow (chapter section 5.4, Figures 5.17 and 5.18)");
        }

        @Override
        String extraArguments() {
            return " --activations " + String.join(",", activations) + batchNorm.argument();
        }

        @Override
        List<RunSpec> plan() {
            List<RunSpec> specs = new ArrayList<>();
            List<Mlp.HiddenUnits> chosen = hiddenUnits(activations, "--activations");
            batchNorm.requireSeparateActivations(chosen, "--activations", this::usage);
            for (Mlp.HiddenUnits units : chosen) {
                specs.add(new RunSpec(units.activation(), units.activation(),
                        batchNorm.applyTo(adam(units, Mlp.CHAPTER_HIDDEN, Loss.CATEGORICAL_CROSSENTROPY))));
            }
            return specs;
        }

        @Override
        void report(ExperimentReport report, List<Run> runs, String setting) {
            String model = chapterMlp() + (batchNorm.on ? ", batch norm" : "")
                    + ", categorical_crossentropy, Adam (lr 0.001), glorot_uniform";
            HtmlReport page = report.page();
            page.paragraph("The chapter's MLP (" + model + ") trained once per hidden activation. The chapter's"
                    + " claims: sigmoid's derivative is at most 0.25, so the gradient shrinks on its way back to the"
                    + " input (vanishing gradients), and tanh and softsign less so; ReLU and ELU pass the gradient"
                    + " through unchanged where they are active, so every layer learns.");
            batchNorm.describe(page, "");
            page.paragraph("Every run: " + setting + ".");
            gradientFlowVerdicts(page, runs);
            bestAccuracyVerdict(page, runs);
            String fig517 = "Figure 5.17: training loss per epoch";
            figure(report, fig517, null, ExperimentReport.metricPerEpoch(fig517, model, "training loss", true, runs,
                    "loss"), "fig-5-17-loss");
            figure(report, "Figure 5.18: final train and test accuracy", "Train accuracy is the mean over the epoch's"
                    + " batches while the weights were still changing, as Keras reports it; test accuracy is measured"
                    + " after the epoch, so after the first epochs it can be the higher of the two.",
                    ExperimentReport.finalAccuracy("Figure 5.18: final train and test accuracy (epoch " + epochs + ")",
                            model, "activation", runs), "fig-5-18-accuracy");
            figure(report, "Gradient flow: gradient norm against depth, epoch 1", "For each activation, the mean norm"
                    + " of each kernel's gradient over the steps of the first epoch, from layer 1 (next to the input)"
                    + " to the output layer. A line that falls to the left is a gradient that vanishes on its way back"
                    + " to the input.", depthChart(model, runs), "gradient-norm-by-depth");
            runsSection(report, runs);
        }

        @Override
        String outcome(List<Run> runs) {
            return "layer 1 / output ||dW|| in epoch 1: " + runs.stream()
                    .map(r -> r.name() + " " + ratioText(r.firstToLastRatio())).collect(Collectors.joining(", "));
        }
    }

    /**
     * Compares how much of the output layer's gradient reaches layer 1 for sigmoid and for relu (when both
     * ran), and lists the activations whose diagnosis says vanishing.
     */
    static void gradientFlowVerdicts(HtmlReport page, List<Run> runs) {
        Run sigmoid = find(runs, "sigmoid");
        Run relu = find(runs, "relu");
        if (sigmoid != null && relu != null) {
            double s = sigmoid.firstToLastRatio();
            double r = relu.firstToLastRatio();
            String detail = String.format(Locale.ROOT, "In the first epoch sigmoid's layer 1 receives %s of the"
                            + " gradient norm of its output layer; relu's receives %s (mean kernel ||dW|| over the"
                            + " epoch's steps).", ratioText(s), ratioText(r));
            if (s < 0.5 && r > 2 * s) {
                page.verdict(HtmlReport.Tone.SUCCESS, "Confirmed: sigmoid's gradient vanishes towards the input,"
                        + " relu's stays far flatter", detail);
            } else {
                page.verdict(HtmlReport.Tone.WARNING, "Not confirmed in this run: sigmoid's gradient does not vanish"
                        + " markedly more than relu's", detail);
            }
        }
        problemVerdicts(page, runs);
    }

    /** The runs whose gradients vanish, with how much of the output's gradient layer 1 gets, and those that explode. */
    static void problemVerdicts(HtmlReport page, List<Run> runs) {
        List<Run> vanishing = runs.stream().filter(x -> x.has(Diagnosis.Kind.VANISHING)).toList();
        if (!vanishing.isEmpty()) {
            page.verdict(HtmlReport.Tone.WARNING, "Vanishing gradients: " + names(vanishing),
                    "Layer 1 receives less than " + ratioText(Diagnosis.VANISHING_RATIO) + " of the output"
                            + " layer's gradient over the first " + Diagnosis.WINDOW + " steps: " + vanishing.stream()
                            .map(x -> x.name() + " " + ratioText(x.diagnosis().layers().get(0).ratioToOutput()))
                            .collect(Collectors.joining(", ")) + ".");
        }
        List<String> exploded = ExperimentReport.exploded(runs).stream().map(Run::name).toList();
        if (!exploded.isEmpty()) {
            page.verdict(HtmlReport.Tone.FAILURE, "Exploding gradients: " + String.join(", ", exploded), null);
        }
    }

    /** Which run ended with the best test accuracy, and every run's, when any has one. */
    static void bestAccuracyVerdict(HtmlReport page, List<Run> runs) {
        runs.stream().filter(r -> !Double.isNaN(r.finalTestAccuracy()))
                .max((a, b) -> Double.compare(a.finalTestAccuracy(), b.finalTestAccuracy()))
                .ifPresent(best -> page.verdict(HtmlReport.Tone.INFO, String.format(Locale.ROOT,
                        "Best final test accuracy: %s (%.4f)", best.name(), best.finalTestAccuracy()), runs.stream()
                        .map(r -> String.format(Locale.ROOT, "%s %.4f", r.name(), r.finalTestAccuracy()))
                        .collect(Collectors.joining(", ")) + "."));
    }

    // ---------------------------------------------------------------------------------------------

    /** Gradient norm against depth for every activation of the chapter, at two depths. */
    @Command(name = "gradients", mixinStandardHelpOptions = true,
            versionProvider = GradScope.Version.class, sortOptions = false,
            description = "Every activation of the chapter: the gradient norm of each layer against its depth over"
                    + " the first epoch (log scale), in the chapter's MLP and in a deep, narrow one.")
    static final class Gradients extends Experiment {
        @Option(names = "--activations", split = ",", paramLabel = "ID",
                description = "Activations to compare (default: the chapter's 14: step, linear, sigmoid, tanh,"
                        + " hardtanh, arctan, softsign, bent_identity, relu, leaky_relu, elu, prelu, swish, maxout).")
        List<String> activations = new ArrayList<>(CHAPTER_ACTIVATIONS);

        @Option(names = "--deep-layers", defaultValue = "10",
                description = "Hidden layers of the deep variant (default: ${DEFAULT-VALUE}; 0 skips it).")
        int deepLayers;

        @Option(names = "--deep-width", defaultValue = "128",
                description = "Units per hidden layer of the deep variant (default: ${DEFAULT-VALUE}).")
        int deepWidth;

        @Option(names = "--init", defaultValue = Gradients.DEFAULT_INIT, paramLabel = "KIND[:SCALE]",
                description = "Every run's kernel initializer, as train's --init, e.g. orthogonal, which at the"
                        + " start passes a deep linear net's gradient back with its norm; tanh's and relu's slopes"
                        + " below 1 still shrink it (default: ${DEFAULT-VALUE}).")
        String init;

        /** With it, maxout, which has no separate activation to normalise before, leaves the default list. */
        @Mixin
        BatchNormOption batchNorm;

        /** The chapter's initializer, Keras's default. */
        static final String DEFAULT_INIT = "glorot_uniform";

        /** {@code --init}, resolved by {@link #plan}. */
        private Initializer initializer;

        Gradients() {
            super("gradients", 1, "Gradient norm against depth for every activation of the chapter");
        }

        @Override
        String extraArguments() {
            return " --activations " + String.join(",", activations) + " --deep-layers " + deepLayers
                    + " --deep-width " + deepWidth + batchNorm.argument()
                    + (initializer == null || initializer.toString().equals(DEFAULT_INIT) ? ""
                            : " --init " + initializer);
        }

        private int[] deepHidden() {
            return uniformHidden(deepLayers, deepWidth);
        }

        private List<int[]> variants() {
            return deepLayers == 0 ? List.of(Mlp.CHAPTER_HIDDEN) : List.of(Mlp.CHAPTER_HIDDEN, deepHidden());
        }

        private static String variantDir(int variant) {
            return variant == 0 ? "chapter" : "deep";
        }

        @Override
        List<RunSpec> plan() {
            if (deepLayers < 0) {
                throw usage("--deep-layers must be >= 0, got " + deepLayers);
            }
            if (deepWidth < 1) {
                throw usage("--deep-width must be >= 1, got " + deepWidth);
            }
            if (batchNorm.on && activations.equals(CHAPTER_ACTIVATIONS)) {
                activations = new ArrayList<>(activations);
                activations.remove(Mlp.MAXOUT);
            }
            List<Mlp.HiddenUnits> units = hiddenUnits(activations, "--activations");
            batchNorm.requireSeparateActivations(units, "--activations", this::usage);
            initializer = ModelOptions.kernelInitializer(init, this::usage);
            List<RunSpec> specs = new ArrayList<>();
            List<int[]> variants = variants();
            for (int v = 0; v < variants.size(); v++) {
                for (Mlp.HiddenUnits u : units) {
                    specs.add(new RunSpec(u.activation(), variantDir(v) + "-" + u.activation(),
                            batchNorm.applyTo(adam(u, variants.get(v), Loss.CATEGORICAL_CROSSENTROPY, initializer))));
                }
            }
            return specs;
        }

        @Override
        void report(ExperimentReport report, List<Run> runs, String setting) {
            HtmlReport page = report.page();
            page.paragraph("Every activation of the chapter, each in a fresh MLP trained with categorical"
                    + " cross-entropy and Adam (lr 0.001) from " + initializer + " kernels. For each run, the mean"
                    + " norm of each kernel's gradient over the steps of the first epoch is drawn against the layer's"
                    + " depth (1 = next to the input), on a log scale: a line falling to the left is a gradient"
                    + " vanishing on its way back to the input, a line rising to the left one that explodes.");
            batchNorm.describe(page, ": the normalisation keeps each pre-activation at mean 0 and variance 1 over the"
                    + " batch, which is what heals a vanishing gradient");
            page.paragraph("Every run: " + setting + ".");
            if (runs.stream().anyMatch(r -> r.name().equals("step"))) {
                page.paragraph("step's derivative is 0 wherever it is defined, so no gradient reaches its hidden"
                        + " layers: their norms are exactly 0, which a log axis cannot draw (the figure notes it),"
                        + " and only the output layer learns.");
            }
            List<int[]> variants = variants();
            int perVariant = runs.size() / variants.size();
            for (int v = 0; v < variants.size(); v++) {
                List<Run> group = runs.subList(v * perVariant, (v + 1) * perVariant);
                String architecture = TrainCommand.architecture(Mnist.PIXELS, variants.get(v), Mnist.CLASS_COUNT);
                String label = v == 0 ? "the chapter's MLP, " + architecture
                        : "a deep MLP, " + architecture + " (" + deepLayers + " hidden layers of " + deepWidth + ")";
                page.heading("Gradient norm against depth: " + label);
                gradientFlowVerdicts(page, group);
                report.figure(depthChart(label + "; categorical_crossentropy, Adam", group),
                        "gradient-norm-by-depth-" + variantDir(v), RunReport.CHART_WIDTH, 640);
                page.table("Layer 1 / output layer gradient norm, epoch 1 (" + variantDir(v) + ")",
                        ratioTable(group));
            }
            page.heading("Runs");
            int v = 0;
            for (int i = 0; i < runs.size(); i += perVariant, v++) {
                List<Run> group = runs.subList(i, i + perVariant);
                page.subheading(v == 0 ? "Chapter MLP" : "Deep MLP");
                report.summary(group, "summary-" + variantDir(v) + ".csv").runLinks(group);
            }
        }

        static dev.gradscope.report.CsvTable ratioTable(List<Run> runs) {
            dev.gradscope.report.CsvTable table = new dev.gradscope.report.CsvTable("activation",
                    "layer 1 ||dW||", "output ||dW||", "layer 1 / output", "as a fraction", "val_accuracy",
                    "verdicts");
            for (Run run : runs) {
                double[] byDepth = run.profile() == null ? new double[] {Double.NaN}
                        : RunReport.kernelGradientNormsByDepth(run.profile(), 0);
                table.addRow(run.name(), byDepth[0], byDepth[byDepth.length - 1], run.firstToLastRatio(),
                        ratioText(run.firstToLastRatio()), run.last("val_accuracy"), run.verdictKinds());
            }
            return table;
        }

        @Override
        String outcome(List<Run> runs) {
            int perVariant = runs.size() / variants().size();
            StringBuilder sb = new StringBuilder("layer 1 / output ||dW|| in epoch 1:");
            for (int v = 0; v < variants().size(); v++) {
                sb.append(v == 0 ? "\n  chapter: " : "\n  deep:    ");
                sb.append(runs.subList(v * perVariant, (v + 1) * perVariant).stream()
                        .map(r -> r.name() + " " + ratioText(r.firstToLastRatio())).collect(Collectors.joining(", ")));
            }
            return sb.toString();
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** Vanishing gradients in a deep MLP and batch normalization's cure, each activation with and without it. */
    @Command(name = "normalization", mixinStandardHelpOptions = true,
            versionProvider = GradScope.Version.class, sortOptions = false,
            description = "Vanishing gradients and their textbook cure: a deep MLP per activation, trained without"
                    + " and with a BatchNormalization between every hidden layer's product and its activation;"
                    + " gradient norm against depth, loss and test accuracy per epoch.")
    static final class Normalization extends Experiment {
        static final List<String> DEFAULT = List.of("sigmoid", "tanh", "relu");

        @Option(names = "--activations", split = ",", paramLabel = "ID",
                description = "Activations to compare (default: sigmoid,tanh,relu; not maxout, which has no separate"
                        + " activation to normalise in front of).")
        List<String> activations = new ArrayList<>(DEFAULT);

        @Option(names = "--deep-layers", defaultValue = "10",
                description = "Hidden layers (default: ${DEFAULT-VALUE}).")
        int deepLayers;

        @Option(names = "--deep-width", defaultValue = "128",
                description = "Units per hidden layer (default: ${DEFAULT-VALUE}).")
        int deepWidth;

        /** The suffix of a normalised run's name. */
        static final String NORMALIZED = " + batch norm";

        Normalization() {
            super("normalization", 3, "Vanishing gradients and batch normalization");
        }

        @Override
        String extraArguments() {
            return " --activations " + String.join(",", activations) + " --deep-layers " + deepLayers
                    + " --deep-width " + deepWidth;
        }

        private int[] hidden() {
            return uniformHidden(deepLayers, deepWidth);
        }

        @Override
        List<RunSpec> plan() {
            if (deepLayers < 1) {
                throw usage("--deep-layers must be >= 1, got " + deepLayers);
            }
            if (deepWidth < 1) {
                throw usage("--deep-width must be >= 1, got " + deepWidth);
            }
            List<RunSpec> specs = new ArrayList<>();
            for (Mlp.HiddenUnits units : hiddenUnits(activations, "--activations")) {
                if (units.activation().equals(Mlp.MAXOUT)) {
                    throw usage("maxout has no separate activation to normalise in front of; leave it out of"
                            + " --activations");
                }
                RunSpec plain = new RunSpec(units.activation(), units.activation(),
                        adam(units, hidden(), Loss.CATEGORICAL_CROSSENTROPY));
                specs.add(plain);
                specs.add(plain.variant(NORMALIZED, "-batch-norm", plain.model().withBatchNorm(true), Clipping.NONE));
            }
            return specs;
        }

        @Override
        void report(ExperimentReport report, List<Run> runs, String setting) {
            String model = TrainCommand.architecture(Mnist.PIXELS, hidden(), Mnist.CLASS_COUNT)
                    + ", categorical_crossentropy, Adam (lr 0.001), glorot_uniform";
            HtmlReport page = report.page();
            page.paragraph("A deep MLP (" + model + ") trained once per activation as it is, and once with every"
                    + " hidden layer as Dense (linear) -> BatchNormalization -> activation. Without it, each layer"
                    + " multiplies the gradient on its way back by its weights and its activation's derivative (at"
                    + " most 0.25 for sigmoid), so after " + deepLayers + " layers little reaches the input; the"
                    + " normalisation keeps every pre-activation at mean 0 and variance 1 over the batch, in the"
                    + " activation's steep middle, and the layers' gradients stay of one size.");
            page.paragraph("Every run: " + setting + ".");
            normalizationVerdicts(page, runs);
            problemVerdicts(page, runs);
            figure(report, "Gradient norm against depth, epoch 1", "For each run, the mean norm of each kernel's"
                    + " gradient over the steps of the first epoch, from layer 1 (next to the input) to the output"
                    + " layer, on a log scale: a line that falls to the left is a gradient that vanishes on its way"
                    + " back to the input.", depthChart(model, runs), "gradient-norm-by-depth");
            page.table("Layer 1 / output layer gradient norm, epoch 1", Gradients.ratioTable(runs));
            figure(report, "Training loss per epoch", null, ExperimentReport.metricPerEpoch("Training loss per epoch",
                    model, "training loss", true, runs, "loss"), "loss");
            figure(report, "Test accuracy per epoch", "A normalised net validates with the moving averages of the"
                    + " batch statistics, which lag the weights while they change fast: its test accuracy can trail"
                    + " its training accuracy for the first epoch.", ExperimentReport.metricPerEpoch(
                            "Test accuracy per epoch", model, "val_accuracy", false, runs, "val_accuracy"),
                    "val-accuracy");
            runsSection(report, runs);
        }

        /** For each activation, how much more of the output layer's gradient layer 1 gets with normalisation. */
        private static void normalizationVerdicts(HtmlReport page, List<Run> runs) {
            for (Pair pair : pairs(runs, NORMALIZED)) {
                Run plain = pair.without();
                Run normalized = pair.with();
                double without = plain.firstToLastRatio();
                double with = normalized.firstToLastRatio();
                String detail = String.format(Locale.ROOT, "In the first epoch layer 1 receives %s of the output"
                        + " layer's gradient norm without batch normalization and %s with it; test accuracy after"
                        + " the last epoch %.4f without, %.4f with.", ratioText(without), ratioText(with),
                        plain.last("val_accuracy"), normalized.last("val_accuracy"));
                if (without < Diagnosis.VANISHING_RATIO && with > 10 * without) {
                    page.verdict(HtmlReport.Tone.SUCCESS, plain.name() + ": batch normalization heals the vanishing"
                            + " gradient", detail);
                } else if (without < Diagnosis.VANISHING_RATIO) {
                    page.verdict(HtmlReport.Tone.WARNING, plain.name() + ": the gradient vanishes, and batch"
                            + " normalization does not heal it in this run", detail);
                } else {
                    page.verdict(HtmlReport.Tone.INFO, plain.name() + ": no vanishing gradient to heal", detail);
                }
            }
        }

        @Override
        String outcome(List<Run> runs) {
            return "layer 1 / output ||dW|| in epoch 1: " + runs.stream()
                    .map(r -> r.name() + " " + ratioText(r.firstToLastRatio())).collect(Collectors.joining(", "));
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** Exploding gradients: the same ReLU MLP from kernels of growing initial scale, and gradient clipping's cure. */
    @Command(name = "init", mixinStandardHelpOptions = true,
            versionProvider = GradScope.Version.class, sortOptions = false,
            description = "Exploding gradients: the chapter's ReLU MLP from random_normal kernels of growing standard"
                    + " deviation, trained with plain SGD (or --optimizer's); names the runs whose gradients explode"
                    + " and the step where training broke. With --clip-norm or --clip-value every σ is trained again"
                    + " with its gradients clipped, and the report says σ by σ what clipping changed.")
    static final class Init extends Experiment {
        /** A run "learned" when its final test accuracy reaches this (chance is 0.1). */
        static final double LEARNED_ACCURACY = 0.5;
        /** The suffix of a clipped run's name, and of its folder. */
        static final String CLIPPED = " clipped";
        static final String CLIPPED_DIR = "-clipped";

        @Option(names = "--scales", split = ",", paramLabel = "SIGMA",
                description = "Standard deviations of the kernels' random_normal initializer"
                        + " (default: 0.01,0.03,0.1,0.3,1,3).")
        double[] scales = {0.01, 0.03, 0.1, 0.3, 1, 3};

        @Option(names = "--activation", defaultValue = "relu",
                description = "Hidden activation (default: ${DEFAULT-VALUE}).")
        String activation;

        /** The experiment's optimizer when --optimizer is not given. */
        static final String DEFAULT_OPTIMIZER = OptimizerKind.SGD.id();

        /**
         * Any optimizer train takes, with the settings that apply to it (default: plain SGD, whose step is
         * proportional to the gradient; the adaptive ones' per-parameter step sizes absorb large gradients).
         */
        @Mixin
        OptimizerOptions optimizer = new OptimizerOptions(DEFAULT_OPTIMIZER);

        /** The first run's model, which every run's optimizer settings equal; set by {@link #plan}. */
        private ModelOptions.Resolved planned;

        @Option(names = "--clip-norm", paramLabel = "MAX",
                description = "Also train every σ with its gradients rescaled, before each update, to global L2 norm"
                        + " MAX whenever they are longer (Keras's global_clipnorm, PyTorch's clip_grad_norm_), in a"
                        + " run of its own beside the plain one (runs/sigma-S-clipped).")
        Double clipNorm;

        @Option(names = "--clip-value", paramLabel = "LIMIT",
                description = "Also train every σ with every gradient element clamped to [-LIMIT, LIMIT] before each"
                        + " update (Keras's clipvalue, PyTorch's clip_grad_value_); with --clip-norm too, the clipped"
                        + " runs do both, the norm first.")
        Double clipValue;

        @Mixin
        BatchNormOption batchNorm;

        Init() {
            super("init", 1, "Exploding gradients from large initial weights");
        }

        @Override
        String extraArguments() {
            return " --scales " + Arrays.stream(scales).mapToObj(ExperimentCommand::scaleText)
                    .collect(Collectors.joining(",")) + " --activation " + activation
                    + OptimizerOptions.arguments(planned)
                    + (clipNorm != null ? " --clip-norm " + scaleText(clipNorm) : "")
                    + (clipValue != null ? " --clip-value " + scaleText(clipValue) : "")
                    + batchNorm.argument();
        }

        private String optimizerId() {
            return planned.optimizerId();
        }

        private double learningRate() {
            return planned.learningRate();
        }

        private double momentum() {
            return planned.momentum();
        }

        /** The clipping of the clipped runs, checked; {@link Clipping#NONE} when neither option is given. */
        Clipping clipping() {
            return new Clipping(clipLimit(clipNorm, "--clip-norm"), clipLimit(clipValue, "--clip-value"));
        }

        private double clipLimit(Double limit, String option) {
            if (limit == null) {
                return 0;
            }
            // the backends clip with the float of the limit: 1e-50 would be 0 and 1e39 infinite
            if (!Optimizer.isPositiveFloat(limit)) {
                throw usage(option + " must be a positive number that a float can hold, got " + limit);
            }
            return limit;
        }

        @Override
        List<RunSpec> plan() {
            Mlp.HiddenUnits units = hiddenUnits(List.of(activation), "--activation").get(0);
            batchNorm.requireSeparateActivations(List.of(units), "--activation", this::usage);
            Clipping clipping = clipping();
            if (scales == null || scales.length == 0) {
                throw usage("--scales needs at least one standard deviation");
            }
            List<RunSpec> specs = new ArrayList<>();
            for (double sigma : scales) {
                if (!(sigma > 0) || Double.isInfinite(sigma)) {
                    throw usage("--scales must be positive numbers, got " + sigma);
                }
                Initializer init = new Initializer(Initializer.Kind.RANDOM_NORMAL, sigma);
                String text = scaleText(sigma);
                if (specs.stream().anyMatch(s -> s.dirName().equals("sigma-" + text))) {
                    throw usage("--scales names " + text + " twice");
                }
                ModelOptions model = chapterModel(activation, Mlp.CHAPTER_HIDDEN, init.toString());
                RunSpec plain = new RunSpec("σ=" + text, "sigma-" + text, batchNorm.applyTo(
                        optimizer.resolve(model, this::usage)));
                if (planned == null) {
                    planned = plain.model();
                }
                specs.add(plain);
                if (clipping.on()) {
                    specs.add(plain.variant(CLIPPED, CLIPPED_DIR, plain.model(), clipping));
                }
            }
            return specs;
        }

        @Override
        void report(ExperimentReport report, List<Run> runs, String setting) {
            Clipping clipping = clipping();
            List<Pair> pairs = pairs(runs, CLIPPED);
            List<Run> plain = clipping.on() ? pairs.stream().map(Pair::without).toList() : runs;
            List<Run> clipped = pairs.stream().map(Pair::with).toList();
            String optimizerText = OptimizerOptions.text(planned);
            String model = chapterMlp() + " " + activation + (batchNorm.on ? ", batch norm" : "")
                    + ", categorical_crossentropy, " + optimizerText;
            HtmlReport page = report.page();
            page.paragraph("The same MLP (" + model + ") trained from kernels drawn from a normal distribution with"
                    + " mean 0 and standard deviation σ (random_normal:σ; biases start at 0), one run per σ. Large"
                    + " weights multiply the signal at every layer on the way forward and the gradient at every layer"
                    + " on the way back, so the gradient grows with σ roughly like σ to the power of the depth; a"
                    + " step of the learning rate times that gradient makes the weights larger still, until the"
                    + " numbers overflow float32 and the gradient becomes infinite or NaN. Too small a σ does the"
                    + " opposite: the signal and the gradient shrink layer by layer and the network barely learns.");
            if (!planned.optimizer().adaptive()) {
                page.paragraph("Optimizer: " + optimizerText + ", Keras's SGD, because its step is"
                        + " proportional to the gradient and so shows an exploding gradient directly. Adam divides"
                        + " each parameter's step by the running root mean square of its gradient, so its steps stay"
                        + " of the order of the learning rate however large the gradient: it absorbs much of the"
                        + " explosion (run with --optimizer adam to compare).");
            } else {
                page.paragraph("Optimizer: " + optimizerText + ". " + stepSize() + " Plain SGD (the default of this"
                        + " experiment) shows an exploding gradient more directly.");
            }
            batchNorm.describe(page, ". The normalisation divides each pre-activation by its standard deviation over"
                    + " the batch, which undoes the kernel's scale: the signal reaching each activation no longer grows"
                    + " with σ, and a kernel's gradient shrinks as the kernel grows (scaling a kernel by c leaves the"
                    + " normalised output unchanged and divides its gradient by c). The output layer is not"
                    + " normalised: its kernel still starts at σ");
            if (clipping.on()) {
                page.paragraph(clippingExplanation(clipping));
            }
            page.paragraph("Every run: " + setting + ". Training stops at the first step whose gradient is not"
                    + " finite, before that step's update.");

            page.heading("Verdicts");
            outcomeVerdicts(page, plain);
            if (clipping.on()) {
                page.heading("What clipping changed, σ by σ");
                for (Pair pair : pairs) {
                    clippingVerdict(page, pair, clipping);
                }
            }

            figure(report, "Gradient norm at the first step against σ", "The norm of each kernel's gradient at step"
                    + " 1, before any update, against the initial standard deviation σ (both axes logarithmic): the"
                    + " explosion is already there before training starts." + (clipping.on() ? " The clipped runs"
                    + " have the same norms here: clipping acts after the gradient is measured." : ""),
                    stepOneChart(plain, model), "gradient-norm-at-step-1");
            figure(report, "Gradient norm per step", "The gradient norm of layer 1's kernel at every step, one line per"
                    + " σ, both axes logarithmic; a line ends where its gradient stopped being finite (the figure notes"
                    + " those points).", ExperimentReport.kernelGradientNormPerStep("Layer 1 gradient norm per step",
                    model, plain, 1, true), "gradient-norm-per-step");
            if (clipping.on()) {
                String clippedModel = model + ", clipped by " + clipping.text();
                figure(report, "Gradient norm per step, clipped runs", "The same for the runs clipped by "
                        + clipping.text() + ". These are the norms of the gradients as computed, before clipping (as"
                        + " gradients.csv records them), so the clipped runs still show large norms: clipping does"
                        + " not make the gradient smaller, only the step taken with it.",
                        ExperimentReport.kernelGradientNormPerStep("Layer 1 gradient norm per step, before clipping",
                                clippedModel, clipped, 1, true), "gradient-norm-per-step-clipped");
                figure(report, "Update norm per step", "The size of each step's change of layer 1's kernel, ||W after"
                        + " the step − W before||, for every run, the clipped one of each σ dashed in its colour: what"
                        + " the optimizer did with the gradient, after clipping. Here clipping shows: "
                        + updateBound(clipping, "the clipped runs' whole step")
                        + " A step that broke has no update and is not drawn.",
                        ExperimentReport.kernelUpdateNormPerStep("Layer 1 update norm per step, without and with"
                                + " clipping (dashed)", model, plain, CLIPPED, clipped, 1, true),
                        "update-norm-per-step");
                figure(report, "Final test accuracy, without and with clipping", null,
                        pairedAccuracy(pairs, model, clipping), "accuracy");
            } else {
                figure(report, "Final train and test accuracy", null, ExperimentReport.finalAccuracy("Final train"
                        + " and test accuracy per initial scale", model, "initial standard deviation of the kernels",
                        runs), "accuracy");
            }
            runsSection(report, runs);
        }

        /** The verdicts without clipping: the runs that explode (and where), those that learned, those stuck. */
        private void outcomeVerdicts(HtmlReport page, List<Run> runs) {
            List<Run> exploded = ExperimentReport.exploded(runs);
            for (Run run : exploded) {
                History h = run.history();
                String detail = h.nonFinite() != null
                        ? "Training broke at " + RunReport.where(h, h.nonFinite()) + ": the gradient became "
                                + "infinite or NaN" + (h.nonFinite().stopped() ? " and training stopped there." : ".")
                        : explodingDiagnosis(run);
                page.verdict(HtmlReport.Tone.FAILURE, run.name() + ": exploding gradients", detail
                        + String.format(Locale.ROOT, " Gradient norm of layer 1 at step 1: %s.",
                                round(stepOneNorm(run, 1))));
            }
            List<Run> learned = runs.stream().filter(r -> !r.exploded()
                    && r.last("val_accuracy") >= LEARNED_ACCURACY).toList();
            List<Run> stuck = runs.stream().filter(r -> !r.exploded()
                    && !(r.last("val_accuracy") >= LEARNED_ACCURACY)).toList();
            if (!learned.isEmpty()) {
                page.verdict(HtmlReport.Tone.SUCCESS, "Trained: " + names(learned), "Final test accuracy "
                        + accuracies(learned) + "; no gradient overflowed.");
            }
            if (!stuck.isEmpty()) {
                page.verdict(HtmlReport.Tone.WARNING, "Did not learn in " + epochs + " epoch" + (epochs == 1 ? "" : "s")
                        + ": " + names(stuck), "Final test accuracy " + accuracies(stuck) + " (below "
                        + LEARNED_ACCURACY + "; chance is 0.1). Gradient norm of layer 1 at step 1: " + stuck.stream()
                        .map(r -> r.name() + " " + round(stepOneNorm(r, 1))).collect(Collectors.joining(", ")) + ".");
            }
            if (exploded.isEmpty() && batchNorm.on) {
                page.verdict(HtmlReport.Tone.INFO, "No run exploded with batch normalization", "Every hidden layer"
                        + " normalises its pre-activations, which undoes the kernels' scale; run the same command"
                        + " without --batch-norm to see the same σ explode.");
            } else if (exploded.isEmpty()) {
                page.verdict(HtmlReport.Tone.WARNING, "No run exploded", "Try larger --scales, or --optimizer sgd.");
            }
        }

        /** The diagnosis's exploding verdicts of a run, as sentences. */
        private static String explodingDiagnosis(Run run) {
            return run.diagnosis().verdicts().stream().filter(x -> x.kind() == Diagnosis.Kind.EXPLODING)
                    .map(x -> RunReport.sentence(x.text())).collect(Collectors.joining(" "));
        }

        /** What clipping does, and what the figures of the clipped runs show and do not show. */
        private String clippingExplanation(Clipping clipping) {
            List<String> what = new ArrayList<>();
            if (clipping.globalNorm() > 0) {
                what.add("whenever the gradients of all parameters together are longer than "
                        + scaleText(clipping.globalNorm()) + " (their global L2 norm), it scales them all down to that"
                        + " length, keeping their direction (Keras's global_clipnorm, PyTorch's clip_grad_norm_)");
            }
            if (clipping.value() > 0) {
                what.add((what.isEmpty() ? "" : "then ") + "it clamps every gradient element to ["
                        + "-" + scaleText(clipping.value()) + ", " + scaleText(clipping.value()) + "], which changes"
                        + " the direction too (Keras's clipvalue, PyTorch's clip_grad_value_)");
            }
            return "Every σ is trained twice: as it is, and with its gradients clipped by " + clipping.text() + " (σ=S"
                    + CLIPPED + ", in runs/sigma-S" + CLIPPED_DIR + "). Clipping acts after the backward pass has"
                    + " computed the gradients and the profiler has measured them, before the update: "
                    + String.join("; ", what) + ". It does not make the gradient smaller where it is computed: the"
                    + " gradient norms recorded and drawn for the clipped runs are the norms before clipping, and they"
                    + " stay large. What it bounds is the step: " + updateBound(clipping, "the whole step")
                    + " A clipped step can still overflow when the forward pass or the gradient itself already does,"
                    + " and a bounded step can be too small to undo weights that start far too large.";
        }

        /**
         * How the optimizer sizes each parameter's step, and what that makes of a large gradient: the page's
         * sentences on an optimizer other than plain SGD.
         */
        private String stepSize() {
            OptimizerKind kind = planned.optimizer();
            if (kind == OptimizerKind.SGD) {
                return kind.stepRule() + ", so its steps grow with the gradient.";
            }
            if (kind == OptimizerKind.ADAGRAD) {
                double accumulator = planned.initialAccumulator();
                return kind.stepRule() + " (A = " + scaleText(accumulator) + ", --initial-accumulator), so no"
                        + " parameter moves by more than the learning rate in a step however large the gradient"
                        + (accumulator > 0
                        ? ", and while its squared gradients add little to A its step is lr × g / √A = "
                                + round(learningRate() / Math.sqrt(accumulator)) + " × g, proportional to the gradient"
                                + " as SGD's is."
                        : "; with A = 0 its first step is about the learning rate per parameter whatever the"
                                + " gradient.");
            }
            return kind.stepRule() + ", so its steps stay of the order of the learning rate however large the gradient"
                    + (kind == OptimizerKind.RMSPROP ? rmspropEpsilon() : "") + ".";
        }

        /** RMSprop's qualification: Keras puts epsilon inside the square root, which shrinks small gradients' steps. */
        private static String rmspropEpsilon() {
            return ", as long as the gradient is well above √epsilon = "
                    + round(Math.sqrt(ModelOptions.DEFAULT_EPSILON))
                    + " per parameter (Keras's epsilon, 1e-7, is inside the square root: smaller gradients get"
                    + " smaller steps, in proportion)";
        }

        /**
         * How large a clipped step can be, as far as the optimizer lets one say it exactly. With Keras's SGD momentum
         * m (v = m v - lr g, w += v) a step sums the clipped gradients of all steps so far, weighted by powers of m,
         * so it is at most 1 / (1 - m) times plain SGD's bound. Adagrad's step, lr g / √(accumulator + epsilon), is
         * at most lr |g| / √A per parameter, since the accumulator starts at A and only grows.
         */
        private String updateBound(Clipping clipping, String subject) {
            OptimizerKind kind = planned.optimizer();
            String decay = planned.weightDecay() > 0 ? " (besides the weight decay's own shrinking of the weights)"
                    : "";
            String lr = scaleText(learningRate());
            String rule;
            String factor;
            String factorValue;
            double growth;
            if (kind == OptimizerKind.SGD) {
                double momentum = momentum();
                growth = 1 / (1 - momentum);
                // Keras's Nesterov step, m v_new - lr g, has the same bound: m lr MAX / (1 - m) + lr MAX.
                rule = momentum > 0
                        ? "with SGD and momentum " + scaleText(momentum) + (planned.nesterov() ? " (Nesterov)" : "")
                                + " a step adds up the clipped gradients of every step so far, weighted by powers of"
                                + " the momentum, so "
                        : "with plain SGD the update is the learning rate times the clipped gradient, so ";
                factor = momentum > 0 ? " / (1 − " + scaleText(momentum) + ")" : "";
                factorValue = factor;
            } else if (kind == OptimizerKind.ADAGRAD && planned.initialAccumulator() > 0) {
                double accumulator = planned.initialAccumulator();
                growth = 1 / Math.sqrt(accumulator);
                rule = "adagrad divides each parameter's step by √(accumulator + epsilon), and its accumulator starts"
                        + " at A = " + scaleText(accumulator) + " and only grows, so a step moves a parameter by at"
                        + " most lr × |g| / √A in a step: ";
                factor = " / √A";
                factorValue = " / √" + scaleText(accumulator);
            } else if (kind == OptimizerKind.ADAGRAD) {
                return "with --initial-accumulator 0 adagrad's first step moves each parameter by about the learning"
                        + " rate whatever the gradient's size, so the limit sets no bound of its own on it; later"
                        + " steps shrink as the squared gradients accumulate.";
            } else {
                return kind.stepRule() + ", so a clipped run's steps stay of the order of the learning rate per"
                        + " parameter, as an unclipped run's do" + (kind == OptimizerKind.RMSPROP ? rmspropEpsilon()
                        + "; for gradients that large" : "") + ", the limit sets no bound of its own on them.";
            }
            if (clipping.globalNorm() > 0) {
                return rule + subject + " (all parameters together) is at most lr × MAX" + factor + " = " + lr + " × "
                        + scaleText(clipping.globalNorm()) + factorValue + " = "
                        + round(learningRate() * clipping.globalNorm() * growth) + " long" + decay + ".";
            }
            return rule + "no parameter moves by more than lr × LIMIT" + factor + " = " + lr + " × "
                    + scaleText(clipping.value()) + factorValue + " = "
                    + round(learningRate() * clipping.value() * growth) + " in a step" + decay + ", and a kernel of n"
                    + " weights by at most that times √n (the figure's layer 1 kernel, with its " + layerOneWeights()
                    + " weights, by " + round(learningRate() * clipping.value() * growth
                    * Math.sqrt(layerOneWeights())) + ").";
        }

        /** The weights of layer 1's kernel in this experiment's network. */
        private long layerOneWeights() {
            Mlp.HiddenUnits units = hiddenUnits(List.of(activation), "--activation").get(0);
            return (long) Mnist.PIXELS * Mlp.CHAPTER_HIDDEN[0]
                    * (units.activation().equals(Mlp.MAXOUT) ? units.maxoutPieces() : 1);
        }

        /** What became of a run, as far as clipping can change it. */
        enum Outcome {
            /** A gradient overflowed and training stopped. */
            EXPLODED("an exploding"),
            /** Finished with test accuracy of at least {@link Init#LEARNED_ACCURACY}. */
            TRAINED("a trained"),
            /** Finished below it. */
            STUCK("a stuck");

            final String phrase;

            Outcome(String phrase) {
                this.phrase = phrase;
            }

            static Outcome of(Run run) {
                if (run.history().nonFinite() != null) {
                    return EXPLODED;
                }
                return run.last("val_accuracy") >= LEARNED_ACCURACY ? TRAINED : STUCK;
            }
        }

        /** For one σ: whether clipping turned an exploding run into a trained or a stuck one, or changed nothing. */
        private void clippingVerdict(HtmlReport page, Pair pair, Clipping clipping) {
            Outcome without = Outcome.of(pair.without());
            Outcome with = Outcome.of(pair.with());
            int acted = stepsClipped(pair.with(), clipping);
            int steps = pair.with().profile() == null ? 0 : pair.with().profile().steps().size();
            String name = pair.without().name();
            HtmlReport.Tone tone;
            String headline;
            if (without == with && acted == 0 && clipping.value() == 0) {
                tone = HtmlReport.Tone.INFO;
                headline = name + ": clipping changed nothing (it never acted)";
            } else if (without == with) {
                tone = with == Outcome.EXPLODED ? HtmlReport.Tone.FAILURE : HtmlReport.Tone.INFO;
                headline = name + ": " + (with == Outcome.EXPLODED ? "the gradients overflow with clipping too"
                        : "clipping changed no outcome: " + (with == Outcome.TRAINED ? "trained" : "stuck")
                                + " without and with it");
            } else {
                tone = with == Outcome.TRAINED ? HtmlReport.Tone.SUCCESS
                        : with == Outcome.EXPLODED ? HtmlReport.Tone.FAILURE : HtmlReport.Tone.WARNING;
                headline = name + ": clipping turned " + without.phrase + " run into " + with.phrase + " one";
            }
            StringBuilder detail = new StringBuilder("Without clipping: ").append(describe(pair.without()))
                    .append(". Clipped by ").append(clipping.text()).append(": ").append(describe(pair.with()))
                    .append(".");
            if (acted >= 0) {
                detail.append(String.format(Locale.ROOT, " The global gradient norm exceeded %s at %d of %d steps.",
                        scaleText(clipping.globalNorm()), acted, steps));
            }
            detail.append(String.format(Locale.ROOT, " Layer 1's gradient norm at step 1: %s in both (measured before"
                            + " clipping); its largest step (||ΔW||): %s without clipping, %s with it.",
                    round(stepOneNorm(pair.without(), 1)), round(largestUpdate(pair.without(), 1)),
                    round(largestUpdate(pair.with(), 1))));
            page.verdict(tone, headline, detail.toString());
        }

        /** "training broke at epoch 1, step 4 ...: test accuracy 0.1135" or "test accuracy 0.6326 ...". */
        private static String describe(Run run) {
            History h = run.history();
            String accuracy = String.format(Locale.ROOT, "test accuracy %.4f", run.last("val_accuracy"));
            if (h.nonFinite() != null) {
                return "training broke at " + RunReport.where(h, h.nonFinite()) + " (a non-finite gradient); "
                        + accuracy + " with the weights it had";
            }
            return accuracy + (run.has(Diagnosis.Kind.EXPLODING) ? "; the diagnosis, which compares means over the"
                    + " first and the last steps, still calls its gradients exploding: "
                    + explodingDiagnosis(run).replaceAll("\\.$", "") : "");
        }

        /**
         * At how many steps global-norm clipping acted: the steps whose global gradient norm, from the profile's
         * per-tensor norms, exceeded the limit. -1 when that cannot be told (no norm clipping, no profile).
         */
        private static int stepsClipped(Run run, Clipping clipping) {
            Profile p = run.profile();
            if (clipping.globalNorm() == 0 || p == null) {
                return -1;
            }
            int count = 0;
            for (Profile.StepStatistics step : p.steps()) {
                double squares = 0;
                for (double norm : step.gradientNorms()) {
                    squares += norm * norm;
                }
                // A non-finite norm is not clipped: that step stops training before its update.
                count += Math.sqrt(squares) > clipping.globalNorm() && Double.isFinite(squares) ? 1 : 0;
            }
            return count;
        }

        /** The largest update norm of the kernel of layer {@code depth} over the run's steps; NaN if none. */
        private static double largestUpdate(Run run, int depth) {
            Profile p = run.profile();
            if (p == null || p.kernelSegments().size() < depth) {
                return Double.NaN;
            }
            int segment = p.kernelSegments().get(depth - 1);
            return p.steps().stream().mapToDouble(s -> s.updateNorms()[segment]).filter(Double::isFinite).max()
                    .orElse(Double.NaN);
        }

        /** Test accuracy per σ, a bar without and a bar with clipping. */
        private static BarChart pairedAccuracy(List<Pair> pairs, String model, Clipping clipping) {
            String with = "clipped by " + clipping.text();
            BarChart.Builder chart = BarChart.builder().title("Final test accuracy per initial scale, without and"
                    + " with clipping").subtitle(model).xLabel("initial standard deviation of the kernels")
                    .yLabel("test accuracy").yRange(0, 1.05).groups("without clipping", with);
            for (Pair pair : pairs) {
                chart.category(pair.without().name(), pair.without().last("val_accuracy"),
                        pair.with().last("val_accuracy"));
            }
            return chart.build();
        }

        private LineChart stepOneChart(List<Run> runs, String model) {
            LineChart.Builder chart = LineChart.builder().title("Kernel gradient norm at step 1 against initial σ")
                    .subtitle(model).xLabel("σ of the kernels' random_normal initializer").yLabel("||dL/dW|| at step 1")
                    .logX(true).logY(true).markers(true);
            int depths = runs.stream().filter(r -> r.profile() != null)
                    .mapToInt(r -> r.profile().kernelSegments().size()).min().orElse(0);
            for (int d = 1; d <= depths; d++) {
                double[] x = new double[runs.size()];
                double[] y = new double[runs.size()];
                for (int i = 0; i < runs.size(); i++) {
                    x[i] = scales[i];
                    y[i] = stepOneNorm(runs.get(i), d);
                }
                chart.series(RunReport.depthLabel(runs.get(0).profile(), d), x, y);
            }
            return chart.build();
        }

        @Override
        String outcome(List<Run> runs) {
            Clipping clipping = clipping();
            List<Pair> pairs = pairs(runs, CLIPPED);
            List<Run> plain = clipping.on() ? pairs.stream().map(Pair::without).toList() : runs;
            List<Run> exploded = ExperimentReport.exploded(plain);
            String result = exploded.isEmpty() ? "no run exploded" : "exploded: " + exploded.stream()
                    .map(r -> r.name() + (r.history().nonFinite() == null ? "" : " (non-finite gradient at "
                            + RunReport.where(r.history(), r.history().nonFinite()) + ")"))
                    .collect(Collectors.joining(", "));
            if (!clipping.on()) {
                return result;
            }
            return result + "\nclipped by " + clipping.text() + ": " + pairs.stream().map(Pair::with)
                    .map(r -> r.name() + " " + (r.history().nonFinite() != null ? "non-finite gradient at "
                            + RunReport.where(r.history(), r.history().nonFinite())
                            : String.format(Locale.ROOT, "val_accuracy %.4f", r.last("val_accuracy"))))
                    .collect(Collectors.joining(", "));
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** The optimizers side by side: one run each at its default learning rate, and the step each gives every layer. */
    @Command(name = "optimizers", mixinStandardHelpOptions = true,
            versionProvider = GradScope.Version.class, sortOptions = false,
            description = "The chapter's MLP trained once per optimizer at its Keras default learning rate, same seed"
                    + " and data: loss and test accuracy per epoch, final accuracies, and the update ratio"
                    + " ||ΔW|| / ||W|| of every layer against depth: how each optimizer sizes the step of each layer.")
    static final class Optimizers extends Experiment {
        static final List<String> DEFAULT = List.of("sgd", "sgd:0.9", "rmsprop", "adam", "adagrad");

        @Option(names = "--optimizers", split = ",", paramLabel = "ID[:MOMENTUM]",
                completionCandidates = OptimizerKind.Ids.class,
                description = "Optimizers to compare, each at its default learning rate (Keras's: 0.01 for sgd,"
                        + " 0.001 for the others); sgd:0.9 or rmsprop:0.9 adds that momentum (default:"
                        + " sgd,sgd:0.9,rmsprop,adam,adagrad; valid ids: ${COMPLETION-CANDIDATES}).")
        List<String> optimizers = new ArrayList<>(DEFAULT);

        @Option(names = "--activation", defaultValue = "relu",
                description = "Hidden activation of every run (default: ${DEFAULT-VALUE}).")
        String activation;

        @Option(names = "--hidden", split = ",", paramLabel = "WIDTH",
                description = "Hidden layer widths (default: the chapter's, 512,256,128,64).")
        int[] hidden = Mlp.CHAPTER_HIDDEN.clone();

        Optimizers() {
            super("optimizers", 3, "Optimizers: how each one sizes the step of every layer");
        }

        @Override
        String extraArguments() {
            return " --optimizers " + plan().stream().map(s -> entry(s.model())).collect(Collectors.joining(","))
                    + " --activation " + activation
                    + (Arrays.equals(hidden, Mlp.CHAPTER_HIDDEN) ? "" : " --hidden " + Arrays.stream(hidden)
                            .mapToObj(String::valueOf).collect(Collectors.joining(",")));
        }

        @Override
        List<RunSpec> plan() {
            String valid = "valid: " + OptimizerKind.validIds()
                    + ", each optionally with :MOMENTUM for sgd and rmsprop (sgd:0.9)";
            if (optimizers == null || optimizers.isEmpty() || optimizers.stream().anyMatch(String::isBlank)) {
                throw usage("--optimizers needs a list of optimizers without empty entries, got "
                        + (optimizers == null ? "none" : "'" + String.join(",", optimizers) + "'") + "; " + valid);
            }
            hiddenUnits(List.of(activation), "--activation");
            if (hidden.length == 0 || Arrays.stream(hidden).anyMatch(w -> w < 1)) {
                throw usage("--hidden needs widths >= 1, got " + Arrays.toString(hidden));
            }
            List<RunSpec> specs = new ArrayList<>();
            for (String entry : optimizers) {
                String[] parts = entry.trim().split(":", -1);
                String id = parts[0].trim().toLowerCase(Locale.ROOT);
                if (parts.length > 2 || !OptimizerKind.ids().contains(id)) {
                    throw usage("--optimizers: unknown optimizer '" + entry + "'; " + valid);
                }
                ModelOptions model = chapterModel(activation, hidden, "glorot_uniform");
                model.optimizer.id = id;
                if (parts.length == 2) {
                    try {
                        model.optimizer.momentum = Double.parseDouble(parts[1]);
                    } catch (NumberFormatException e) {
                        throw usage("--optimizers " + entry + ": the momentum '" + parts[1] + "' is not a number");
                    }
                }
                ModelOptions.Resolved resolved = model.resolve(message -> usage("--optimizers " + entry + ": "
                        + message));
                String momentum = resolved.momentum() > 0 ? plainNumber(resolved.momentum()) : null;
                RunSpec spec = new RunSpec(id + (momentum == null ? "" : " momentum " + momentum),
                        id + (momentum == null ? "" : "-momentum-" + momentum), resolved);
                if (specs.stream().anyMatch(s -> s.dirName().equals(spec.dirName()))) {
                    throw usage("--optimizers names " + spec.name() + " twice: " + String.join(",", optimizers));
                }
                specs.add(spec);
            }
            return specs;
        }

        /**
         * A run's entry of {@code --optimizers} as the page's command line gives it: the id in lower case, then
         * {@code :MOMENTUM} when it has one, e.g. {@code sgd:0.9}.
         */
        private static String entry(ModelOptions.Resolved model) {
            return model.optimizerId() + (model.momentum() > 0 ? ":" + plainNumber(model.momentum()) : "");
        }

        /** Each run's optimizer as the page names it, e.g. "sgd (lr 0.01, momentum 0.9)". */
        private static String optimizerText(List<RunSpec> specs, Run run) {
            return specs.stream().filter(s -> s.name().equals(run.name())).findFirst()
                    .map(s -> OptimizerOptions.text(s.model())).orElse(run.name());
        }

        @Override
        void report(ExperimentReport report, List<Run> runs, String setting) {
            List<RunSpec> specs = plan();
            String model = TrainCommand.architecture(Mnist.PIXELS, hidden, Mnist.CLASS_COUNT) + " " + activation
                    + ", categorical_crossentropy, glorot_uniform";
            boolean maxout = specs.get(0).model().units().activation().equals(Mlp.MAXOUT);
            HtmlReport page = report.page();
            page.paragraph("The same MLP (" + model + ") trained once per optimizer, each at its Keras default"
                    + " learning rate, from the same initial weights on the same batches (one seed): " + runs.stream()
                    .map(r -> optimizerText(specs, r)).collect(Collectors.joining(", ")) + ". Keras's defaults are"
                    + " what a user gets without tuning; they are not each optimizer's best rate, so the accuracies"
                    + " compare the defaults, not the methods at their best.");
            page.paragraph("What sets them apart is the size of the step each one gives each layer. The update"
                    + " ratio ||ΔW|| / ||W|| of a kernel is how far one step moves it relative to its size (the"
                    + " profiler measures it at every step, gradients.csv's update_ratio; about 1e-3 is the usual rule"
                    + " of thumb). SGD's step is the learning rate times the gradient, so its ratios follow each"
                    + " layer's gradient norm over its weight norm: even where the gradient reaches every layer alike,"
                    + " uneven where it vanishes or explodes on its way back. RMSprop, Adam and their kin divide each"
                    + " element's step by a running root mean square of its own gradient, so each element's step is"
                    + " a roughly constant fraction of the learning rate whatever its gradient's size, and a layer's"
                    + " ratio is about that step over its weights' typical size, whatever its gradient: glorot_uniform"
                    + " draws that size as √(2 / (fan_in + fan_out))" + (maxout ? " (a maxout kernel's fan_out is its"
                    + " units times their pieces)" : "") + ", so their ratios differ across layers by"
                    + " √(fan_in + fan_out), " + round(glorotSpread(specs.get(0).model())) + "x in this MLP. Adagrad"
                    + " divides by √(0.1 + the sum of all its squared gradients so far); while that sum is small"
                    + " against its starting 0.1 its step is lr × g / √0.1, SGD's rule at about a third of SGD's"
                    + " default rate.");
            page.paragraph("Every run: " + setting + ".");

            page.heading("Verdicts");
            CsvTable spreads = spreadTable(runs);
            for (Run run : runs) {
                spreadVerdict(page, run, optimizerText(specs, run));
            }
            evennessVerdict(page, runs, glorotSpread(specs.get(0).model()));
            adagradVerdict(page, runs, specs);
            bestAccuracyVerdict(page, runs);
            problemVerdicts(page, runs);

            String ratioTitle = "Update ratio against depth, epoch 1";
            figure(report, ratioTitle, "For each optimizer, the mean update ratio ||ΔW|| / ||W|| of each kernel over"
                    + " the steps of the first epoch, from layer 1 (next to the input) to the output layer, log"
                    + " scale. A flat line gives every layer the same relative step.",
                    ExperimentReport.updateRatioByDepth(ratioTitle, model, runs, 0), "update-ratio-by-depth-epoch-1");
            if (epochs > 1) {
                String lastTitle = "Update ratio against depth, epoch " + epochs;
                figure(report, lastTitle, "The same over the last epoch. Layer 1's mean update ratio, epoch 1 →"
                        + " epoch " + epochs + ": " + runs.stream().map(Optimizers::layerOneChange)
                        .collect(Collectors.joining("; ")) + ".",
                        ExperimentReport.updateRatioByDepth(lastTitle, model, runs, epochs - 1),
                        "update-ratio-by-depth-last-epoch");
            }
            report.table("Update ratio spread across layers (largest layer mean over smallest)", spreads,
                    "update-ratio-spread.csv");
            report.table("Mean update ratio of every kernel", ratioTable(runs), "update-ratios.csv");
            String stepTitle = "Layer 1 update ratio per step";
            figure(report, stepTitle, "The update ratio of layer 1's kernel at every step, one line per optimizer,"
                    + " log scale.", ExperimentReport.kernelUpdateRatioPerStep(stepTitle, model, runs, 1),
                    "update-ratio-per-step");
            figure(report, "Training loss per epoch", null, ExperimentReport.metricPerEpoch("Training loss per epoch",
                    model, "training loss", true, runs, "loss"), "loss");
            figure(report, "Test accuracy per epoch", null, ExperimentReport.metricPerEpoch("Test accuracy per epoch",
                    model, "val_accuracy", false, runs, "val_accuracy"), "val-accuracy");
            figure(report, "Final train and test accuracy", "Train accuracy is the mean over the last epoch's batches"
                    + " while the weights were still changing, as Keras reports it; test accuracy is measured after"
                    + " the epoch.", ExperimentReport.finalAccuracy("Final train and test accuracy (epoch " + epochs
                    + ")", model, "optimizer", runs), "accuracy");
            runsSection(report, runs);
        }

        /**
         * How much the weight scale of glorot_uniform, √(2 / (fan_in + fan_out)), differs across the kernels of
         * {@code model} (largest over smallest): where the update ratios of an optimizer that moves every element by a
         * like amount end up. Fans are the kernels' real shapes: a maxout layer's kernel has its units times their
         * pieces columns.
         */
        static double glorotSpread(ModelOptions.Resolved model) {
            int[] hidden = model.hidden();
            int pieces = model.units().activation().equals(Mlp.MAXOUT) ? model.units().maxoutPieces() : 1;
            double[] fans = new double[hidden.length + 1];
            int inputs = Mnist.PIXELS;
            for (int i = 0; i < hidden.length; i++) {
                fans[i] = inputs + (double) hidden[i] * pieces;
                inputs = hidden[i];
            }
            fans[hidden.length] = inputs + Mnist.CLASS_COUNT;
            return Math.sqrt(Arrays.stream(fans).max().getAsDouble() / Arrays.stream(fans).min().getAsDouble());
        }

        /** "adam 0.0048 → 0.0034 (shrank)": layer 1's mean update ratio in epoch 1 and the last, and how it moved. */
        private static String layerOneChange(Run run) {
            double[] first = epochOneRatios(run);
            double[] last = lastEpochRatios(run);
            if (first.length == 0 || last.length == 0) {
                return run.name() + " not profiled";
            }
            // within 5% is no change a reader of two digits could see either way
            String way = Math.abs(last[0] / first[0] - 1) < 0.05 ? "about the same" : last[0] > first[0] ? "grew"
                    : "shrank";
            return run.name() + " " + round(first[0]) + " → " + round(last[0]) + " (" + way + ")";
        }

        /** The epoch-1 mean update ratio of every kernel of a run; empty without a profile. */
        static double[] epochOneRatios(Run run) {
            return run.profile() == null || run.profile().epochs() == 0 ? new double[0]
                    : ExperimentReport.kernelUpdateRatiosByDepth(run.profile(), 0);
        }

        /** The last profiled epoch's mean update ratio of every kernel of a run; empty without a profile. */
        static double[] lastEpochRatios(Run run) {
            return run.profile() == null || run.profile().epochs() == 0 ? new double[0]
                    : ExperimentReport.kernelUpdateRatiosByDepth(run.profile(), run.profile().epochs() - 1);
        }

        /** Largest over smallest of {@code ratios}; NaN when one of them is not a positive finite number. */
        static double spread(double[] ratios) {
            if (ratios.length == 0 || Arrays.stream(ratios).anyMatch(r -> !(r > 0) || Double.isInfinite(r))) {
                return Double.NaN;
            }
            return Arrays.stream(ratios).max().getAsDouble() / Arrays.stream(ratios).min().getAsDouble();
        }

        /** Per run: layer 1's and the output layer's epoch-1 mean ratio, the spread in epoch 1 and the last epoch. */
        private CsvTable spreadTable(List<Run> runs) {
            CsvTable table = new CsvTable("run", "layer 1 (epoch 1)", "output layer (epoch 1)",
                    "max / min (epoch 1)", "max / min (last epoch)", "val_accuracy");
            for (Run run : runs) {
                double[] first = epochOneRatios(run);
                table.addRow(run.name(), first.length == 0 ? Double.NaN : first[0],
                        first.length == 0 ? Double.NaN : first[first.length - 1], spread(first),
                        spread(lastEpochRatios(run)), run.last("val_accuracy"));
            }
            return table;
        }

        /** One row per run and kernel: its depth, its layer, its mean update ratio over epoch 1 and the last epoch. */
        private static CsvTable ratioTable(List<Run> runs) {
            CsvTable table = new CsvTable("run", "depth", "layer", "mean update ratio (epoch 1)",
                    "mean update ratio (last epoch)");
            for (Run run : runs) {
                double[] first = epochOneRatios(run);
                double[] last = lastEpochRatios(run);
                for (int d = 0; d < first.length; d++) {
                    table.addRow(run.name(), d + 1, run.profile().segments().get(run.profile().kernelSegments()
                            .get(d)).layerName(), first[d], last[d]);
                }
            }
            return table;
        }

        /** A run's update ratios across its layers: which layer moves most and least, and by how much they differ. */
        private static void spreadVerdict(HtmlReport page, Run run, String optimizer) {
            double[] ratios = epochOneRatios(run);
            double spread = spread(ratios);
            if (Double.isNaN(spread)) {
                page.verdict(HtmlReport.Tone.WARNING, run.name() + ": no update ratio of every layer to compare",
                        "The run has no profile, or a layer's ratio is not a positive finite number: "
                                + Arrays.toString(ratios) + ".");
                return;
            }
            int max = 0;
            int min = 0;
            for (int d = 1; d < ratios.length; d++) {
                max = ratios[d] > ratios[max] ? d : max;
                min = ratios[d] < ratios[min] ? d : min;
            }
            double[] last = lastEpochRatios(run);
            page.verdict(HtmlReport.Tone.INFO, String.format(Locale.ROOT, "%s: update ratios %s across layers"
                            + " (largest / smallest layer, epoch 1)", run.name(), round(spread) + "x"),
                    String.format(Locale.ROOT, "%s. Mean ||ΔW|| / ||W|| over epoch 1 from layer 1 to the output"
                                    + " layer: %s; largest at layer %d (%s), smallest at layer %d (%s). Last epoch:"
                                    + " %s (max / min %sx). Test accuracy %.4f.", optimizer,
                            Arrays.stream(ratios).mapToObj(ExperimentCommand::round).collect(Collectors.joining(", ")),
                            max + 1, round(ratios[max]), min + 1, round(ratios[min]),
                            Arrays.stream(last).mapToObj(ExperimentCommand::round).collect(Collectors.joining(", ")),
                            round(spread(last)), run.last("val_accuracy")));
        }

        /**
         * Whether the adaptive optimizers (every run but sgd's) keep their layers' ratios more even than plain SGD:
         * the claim the experiment tests, when a plain sgd run and an adaptive one ran.
         */
        private static void evennessVerdict(HtmlReport page, List<Run> runs, double glorotSpread) {
            Run sgd = find(runs, "sgd");
            List<Run> adaptive = runs.stream().filter(r -> !r.name().startsWith("sgd")
                    && !Double.isNaN(spread(epochOneRatios(r)))).toList();
            if (sgd == null || adaptive.isEmpty() || Double.isNaN(spread(epochOneRatios(sgd)))) {
                return;
            }
            double sgdSpread = spread(epochOneRatios(sgd));
            String detail = "Largest over smallest layer's mean update ratio in epoch 1: sgd " + round(sgdSpread)
                    + "x; " + adaptive.stream().map(r -> r.name() + " " + round(spread(epochOneRatios(r))) + "x")
                    .collect(Collectors.joining(", ")) + ". An optimizer that moves every element by a like fraction of"
                    + " the learning rate gets ratios in proportion to 1 / the layer's weight scale, which"
                    + " glorot_uniform makes differ by "
                    + round(glorotSpread) + "x across this MLP's layers; plain SGD's follow the gradient.";
            List<Run> moreEven = adaptive.stream().filter(r -> spread(epochOneRatios(r)) < sgdSpread).toList();
            if (moreEven.size() == adaptive.size()) {
                page.verdict(HtmlReport.Tone.SUCCESS, "Confirmed: every adaptive optimizer gives the layers more even"
                        + " steps than plain SGD", detail);
            } else {
                List<Run> notEven = adaptive.stream().filter(r -> !moreEven.contains(r)).toList();
                page.verdict(HtmlReport.Tone.WARNING, "Not confirmed for " + names(notEven) + ": "
                        + (notEven.size() == 1 ? "its" : "their") + " layers' update ratios are no more even than"
                        + " plain SGD's", detail);
            }
        }

        /** Adagrad at Keras's default rate: how far behind the best run it ends, said rather than hidden. */
        private static void adagradVerdict(HtmlReport page, List<Run> runs, List<RunSpec> specs) {
            Run adagrad = find(runs, "adagrad");
            if (adagrad == null) {
                return;
            }
            double accumulator = specs.stream().filter(s -> s.name().equals("adagrad")).findFirst().orElseThrow()
                    .model().initialAccumulator();
            double sgdRate = OptimizerKind.SGD.defaultLearningRate();
            double best = runs.stream().mapToDouble(r -> r.last("val_accuracy")).filter(Double::isFinite).max()
                    .orElse(Double.NaN);
            double[] first = epochOneRatios(adagrad);
            double[] last = lastEpochRatios(adagrad);
            Run sgd = find(runs, "sgd");
            double[] sgdFirst = sgd == null ? new double[0] : epochOneRatios(sgd);
            String detail = String.format(Locale.ROOT, "Adagrad's default learning rate, 0.001, is Keras's. Its"
                            + " accumulator starts at 0.1 and adds every squared gradient; while the sum stays small"
                            + " against 0.1 the step is lr × g / √0.1 ≈ 0.0032 × g, SGD's rule at a third of SGD's"
                            + " default rate. Layer 1's mean update ratio: %s in epoch 1, %s in the last%s. Test"
                            + " accuracy %.4f against the best run's %.4f. train --optimizer adagrad --learning-rate"
                            + " %s (SGD's %s × √%s) gives its first steps SGD's size; its steps shrink from there as"
                            + " its accumulator grows.", first.length == 0 ? "NaN"
                            : round(first[0]), last.length == 0 ? "NaN" : round(last[0]), sgdFirst.length == 0
                            || first.length == 0 ? "" : " (plain SGD's in epoch 1: " + round(sgdFirst[0]) + ", "
                            + ratioText(first[0] / sgdFirst[0]) + " of it)", adagrad.last("val_accuracy"), best,
                    round(sgdRate * Math.sqrt(accumulator)), scaleText(sgdRate), scaleText(accumulator));
            if (adagrad.last("val_accuracy") < best - 0.05) {
                page.verdict(HtmlReport.Tone.WARNING, "adagrad learns slowly at Keras's default learning rate",
                        detail);
            } else {
                page.verdict(HtmlReport.Tone.INFO, "adagrad at Keras's default learning rate", detail);
            }
        }

        @Override
        String outcome(List<Run> runs) {
            return "update ratio, largest / smallest layer, epoch 1: " + runs.stream()
                    .map(r -> r.name() + " " + round(spread(epochOneRatios(r))) + "x")
                    .collect(Collectors.joining(", ")) + "\nval_accuracy: " + accuracies(runs);
        }
    }

    /** The kernel gradient norm of layer {@code depth} at the first step; NaN without a profile. */
    private static double stepOneNorm(Run run, int depth) {
        Profile p = run.profile();
        if (p == null || p.steps().isEmpty() || p.kernelSegments().size() < depth) {
            return Double.NaN;
        }
        return p.steps().get(0).gradientNorms()[p.kernelSegments().get(depth - 1)];
    }

    static String names(List<Run> runs) {
        return runs.stream().map(Run::name).collect(Collectors.joining(", "));
    }

    private static String accuracies(List<Run> runs) {
        return runs.stream().map(r -> String.format(Locale.ROOT, "%s: %.4f", r.name(), r.last("val_accuracy")))
                .collect(Collectors.joining(", "));
    }

    /**
     * 0.9, 0.0001, 1e-20: a number as one types it, its double's shortest digits in plain decimals down to 1e-4 and
     * as digits and a power of ten below (a momentum in a run's name and folder; Java's 1.0E-20 is not how anyone
     * writes it). Parses back to the same double.
     */
    static String plainNumber(double x) {
        java.math.BigDecimal exact = new java.math.BigDecimal(Double.toString(x)).stripTrailingZeros();
        return Math.abs(x) >= 1e-4 || x == 0 ? exact.toPlainString() : exact.toString().toLowerCase(Locale.ROOT);
    }

    /** 0.01, 0.3, 1, 3: a scale as the user would type it. */
    static String scaleText(double sigma) {
        return sigma == Math.rint(sigma) && Math.abs(sigma) < 1e6 ? String.valueOf((long) sigma)
                : String.valueOf(sigma);
    }
}
