package dev.gradscope.cli;

import dev.gradscope.data.DatasetKind;
import dev.gradscope.nn.BatchNormalization;
import dev.gradscope.report.ExperimentReport;
import dev.gradscope.report.ExperimentReport.Run;
import dev.gradscope.report.HtmlReport;
import dev.gradscope.report.RunFiles;
import dev.gradscope.report.RunReport;
import dev.gradscope.train.Diagnosis;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code gradscope compare RUN_DIR...}: the runs that {@code train --out} wrote, read back ({@link RunFiles})
 * and set side by side on one page, as the experiments set their own runs: what the runs differ in, the
 * verdicts, loss and accuracy per epoch, gradient norm against depth, layer 1's gradient per step, a summary
 * table and a link to each run's own report.
 */
@Command(name = "compare", mixinStandardHelpOptions = true,
        versionProvider = GradScope.Version.class, sortOptions = false,
        description = "Compare finished train runs (the folders their --out wrote) on one page: what they differ in,"
                + " loss and accuracy per epoch, gradient norm against depth, layer 1's gradient per step, a summary"
                + " table and each run's verdicts.")
final class CompareCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(arity = "2..*", paramLabel = "RUN_DIR", description = "Two or more folders that train --out wrote.")
    List<Path> runDirs;

    @Option(names = "--out", required = true, paramLabel = "DIR",
            description = "Write report.html, summary.csv and figures/ (PNG, SVG and CSV of every chart) here.")
    Path out;

    @Option(names = "--names", split = ",", paramLabel = "NAME",
            description = "What the figures call the runs, in order (default: the folders' names).")
    List<String> names;

    /** Config entries that say where a run ran, not what it computed: left out of "what the runs differ in". */
    private static final Set<String> NOT_SETTINGS = Set.of("command", "backend_description", "data_dir",
            "resumed_at_epochs", "graph", "steps_per_graph", "tensorboard", TrainCommand.DATA_CHECKSUMS);

    @Override
    public Integer call() {
        if (names != null && names.size() != runDirs.size()) {
            throw usage("--names gives " + names.size() + " names for " + runDirs.size() + " runs");
        }
        if (names != null && (new HashSet<>(names).size() != names.size()
                || names.stream().anyMatch(String::isBlank))) {
            throw usage("--names: every run needs a name of its own, got " + names);
        }
        out = out.toAbsolutePath().normalize();
        Path outReal = realPath(out);
        Set<Path> seen = new HashSet<>();
        for (Path dir : runDirs) {
            Path real = realPath(dir.toAbsolutePath().normalize());
            if (!seen.add(real)) {
                throw usage("the run " + dir + " is given twice");
            }
            if (real.equals(outReal)) {
                throw usage("--out " + out + " is one of the runs: its report.html would be replaced");
            }
        }
        if (Files.exists(out.resolve(RunReport.HISTORY_FILE)) || Files.exists(out.resolve(ResumedRun.FILE))) {
            throw usage("--out " + out + " holds a train run: its report.html would be replaced");
        }
        List<String> labels = names != null ? names : defaultNames(runDirs);
        List<RunFiles.Run> read = new ArrayList<>();
        List<Run> runs = new ArrayList<>();
        for (int i = 0; i < runDirs.size(); i++) {
            RunFiles.Run run = RunFiles.read(runDirs.get(i));
            read.add(run);
            runs.add(new Run(labels.get(i), runDirs.get(i).toAbsolutePath().normalize(), run.history(),
                    Diagnosis.of(run.history()), run.history().epochSeconds().stream().mapToDouble(x -> x).sum(),
                    run.test(), run.modelEpoch()));
        }
        Path page = write(runs, read);
        if (read.stream().map(r -> settingOf(r.config(), "label_smoothing")).distinct().count() > 1) {
            System.out.println("note: the runs differ in label smoothing; their losses are not comparable");
        }
        // a restored run's numbers are its model's, of an earlier epoch than its last: "7 of 12"
        System.out.printf(Locale.ROOT, "%-20s %8s %10s %12s %13s %22s  %s%n", "run", "epochs", "val_loss",
                "val_accuracy", "test_accuracy", "layer 1 / output |dW|", "verdicts");
        for (Run run : runs) {
            System.out.printf(Locale.ROOT, "%-20s %8s %10.4f %12.4f %13.4f %22s  %s%n", run.name(),
                    run.restored() ? run.modelEpoch() + " of " + run.history().epochs() : run.history().epochs(),
                    run.modelLog("val_loss"), run.modelLog("val_accuracy"), run.finalTestAccuracy(),
                    Double.isNaN(run.firstToLastRatio()) ? "-" : ExperimentCommand.ratioText(run.firstToLastRatio()),
                    run.verdictKinds());
        }
        if (runs.stream().anyMatch(Run::restored)) {
            System.out.println("note: " + restoredSentence(runs, read));
        }
        System.out.println("wrote " + page);
        return 0;
    }

    /**
     * "r1 ended with the weights of epoch 7 of 12, the best val_loss (--restore-best-weights): its loss, accuracy,
     * val_ and test numbers here are that epoch's model's." for the runs that early stopping restored.
     */
    private static String restoredSentence(List<Run> runs, List<RunFiles.Run> read) {
        List<String> restored = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            Run run = runs.get(i);
            if (run.restored()) {
                restored.add(String.format(Locale.ROOT, "%s ended with the weights of epoch %d of %d, the best %s",
                        run.name(), run.modelEpoch(), run.history().epochs(), read.get(i).restored().monitor()));
            }
        }
        return String.join("; ", restored) + " (--restore-best-weights): " + (restored.size() == 1 ? "its" : "their")
                + " loss, accuracy, val_ and test numbers in the table, the best-accuracy verdict and the final-accuracy figure are"
                + " that epoch's model's.";
    }

    /** The path with links resolved, for a folder that exists; else as given. */
    private static Path realPath(Path path) {
        try {
            return Files.exists(path) ? path.toRealPath() : path;
        } catch (java.io.IOException e) {
            return path;
        }
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    /** The folders' names, or the paths as given when two folders have the same name. */
    private static List<String> defaultNames(List<Path> dirs) {
        List<String> names = dirs.stream().map(d -> Objects.toString(d.toAbsolutePath().normalize().getFileName(),
                d.toString())).toList();
        return new HashSet<>(names).size() == names.size() ? names : dirs.stream().map(Path::toString).toList();
    }

    private Path write(List<Run> runs, List<RunFiles.Run> read) {
        String title = "gradscope compare: " + runs.stream().map(Run::name).collect(Collectors.joining(", "));
        ExperimentReport report = new ExperimentReport(out, title);
        HtmlReport page = report.page();
        page.heading("Runs");
        for (int i = 0; i < runs.size(); i++) {
            page.paragraph(runs.get(i).name() + ": " + setting(read.get(i).config()) + " (" + read.get(i).dir() + ").");
        }
        page.paragraph(differences(runs, read));
        if (runs.stream().anyMatch(Run::restored)) {
            page.paragraph(restoredSentence(runs, read) + " The per-epoch curves go on to their last epoch.");
        }

        page.heading("Verdicts");
        ExperimentCommand.problemVerdicts(page, runs);
        List<String> datasets = read.stream().map(r -> datasetTitle(r.config())).distinct().toList();
        if (datasets.size() > 1) {
            // accuracies on different test sets do not rank the runs: say so instead of naming a best one
            page.verdict(HtmlReport.Tone.INFO, "No best run: the runs were tested on different data sets ("
                    + String.join(", ", datasets) + ")", "Each run's final test accuracy: " + runs.stream()
                    .map(r -> String.format(Locale.ROOT, "%s %.4f", r.name(), r.finalTestAccuracy()))
                    .collect(Collectors.joining(", "))
                    + "; an accuracy on one data set says nothing of one on another.");
        } else {
            ExperimentCommand.bestAccuracyVerdict(page, runs);
        }
        for (Run run : runs) {
            report.verdicts(run);
        }

        String subtitle = runs.size() + " runs";
        page.heading("Loss and accuracy per epoch");
        if (read.stream().map(r -> settingOf(r.config(), "label_smoothing")).distinct().count() > 1) {
            page.paragraph("The runs differ in label smoothing, so their losses are not comparable: a smoothed run's"
                    + " loss is against its smoothed targets (as Keras reports it) and cannot fall below their"
                    + " entropy. Compare their accuracies.");
        }
        List<String> heldOut = runs.stream().filter(r -> r.test() != null).map(Run::name).toList();
        if (!heldOut.isEmpty()) {
            page.paragraph("The val_loss and val_accuracy curves of " + String.join(", ", heldOut) + " are on images"
                    + " held out of the training set (--validation-split), not on the test set; their final test"
                    + " accuracy, in the verdict, the final-accuracy figure and summary.csv, is the one test-set"
                    + " evaluation after training (history.json's \"test\").");
        }
        report.figure(ExperimentReport.metricPerEpoch("Training loss per epoch", subtitle, "training loss", true, runs,
                "loss"), "loss");
        // what the val_ curves were measured on: the test set, held-out training images (--validation-split), or both
        String validated = heldOut.isEmpty() ? "test" : heldOut.size() == runs.size() ? "validation"
                : "validation or test";
        String validatedTitle = Character.toUpperCase(validated.charAt(0)) + validated.substring(1);
        report.figure(ExperimentReport.metricPerEpoch(validatedTitle + " loss per epoch", subtitle, validated + " loss (val_loss)",
                true, runs, "val_loss"), "val-loss");
        report.figure(ExperimentReport.trainAndTestAccuracy("Train and " + validated + " accuracy per epoch", subtitle,
                runs), "accuracy");
        report.figure(ExperimentReport.finalAccuracy("Final train and test accuracy", subtitle, "run", runs),
                "final-accuracy");
        boolean ratesDiffer = runs.stream().flatMap(r -> r.history().metrics()
                .getOrDefault("learning_rate", List.of()).stream()).distinct().count() > 1;
        if (ratesDiffer) {
            report.figure(ExperimentReport.metricPerEpoch("Learning rate per epoch", subtitle, "learning rate", true,
                    runs, "learning_rate"), "learning-rate");
        }

        page.heading("Gradient flow");
        List<Run> profiled = runs.stream().filter(r -> r.profile() != null && !r.profile().steps().isEmpty()).toList();
        if (profiled.size() < runs.size()) {
            page.paragraph("The gradient figures leave out the runs without a profile: " + ExperimentCommand.names(runs.stream()
                    .filter(r -> !profiled.contains(r)).toList()) + ".");
        }
        if (!profiled.isEmpty()) {
            page.paragraph("For each run, the mean norm of each kernel's gradient over the steps of an epoch, from"
                    + " layer 1 (next to the input) to the output layer: a line that falls to the left is a gradient"
                    + " that vanishes on its way back to the input.");
            report.figure(ExperimentReport.gradientNormByDepth("Gradient norm against depth, epoch 1", subtitle,
                    profiled, 0), "gradient-norm-by-depth");
            int lastCommon = profiled.stream().mapToInt(r -> r.profile().epochs()).min().orElse(1) - 1;
            if (lastCommon > 0) {
                report.figure(ExperimentReport.gradientNormByDepth("Gradient norm against depth, epoch "
                        + (lastCommon + 1), subtitle, profiled, lastCommon), "gradient-norm-by-depth-last");
            }
            page.paragraph("Layer 1's kernel gradient norm at every step: where a run's gradient grows without bound"
                    + " it explodes; a line that ends early ends where its gradient stopped being finite.");
            report.figure(ExperimentReport.kernelGradientNormPerStep("Layer 1 gradient norm per step", subtitle,
                    profiled, 1, false), "layer-1-gradient-norm-per-step");
        }
        page.heading("Summary");
        report.summary(runs).runLinks(runs.stream().filter(r -> Files.exists(r.report())).toList());
        return report.write();
    }

    /** One line on what a run trained, from its config. */
    static String setting(Map<String, Object> config) {
        if (config.isEmpty()) {
            return "no config recorded";
        }
        Object optimizer = config.get("optimizer");
        String opt = optimizer instanceof Map<?, ?> m ? m.get("name") + " (lr " + m.get("learning_rate") + ")"
                : String.valueOf(optimizer);
        Object smoothing = settingOf(config, "label_smoothing");
        String loss = config.get("loss") + (smoothing instanceof Number ls && ls.doubleValue() > 0
                ? " (label smoothing " + TrainCommand.number(ls.doubleValue()) + ")" : "");
        return String.format(Locale.ROOT, "%s, hidden %s, %s, %s, %s, batch %s, %s %s training images, %s",
                config.get("activation"), config.get("hidden"), loss, opt, config.get("init"),
                config.get("batch_size"), config.get("train_examples"), datasetTitle(config), config.get("backend"));
    }

    /** The id of the data set a run's config records: {@code mnist} for runs saved before configs recorded one. */
    private static String datasetId(Map<String, Object> config) {
        return String.valueOf(settingOf(config, "dataset"));
    }

    /**
     * Settings that configs record since a later version, with the value a run saved before then had, so that an
     * old run and a new one with the same setting do not "differ" in it (a key missing reads as null, as an option
     * not given is recorded, so only these need saying). Batch normalization's momentum and epsilon were Keras's
     * before {@code --bn-momentum} and {@code --bn-epsilon}; a run without batch normalization does not record them.
     */
    private static final Map<String, Object> RECORDED_LATER = Map.of("dataset", DatasetKind.MNIST.id(),
            "dropout", 0.0, "batch_norm", false, "validation_split", 0.0, "label_smoothing", 0.0,
            ModelOptions.BATCH_NORM_MOMENTUM, BatchNormalization.DEFAULT_MOMENTUM,
            ModelOptions.BATCH_NORM_EPSILON, ModelOptions.DEFAULT_BATCH_NORM_EPSILON, "warmup_steps", 0,
            "warmup_start", 0.0);
    /** Keys the optimizer's config has recorded later, with the value they then had: weight decay was off. */
    private static final Map<String, Object> OPTIMIZER_RECORDED_LATER = Map.of("weight_decay", 0.0);
    /** Keys Adam's config has recorded later, with the value they then had: there was no AMSGrad. */
    private static final Map<String, Object> ADAM_RECORDED_LATER = Map.of("amsgrad", false);
    /** Keys early stopping's config has recorded later, with the value they then had: nothing was restored. */
    private static final Map<String, Object> EARLY_STOPPING_RECORDED_LATER = Map.of("restore_best_weights", false);

    /** Settings a run has only with batch normalization: without it, they are absent, not Keras's defaults. */
    private static final Set<String> BATCH_NORM_SETTINGS = Set.of(ModelOptions.BATCH_NORM_MOMENTUM,
            ModelOptions.BATCH_NORM_EPSILON);

    /** A setting of a run's config, with its value before configs recorded it when they did not. */
    private static Object settingOf(Map<String, Object> config, String key) {
        if (BATCH_NORM_SETTINGS.contains(key) && !Boolean.TRUE.equals(config.get("batch_norm"))) {
            return config.get(key); // a run without batch normalization has no momentum or epsilon of one
        }
        Object value = config.containsKey(key) ? config.get(key) : RECORDED_LATER.get(key);
        if (key.equals("optimizer") && value instanceof Map<?, ?> optimizer) {
            Map<Object, Object> complete = new LinkedHashMap<>(optimizer);
            OPTIMIZER_RECORDED_LATER.forEach(complete::putIfAbsent);
            if ("adam".equals(optimizer.get("name"))) {
                ADAM_RECORDED_LATER.forEach(complete::putIfAbsent);
            }
            return complete;
        }
        if (key.equals("early_stopping") && value instanceof Map<?, ?> stopping) {
            Map<Object, Object> complete = new LinkedHashMap<>(stopping);
            EARLY_STOPPING_RECORDED_LATER.forEach(complete::putIfAbsent);
            return complete;
        }
        return value;
    }

    /** The name of a run's data set, as the id when this version does not know it. */
    private static String datasetTitle(Map<String, Object> config) {
        try {
            return DatasetKind.fromId(datasetId(config)).title();
        } catch (IllegalArgumentException e) {
            return datasetId(config);
        }
    }

    /** "The runs differ in: activation (relu, sigmoid); ..." over the config entries that are settings. */
    private static String differences(List<Run> runs, List<RunFiles.Run> read) {
        Set<String> keys = new LinkedHashSet<>();
        read.forEach(r -> keys.addAll(r.config().keySet()));
        List<String> differing = new ArrayList<>();
        for (String key : keys) {
            if (NOT_SETTINGS.contains(key)) {
                continue;
            }
            List<Object> values = read.stream().map(r -> settingOf(r.config(), key)).toList();
            if (new HashSet<>(values).size() > 1) {
                List<String> shown = new ArrayList<>();
                for (int i = 0; i < runs.size(); i++) {
                    String value = String.valueOf(values.get(i));
                    shown.add(value.equals(runs.get(i).name()) ? value : value + " (" + runs.get(i).name() + ")");
                }
                differing.add(key + ": " + String.join(", ", shown));
            }
        }
        return differing.isEmpty() ? "The runs' configs are the same (apart from where they ran)."
                : "The runs differ in: " + String.join("; ", differing) + ".";
    }
}
