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
 *       gradients overflow.</li>
 * </ul>
 */
@Command(name = "experiment", mixinStandardHelpOptions = true, versionProvider = GradScope.Version.class,
        description = "Reproduce an experiment of section 5.4 of the chapter and write its report.",
        subcommands = {ExperimentCommand.Losses.class, ExperimentCommand.Activations.class,
                ExperimentCommand.Gradients.class, ExperimentCommand.Normalization.class, ExperimentCommand.Init.class})
final class ExperimentCommand implements Runnable {
    /** The experiments, for the "missing experiment" message. */
    static final String NAMES = "losses, activations, gradients, normalization or init";

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
                    + " deviation, trained with plain SGD; names the runs whose gradients explode and the step where"
                    + " training broke. With --clip-norm or --clip-value every σ is trained again with its gradients"
                    + " clipped, and the report says σ by σ what clipping changed.")
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

        @Option(names = "--optimizer", defaultValue = "sgd",
                description = "sgd or adam (default: ${DEFAULT-VALUE}; Adam's per-parameter step size absorbs"
                        + " large gradients).")
        String optimizer;

        @Option(names = "--learning-rate", paramLabel = "LR",
                description = "Learning rate (default: Keras's, 0.01 for sgd and 0.001 for adam).")
        Double learningRate;

        @Option(names = "--momentum", defaultValue = "0", description = "SGD momentum (default: ${DEFAULT-VALUE}).")
        double momentum;

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
                    .collect(Collectors.joining(",")) + " --activation " + activation + " --optimizer " + optimizerId()
                    + " --learning-rate " + learningRate() + (momentum > 0 ? " --momentum " + momentum : "")
                    + (clipNorm != null ? " --clip-norm " + scaleText(clipNorm) : "")
                    + (clipValue != null ? " --clip-value " + scaleText(clipValue) : "")
                    + batchNorm.argument();
        }

        private String optimizerId() {
            return optimizer.trim().toLowerCase(Locale.ROOT);
        }

        private double learningRate() {
            return learningRate != null ? learningRate : optimizerId().equals("adam") ? 1e-3 : 1e-2;
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
            if (!optimizerId().equals("sgd") && !optimizerId().equals("adam")) {
                throw usage("--optimizer: unknown optimizer '" + optimizer + "'; valid: sgd, adam");
            }
            if (!(learningRate() > 0) || Double.isInfinite(learningRate())) {
                throw usage("--learning-rate must be a positive number, got " + learningRate());
            }
            if (!(momentum >= 0 && momentum < 1)) {
                throw usage("--momentum must be in [0, 1), got " + momentum);
            }
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
                RunSpec plain = new RunSpec("σ=" + text, "sigma-" + text, new ModelOptions.Resolved(units,
                        Mlp.CHAPTER_HIDDEN, Loss.CATEGORICAL_CROSSENTROPY, init, optimizerId(), learningRate(),
                        momentum, false).withBatchNorm(batchNorm.on));
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
            String optimizerText = optimizerId().equals("sgd")
                    ? "plain SGD (lr " + learningRate() + (momentum > 0 ? ", momentum " + momentum : ", no momentum")
                            + ")"
                    : "Adam (lr " + learningRate() + ")";
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
            if (optimizerId().equals("sgd")) {
                page.paragraph("Optimizer: " + optimizerText + ", Keras's default SGD, because its step is"
                        + " proportional to the gradient and so shows an exploding gradient directly. Adam divides"
                        + " each parameter's step by the running root mean square of its gradient, so its steps stay"
                        + " near the learning rate however large the gradient: it absorbs much of the explosion (run"
                        + " with --optimizer adam to compare).");
            } else {
                page.paragraph("Optimizer: " + optimizerText + ". Adam divides each parameter's step by the running"
                        + " root mean square of its gradient, so its steps stay near the learning rate however large"
                        + " the gradient; plain SGD (the default of this experiment) shows an exploding gradient"
                        + " more directly.");
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
         * How large a clipped step can be, as far as the optimizer lets one say it exactly. With Keras's SGD momentum
         * m (v = m v - lr g, w += v) a step sums the clipped gradients of all steps so far, weighted by powers of m,
         * so it is at most 1 / (1 - m) times plain SGD's bound.
         */
        private String updateBound(Clipping clipping, String subject) {
            if (!optimizerId().equals("sgd")) {
                return "Adam divides each parameter's step by the running root mean square of its gradient, so a"
                        + " clipped run's steps stay near the learning rate per parameter, as an unclipped run's do:"
                        + " the limit sets no bound of its own on them.";
            }
            String lr = scaleText(learningRate());
            double growth = 1 / (1 - momentum);
            String rule = momentum > 0
                    ? "with SGD and momentum " + scaleText(momentum) + " a step adds up the clipped gradients of every"
                            + " step so far, weighted by powers of the momentum, so "
                    : "with plain SGD the update is the learning rate times the clipped gradient, so ";
            String factor = momentum > 0 ? " / (1 − " + scaleText(momentum) + ")" : "";
            if (clipping.globalNorm() > 0) {
                return rule + subject + " (all parameters together) is at most lr × MAX" + factor + " = " + lr + " × "
                        + scaleText(clipping.globalNorm()) + factor + " = "
                        + round(learningRate() * clipping.globalNorm() * growth) + " long.";
            }
            return rule + "no parameter moves by more than lr × LIMIT" + factor + " = " + lr + " × "
                    + scaleText(clipping.value()) + factor + " = " + round(learningRate() * clipping.value() * growth)
                    + " in a step, and a kernel of n weights by at most that times √n (the figure's layer 1 kernel,"
                    + " with its " + layerOneWeights() + " weights, by " + round(learningRate() * clipping.value()
                    * growth * Math.sqrt(layerOneWeights())) + ").";
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

    /** 0.01, 0.3, 1, 3: a scale as the user would type it. */
    static String scaleText(double sigma) {
        return sigma == Math.rint(sigma) && Math.abs(sigma) < 1e6 ? String.valueOf((long) sigma)
                : String.valueOf(sigma);
    }
}
