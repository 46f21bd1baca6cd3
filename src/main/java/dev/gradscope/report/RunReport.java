package dev.gradscope.report;

import dev.gradscope.data.AtomicFiles;
import dev.gradscope.train.ClassificationReport;
import dev.gradscope.train.Diagnosis;
import dev.gradscope.train.Evaluation;
import dev.gradscope.train.History;
import dev.gradscope.train.NonFiniteEvent;
import dev.gradscope.train.Profile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Everything one training run leaves behind, in one folder:
 * <ul>
 *   <li>{@value #HISTORY_FILE}: the Keras-style history ({@link HistoryJson}) plus {@code non_finite} (where
 *       a gradient first stopped being finite, or null) and {@code diagnosis} (the verdicts' sentences);</li>
 *   <li>{@value #GRADIENTS_FILE}: one row per step and parameter tensor, columns {@link #GRADIENTS_HEADER};</li>
 *   <li>{@value #LAYERS_FILE}: one row per epoch and watched layer, columns {@link #LAYERS_HEADER};</li>
 *   <li>{@value #DIAGNOSIS_FILE}: {@link Diagnosis#describe()};</li>
 *   <li>{@code charts/}: loss and accuracy per epoch, kernel gradient norm per step (log y), kernel
 *       gradient norm against depth for the first (and last) epoch (log y), update/weight ratio per step
 *       (log y), and the learning rate per epoch when it changed, each as PNG, SVG and the CSV of its
 *       points;</li>
 *   <li>{@value #REPORT_FILE}: one self-contained page with the verdicts, the per-layer table, the charts
 *       and links to every file above.</li>
 * </ul>
 *
 * <p>Counting, in the files and on the page: {@code epoch}, {@code step} (within the epoch) and
 * {@code global_step} count from 1, as the progress bar and the diagnosis print them;
 * {@code layer_index} is the layer's position in the model, from 0, as in {@code Sequential.layers()};
 * depth counts the layers that have a kernel, from 1 next to the input. Without a profile (the
 * profiler switched off) the gradient charts are not written, CSVs an earlier run left in the folder are
 * deleted, and the page says so.
 *
 * <pre>{@code
 * History history = model.fit(train, options);
 * RunReport.Written w = RunReport.write(Path.of("out/relu"), "relu MLP", "784-512-256-128-64-10, Adam",
 *         history, config);
 * System.out.print(w.diagnosis().describe());
 * }</pre>
 */
public final class RunReport {
    public static final String HISTORY_FILE = "history.json";
    /** The key of {@value #HISTORY_FILE} that holds the one evaluation on the test set after training, if any. */
    public static final String TEST_KEY = "test";
    public static final String GRADIENTS_FILE = "gradients.csv";
    public static final String LAYERS_FILE = "layers.csv";
    public static final String DIAGNOSIS_FILE = "diagnosis.txt";
    public static final String CLASSES_FILE = "classes.csv";
    public static final String CONFUSION_FILE = "confusion.csv";
    public static final String REPORT_FILE = "report.html";
    /** Where the charts go, inside the run's folder. */
    public static final String CHARTS_DIR = "charts";
    /** The charts' base names (each written as .png, .svg and .csv). */
    public static final List<String> CHART_NAMES = List.of("loss", "accuracy", "gradient-norm-per-step",
            "gradient-norm-by-depth", "update-ratio-per-step");
    /** The chart a run's report adds when its learning rate changed (a schedule): the rate of every epoch. */
    public static final String LEARNING_RATE_CHART = "learning-rate";
    public static final int CHART_WIDTH = HtmlReport.DEFAULT_CHART_WIDTH;
    public static final int CHART_HEIGHT = HtmlReport.DEFAULT_CHART_HEIGHT;

    /**
     * The columns of {@value #GRADIENTS_FILE}. {@code grad_norm} is ||dL/dθ|| before clipping,
     * {@code weight_norm} ||θ|| before the update, {@code update_norm} ||θ_after − θ_before|| (NaN for a
     * step that stopped before its update), {@code update_ratio} their quotient (empty while the weights
     * are all zero, as biases are at the first step).
     */
    public static final List<String> GRADIENTS_HEADER = List.of("epoch", "step", "global_step", "layer_index", "layer",
            "parameter", "grad_norm", "weight_norm", "update_norm", "update_ratio");

    /**
     * The columns of {@value #LAYERS_FILE}: {@link Profile.UnitStatistics} of each watched layer and epoch,
     * then {@code grad_norm}, the mean over the epoch's steps of ||dL/dW|| of the layer's kernel (of the
     * layer feeding it, for an activation layer such as PReLU; empty when there is none).
     */
    public static final List<String> LAYERS_HEADER = List.of("epoch", "layer_index", "layer", "activation", "units",
            "dead_fraction", "inactive_fraction", "saturated_fraction", "soft_saturated_fraction", "mean", "std",
            "grad_norm");

    /**
     * What {@link #write} wrote.
     *
     * @param dir       the run's folder
     * @param report    its {@value #REPORT_FILE}
     * @param diagnosis the run's diagnosis
     */
    public record Written(Path dir, Path report, Diagnosis diagnosis) {
    }

    private RunReport() {
    }

    /**
     * Writes every file of the run into {@code dir} (created if missing) and returns the diagnosis.
     *
     * @param title   the page's title, e.g. {@code "sigmoid, 10 x 128"}
     * @param setting one line on what was trained, shown under the title and on the charts
     * @param config  everything the run was given, for {@value #HISTORY_FILE} and the page
     */
    public static Written write(Path dir, String title, String setting, History history, Map<String, Object> config) {
        return write(dir, title, setting, history, config, null);
    }

    /**
     * {@link #write(Path, String, String, History, Map)}, with a section on how the model ended up doing per class on
     * the test set when {@code classes} is not null ({@value #CLASSES_FILE}, {@value #CONFUSION_FILE}).
     */
    public static Written write(Path dir, String title, String setting, History history, Map<String, Object> config,
                                ClassificationReport classes) {
        return write(dir, title, setting, history, config, classes, null);
    }

    /**
     * {@link #write(Path, String, String, History, Map, ClassificationReport)} for a run that validated on a
     * held-out split of its training images, with {@code test}, the trained model's one evaluation on the test set
     * ({@code test} in {@value #HISTORY_FILE}, and in the result table); null when there is none.
     */
    public static Written write(Path dir, String title, String setting, History history, Map<String, Object> config,
                                ClassificationReport classes, Evaluation test) {
        return write(dir, title, setting, history, config, classes, test, history.epochs());
    }

    /**
     * {@link #write(Path, String, String, History, Map, ClassificationReport, Evaluation)} for a model that ended as
     * epoch {@code modelEpoch} (from 1) left it, which {@code test} evaluated: an earlier epoch than the last when
     * early stopping restored the best epoch's weights.
     */
    public static Written write(Path dir, String title, String setting, History history, Map<String, Object> config,
                                ClassificationReport classes, Evaluation test, int modelEpoch) {
        Diagnosis diagnosis = Diagnosis.of(history);
        Profile profile = history.profile();
        Path historyFile = dir.resolve(HISTORY_FILE);
        Map<String, Object> document = historyDocument(history, diagnosis, config);
        if (test != null) {
            Map<String, Object> withTest = new LinkedHashMap<>();
            document.forEach((key, value) -> {
                if (key.equals("config")) {
                    withTest.put(TEST_KEY, testDocument(test, modelEpoch));
                }
                withTest.put(key, value);
            });
            document = withTest;
        }
        HistoryJson.writeAtomically(historyFile, document);
        Path diagnosisFile = dir.resolve(DIAGNOSIS_FILE);
        AtomicFiles.writeString(diagnosisFile, diagnosis.describe());

        HtmlReport page = new HtmlReport(title);
        page.paragraph(setting);
        page.heading("Diagnosis");
        addVerdicts(page, history, diagnosis);

        page.heading("Result");
        page.table(resultTable(history, test, modelEpoch));

        Path charts = dir.resolve(CHARTS_DIR);
        List<Path> dataFiles = new ArrayList<>();
        if (profile != null && !profile.steps().isEmpty()) {
            Path gradientsFile = dir.resolve(GRADIENTS_FILE);
            gradientsTable(profile).write(gradientsFile);
            Path layersFile = dir.resolve(LAYERS_FILE);
            layersTable(profile).write(layersFile);
            dataFiles.add(gradientsFile);
            dataFiles.add(layersFile);

            page.heading("Gradient flow per layer");
            page.paragraph("Depth counts the layers with a kernel, from 1 next to the input to "
                    + profile.kernelSegments().size() + " at the output. ||dW|| is the L2 norm of the gradient of the"
                    + " layer's kernel, before clipping; 'first steps' and 'last steps' are means over the first and"
                    + " last " + Diagnosis.WINDOW + " steps of the run, and '÷ output' divides the first by the output"
                    + " layer's. Dead units passed no gradient for any example of the last epoch; saturated counts"
                    + " activations with 0 < |f'(z)| < " + profile.saturationThreshold() + " in the last epoch.");
            page.table(layerTable(profile, diagnosis));
            chart(page, gradientNormPerStep(profile, setting), charts, "gradient-norm-per-step");
            chart(page, gradientNormByDepth(profile, setting), charts, "gradient-norm-by-depth");
            chart(page, updateRatioPerStep(profile, setting), charts, "update-ratio-per-step");
        } else {
            // An earlier run's tables in the same folder would pass for this run's.
            deleteIfExists(dir.resolve(GRADIENTS_FILE));
            deleteIfExists(dir.resolve(LAYERS_FILE));
            page.heading("Gradient flow per layer");
            page.verdict(HtmlReport.Tone.INFO, "No gradient profile",
                    "The profiler was switched off for this run, so there are no per-step gradient norms, no "
                            + GRADIENTS_FILE + " and no " + LAYERS_FILE + ".");
        }

        page.heading("Loss and accuracy per epoch");
        // val_* are on the test set unless the run held out a validation split of its training images
        String validated = heldOutValidation(config) ? "validation" : "test";
        LineChart loss = LineChart.builder().title("Loss per epoch").subtitle(setting)
                .xLabel("epoch").yLabel("loss").logY(true)
                .series("train (loss)", metric(history, "loss"))
                .series(validated + " (val_loss)", metric(history, "val_loss"))
                .build();
        chart(page, loss, charts, "loss");
        LineChart accuracy = LineChart.builder().title("Accuracy per epoch").subtitle(setting)
                .xLabel("epoch").yLabel("accuracy").yRange(0, 1)
                .series("train (accuracy)", metric(history, "accuracy"))
                .series(validated + " (val_accuracy)", metric(history, "val_accuracy"))
                .build();
        chart(page, accuracy, charts, "accuracy");
        List<Double> rates = metric(history, "learning_rate");
        if (rates.stream().distinct().count() > 1) { // a schedule changed it: show when
            chart(page, LineChart.builder().title("Learning rate per epoch").subtitle(setting).xLabel("epoch")
                    .yLabel("learning rate").logY(true).markers(true).series("learning_rate", rates).build(), charts,
                    LEARNING_RATE_CHART);
        }

        if (classes != null) {
            page.heading("Per class, on the test set");
            String model = modelEpoch == history.epochs()
                    ? "The model as training left it (after epoch " + history.epochs() + ", or where a non-finite"
                            + " gradient stopped it"
                    : "The model training ended with, the weights of epoch " + modelEpoch + ", the best, which early"
                            + " stopping put back after epoch " + history.epochs() + " (--restore-best-weights";
            page.paragraph(model + "; with --save-best, model.safetensors may hold another epoch),"
                    + " predicting the class with the largest logit: precision is the fraction of the images"
                    + " predicted as a class that are of it, recall the fraction of a class's images predicted as it"
                    + " (scikit-learn's classification_report)." + (classes.examples() == 0 ? ""
                            : " Lowest recall: " + classes.label(classes.weakestClass()) + String.format(Locale.ROOT,
                                    ", %.4f.", classes.recall(classes.weakestClass())))
                    + mostConfusedText(classes));
            CsvTable perClass = classesTable(classes);
            page.table(perClass);
            CsvTable confusion = confusionTable(classes);
            page.table("Confusion matrix: rows are the true classes, columns the predicted ones", confusion);
            Path classesFile = dir.resolve(CLASSES_FILE);
            perClass.write(classesFile);
            Path confusionFile = dir.resolve(CONFUSION_FILE);
            confusion.write(confusionFile);
            dataFiles.add(classesFile);
            dataFiles.add(confusionFile);
        } else {
            deleteIfExists(dir.resolve(CLASSES_FILE));
            deleteIfExists(dir.resolve(CONFUSION_FILE));
        }

        page.heading("Files");
        List<Path> links = new ArrayList<>();
        links.add(historyFile);
        links.addAll(dataFiles);
        links.add(diagnosisFile);
        page.links(links.toArray(Path[]::new));
        CsvTable files = new CsvTable("file", "holds");
        files.addRow(HISTORY_FILE, "loss, accuracy, val_loss, val_accuracy, learning_rate and epoch_seconds per"
                + " epoch; " + TEST_KEY + " (with --validation-split: the test set's loss and accuracy after training,"
                + " and the epoch the model had reached); non_finite"
                + " (where a gradient first stopped being finite, or null); the diagnosis; the configuration");
        if (!dataFiles.isEmpty()) {
            files.addRow(GRADIENTS_FILE, "one row per step and parameter tensor: " + String.join(", ", GRADIENTS_HEADER));
            files.addRow(LAYERS_FILE, "one row per epoch and watched layer (hidden layers with a non-linear"
                    + " activation): " + String.join(", ", LAYERS_HEADER));
        }
        if (classes != null) {
            files.addRow(CLASSES_FILE, "one row per class: precision, recall, f1 and support on the test set");
            files.addRow(CONFUSION_FILE, "the confusion matrix: a row per true class, a column per predicted class");
        }
        files.addRow(DIAGNOSIS_FILE, "the verdicts and the per-layer table, as printed at the end of training");
        files.addRow(CHARTS_DIR + "/", "each chart as PNG, SVG and the CSV of its points");
        page.table(files);
        page.paragraph("Epochs and steps count from 1; layer_index is the layer's position in the model, from 0;"
                + " update_ratio is empty while a tensor's weights are all zero (biases at the first step).");
        page.heading("Configuration");
        page.preformatted(configText(config));

        Path reportFile = dir.resolve(REPORT_FILE);
        page.write(reportFile);
        return new Written(dir, reportFile, diagnosis);
    }

    private static String mostConfusedText(ClassificationReport classes) {
        int[] most = classes.mostConfused();
        return most == null ? "" : " Most often confused: " + classes.label(most[0]) + " taken for "
                + classes.label(most[1]) + ", " + classes.count(most[0], most[1]) + " times.";
    }

    /** One row per class: its name, precision, recall, F1 and support. */
    public static CsvTable classesTable(ClassificationReport classes) {
        CsvTable table = new CsvTable("class", "name", "precision", "recall", "f1", "support");
        for (int c = 0; c < classes.classes(); c++) {
            table.addRow(c, classes.classNames().get(c), classes.precision(c), classes.recall(c), classes.f1(c),
                    classes.support(c));
        }
        return table;
    }

    /** The confusion matrix, a row per true class, with the class names as the first column. */
    public static CsvTable confusionTable(ClassificationReport classes) {
        List<String> header = new ArrayList<>();
        header.add("true_class");
        for (int p = 0; p < classes.classes(); p++) {
            header.add(Integer.toString(p));
        }
        CsvTable table = new CsvTable(header);
        for (int a = 0; a < classes.classes(); a++) {
            Object[] row = new Object[classes.classes() + 1];
            row[0] = classes.label(a);
            for (int p = 0; p < classes.classes(); p++) {
                row[p + 1] = classes.count(a, p);
            }
            table.addRow(row);
        }
        return table;
    }

    private static void deleteIfExists(Path file) {
        try {
            java.nio.file.Files.deleteIfExists(file);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot delete the stale " + file + ": " + e.getMessage(), e);
        }
    }

    /** {@link HistoryJson#document} with {@code non_finite} and {@code diagnosis} before {@code config}. */
    public static Map<String, Object> historyDocument(History history, Diagnosis diagnosis, Map<String, Object> config) {
        Map<String, Object> base = HistoryJson.document(history, config);
        Map<String, Object> doc = new LinkedHashMap<>();
        base.forEach((key, value) -> {
            if (!key.equals("config")) {
                doc.put(key, value);
            }
        });
        doc.put("non_finite", nonFiniteDocument(history));
        doc.put("diagnosis", diagnosis.verdicts().stream().map(Diagnosis.Verdict::text).toList());
        doc.put("config", config);
        return doc;
    }

    private static Map<String, Object> nonFiniteDocument(History history) {
        NonFiniteEvent event = history.nonFinite();
        if (event == null) {
            return null;
        }
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("epoch", event.epoch() + 1);
        doc.put("step", event.step() + 1);
        doc.put("global_step", globalStep(history, event) + 1);
        doc.put("layer", event.layerName());
        doc.put("stopped", event.stopped());
        return doc;
    }

    /** The step since the start of training (from 0) at which {@code event} happened. */
    public static int globalStep(History history, NonFiniteEvent event) {
        Profile profile = history.profile();
        if (profile != null) {
            for (Profile.StepStatistics s : profile.steps()) {
                if (s.epoch() == event.epoch() && s.step() == event.step()) {
                    return s.globalStep();
                }
            }
        }
        // Without a profile: every earlier epoch had as many steps as the first one.
        return event.epoch() == 0 ? event.step() : -1;
    }

    /**
     * The verdict's colour: red for non-finite and exploding, amber for the other findings, green for healthy,
     * neutral without a profile.
     */
    public static HtmlReport.Tone tone(Diagnosis.Kind kind) {
        return switch (kind) {
            case NON_FINITE, EXPLODING -> HtmlReport.Tone.FAILURE;
            case VANISHING, DEAD_UNITS, SATURATION -> HtmlReport.Tone.WARNING;
            case HEALTHY -> HtmlReport.Tone.SUCCESS;
            case NOT_PROFILED -> HtmlReport.Tone.INFO;
        };
    }

    /** The verdict's bold headline. */
    public static String headline(Diagnosis.Kind kind) {
        return switch (kind) {
            case NON_FINITE -> "Exploding gradients: a gradient became infinite or NaN";
            case EXPLODING -> "Exploding gradients";
            case VANISHING -> "Vanishing gradients";
            case DEAD_UNITS -> "Dying units";
            case SATURATION -> "Saturated units";
            case HEALTHY -> "Healthy gradient flow";
            case NOT_PROFILED -> "No gradient profile";
        };
    }

    /** One callout per verdict (a run without a profile gets a neutral one, {@code NOT_PROFILED}). */
    static void addVerdicts(HtmlReport page, History history, Diagnosis diagnosis) {
        for (Diagnosis.Verdict v : diagnosis.verdicts()) {
            page.verdict(tone(v.kind()), headline(v.kind()), sentence(v.text()));
        }
    }

    /** "exploding: layer 1 ..." -> "Layer 1 ...": the headline already says what kind of finding it is. */
    public static String sentence(String verdictText) {
        int colon = verdictText.indexOf(": ");
        String rest = colon > 0 ? verdictText.substring(colon + 2) : verdictText;
        return rest.isEmpty() ? rest : Character.toUpperCase(rest.charAt(0)) + rest.substring(1) + ".";
    }

    /**
     * One row: the epochs trained and the logs of the model the run ended with, beside its test figures. With early
     * stopping's restored weights that model is an earlier epoch's ({@code modelEpoch}, from 1): a "model epoch"
     * column says which, and the logs are that epoch's, so that the row describes one model, as the command's
     * final line does.
     */
    private static CsvTable resultTable(History history, Evaluation test, int modelEpoch) {
        boolean restored = modelEpoch != history.epochs();
        List<String> columns = new ArrayList<>(List.of("epochs"));
        if (restored) {
            columns.add("model epoch");
        }
        columns.addAll(List.of("loss", "accuracy", "val_loss", "val_accuracy"));
        if (test != null) {
            columns.addAll(List.of("test_loss", "test_accuracy"));
        }
        columns.addAll(List.of("seconds", "non-finite gradient"));
        CsvTable table = new CsvTable(columns.toArray(String[]::new));
        NonFiniteEvent event = history.nonFinite();
        List<Object> row = new ArrayList<>(List.of(history.epochs()));
        if (restored) {
            row.add(modelEpoch);
        }
        // Arrays.asList: a metric the run did not log is a null cell
        row.addAll(Arrays.asList(logOf(history, "loss", modelEpoch), logOf(history, "accuracy", modelEpoch),
                logOf(history, "val_loss", modelEpoch), logOf(history, "val_accuracy", modelEpoch)));
        if (test != null) {
            row.add(test.loss());
            row.add(test.accuracy());
        }
        row.add(history.epochSeconds().stream().mapToDouble(Double::doubleValue).sum());
        row.add(event == null ? "none" : describeStep(history, event));
        table.addRow(row.toArray());
        return table;
    }

    private static Map<String, Object> testDocument(Evaluation test, int modelEpoch) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("loss", test.loss());
        doc.put("accuracy", test.accuracy());
        doc.put("examples", test.examples());
        // the model as training left it (the restored epoch's, with restore_best_weights), which --save-best may not
        // have kept
        doc.put("epoch", modelEpoch);
        return doc;
    }

    /** "epoch 1, step 4 (global step 4), first in dense_4; training stopped there". */
    public static String describeStep(History history, NonFiniteEvent event) {
        return where(history, event) + "; " + (event.stopped() ? "training stopped there" : "training went on");
    }

    /** "epoch 1, step 4 (global step 4), first in dense_4": where a gradient first stopped being finite. */
    public static String where(History history, NonFiniteEvent event) {
        int global = globalStep(history, event);
        return String.format(Locale.ROOT, "epoch %d, step %d%s, first in %s", event.epoch() + 1, event.step() + 1,
                global >= 0 ? " (global step " + (global + 1) + ")" : "", event.layerName());
    }

    /** {@code metric}'s value after epoch {@code epoch} (from 1), or null when the run did not log it then. */
    private static Double logOf(History history, String metric, int epoch) {
        List<Double> values = history.metrics().get(metric);
        return values == null || epoch < 1 || epoch > values.size() ? null : values.get(epoch - 1);
    }

    private static List<Double> metric(History history, String metric) {
        return history.metrics().getOrDefault(metric, List.of());
    }

    /** One row per step and parameter tensor, columns {@link #GRADIENTS_HEADER}. */
    public static CsvTable gradientsTable(Profile profile) {
        CsvTable table = new CsvTable(GRADIENTS_HEADER);
        List<Profile.Segment> segments = profile.segments();
        for (Profile.StepStatistics s : profile.steps()) {
            for (int i = 0; i < segments.size(); i++) {
                Profile.Segment seg = segments.get(i);
                double weight = s.weightNorms()[i];
                table.addRow(s.epoch() + 1, s.step() + 1, s.globalStep() + 1, seg.layerIndex(), seg.layerName(),
                        seg.parameter(), s.gradientNorms()[i], weight, s.updateNorms()[i],
                        weight == 0 ? null : s.updateRatio(i));
            }
        }
        return table;
    }

    /** One row per epoch and watched layer, columns {@link #LAYERS_HEADER}. */
    public static CsvTable layersTable(Profile profile) {
        CsvTable table = new CsvTable(LAYERS_HEADER);
        List<double[]> epochMeans = new ArrayList<>();
        for (int e = 0; e < profile.epochs(); e++) {
            epochMeans.add(profile.meanGradientNorms(e));
        }
        for (Profile.UnitStatistics u : profile.units()) {
            int kernel = kernelFeeding(profile, u.layerIndex());
            Double grad = kernel < 0 || u.epoch() >= epochMeans.size() ? null : epochMeans.get(u.epoch())[kernel];
            table.addRow(u.epoch() + 1, u.layerIndex(), u.layerName(), u.activation(), u.units(), u.deadFraction(),
                    u.inactiveFraction(), u.saturatedFraction(), u.softSaturatedFraction(), u.mean(), u.std(), grad);
        }
        return table;
    }

    /** The kernel segment of layer {@code layerIndex}, else of the layer right before it; -1 if neither has one. */
    private static int kernelFeeding(Profile profile, int layerIndex) {
        for (int index : new int[] {layerIndex, layerIndex - 1}) {
            for (int k : profile.kernelSegments()) {
                if (profile.segments().get(k).layerIndex() == index) {
                    return k;
                }
            }
        }
        return -1;
    }

    /**
     * The mean kernel gradient norm of each layer over {@code epoch} (from 0), by depth: element 0 is
     * the layer next to the input, the last the output layer. See {@link Profile#meanGradientNorms}.
     */
    public static double[] kernelGradientNormsByDepth(Profile profile, int epoch) {
        double[] all = profile.meanGradientNorms(epoch);
        List<Integer> kernels = profile.kernelSegments();
        double[] byDepth = new double[kernels.size()];
        for (int d = 0; d < byDepth.length; d++) {
            byDepth[d] = all[kernels.get(d)];
        }
        return byDepth;
    }

    /** "layer 3 (dense_2)": a kernel's depth and name, as the charts label it. */
    public static String depthLabel(Profile profile, int depth) {
        return "layer " + depth + " (" + profile.segments().get(profile.kernelSegments().get(depth - 1)).layerName()
                + ")";
    }

    private static double[] oneToN(int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = i + 1;
        }
        return x;
    }

    /** ||dL/dW|| of every kernel at every step (x: global step from 1), log y. */
    static LineChart gradientNormPerStep(Profile profile, String setting) {
        LineChart.Builder chart = LineChart.builder().title("Kernel gradient norm per step").subtitle(setting)
                .xLabel("step (over all epochs)").yLabel("||dL/dW||").logY(true);
        perStep(chart, profile, (s, k) -> s.gradientNorms()[k]);
        return chart.build();
    }

    /** ||ΔW|| / ||W|| of every kernel at every step, log y. */
    static LineChart updateRatioPerStep(Profile profile, String setting) {
        LineChart.Builder chart = LineChart.builder().title("Update / weight ratio per step").subtitle(setting)
                .xLabel("step (over all epochs)").yLabel("||ΔW|| / ||W||").logY(true);
        perStep(chart, profile, Profile.StepStatistics::updateRatio);
        return chart.build();
    }

    private interface StepValue {
        double of(Profile.StepStatistics step, int segment);
    }

    private static void perStep(LineChart.Builder chart, Profile profile, StepValue value) {
        List<Profile.StepStatistics> steps = profile.steps();
        double[] x = new double[steps.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = steps.get(i).globalStep() + 1;
        }
        List<Integer> kernels = profile.kernelSegments();
        for (int d = 0; d < kernels.size(); d++) {
            double[] y = new double[steps.size()];
            for (int i = 0; i < y.length; i++) {
                y[i] = value.of(steps.get(i), kernels.get(d));
            }
            chart.series(depthLabel(profile, d + 1), x, y);
        }
    }

    /** Mean kernel gradient norm against depth for the first epoch, and the last when there are several; log y. */
    static LineChart gradientNormByDepth(Profile profile, String setting) {
        LineChart.Builder chart = LineChart.builder().title("Kernel gradient norm against depth").subtitle(setting)
                .xLabel("depth (1 = next to the input)").yLabel("mean ||dL/dW|| over the epoch").logY(true);
        int depths = profile.kernelSegments().size();
        chart.series("epoch 1", oneToN(depths), kernelGradientNormsByDepth(profile, 0));
        int last = profile.epochs() - 1;
        if (last > 0) {
            chart.series("epoch " + (last + 1), oneToN(depths), kernelGradientNormsByDepth(profile, last));
        }
        return chart.build();
    }

    /** The per-layer table of the page: the diagnosis's rows with the last epoch's unit statistics. */
    private static CsvTable layerTable(Profile profile, Diagnosis diagnosis) {
        CsvTable table = new CsvTable("depth", "layer", "activation", "units", "mean ||dW|| epoch 1",
                "||dW|| first steps", "||dW|| last steps", "÷ output", "dead units %", "saturated %", "mean output",
                "std output");
        double[] epochOne = kernelGradientNormsByDepth(profile, 0);
        int lastEpoch = profile.epochs() - 1;
        List<Integer> kernels = profile.kernelSegments();
        for (Diagnosis.LayerRow row : diagnosis.layers()) {
            Profile.Segment segment = profile.segments().get(kernels.get(row.depth() - 1));
            Profile.UnitStatistics units = profile.unitsFedBy(segment.layerIndex(), lastEpoch);
            boolean output = row.depth() == kernels.size();
            table.addRow(row.depth(), row.layerName(),
                    units != null ? units.activation() : output ? "softmax (output)" : "-",
                    units == null ? null : units.units(), epochOne[row.depth() - 1], row.gradientNormStart(),
                    row.gradientNormEnd(), row.ratioToOutput(), percent(row.deadFraction()),
                    percent(row.saturatedFraction()), units == null ? null : units.mean(),
                    units == null ? null : units.std());
        }
        return table;
    }

    private static Double percent(double fraction) {
        return Double.isNaN(fraction) ? null : 100 * fraction;
    }

    private static void chart(HtmlReport page, Chart chart, Path dir, String baseName) {
        page.chart(chart, chart.writeFiles(dir, baseName, CHART_WIDTH, CHART_HEIGHT).toArray(Path[]::new));
    }

    /** {@code key: value} lines, nested maps indented, for the page. */
    static String configText(Map<String, Object> config) {
        StringBuilder sb = new StringBuilder();
        appendConfig(sb, config, "");
        return sb.toString().stripTrailing();
    }

    private static void appendConfig(StringBuilder sb, Map<?, ?> map, String indent) {
        map.forEach((key, value) -> {
            if (value instanceof Map<?, ?> nested) {
                sb.append(indent).append(key).append(":\n");
                appendConfig(sb, nested, indent + "  ");
            } else {
                sb.append(indent).append(key).append(": ").append(valueText(value)).append('\n');
            }
        });
    }

    private static String valueText(Object value) {
        if (value instanceof int[] ints) {
            return java.util.Arrays.toString(ints);
        }
        if (value instanceof double[] doubles) {
            return java.util.Arrays.toString(doubles);
        }
        return String.valueOf(value);
    }

    /** Whether a run's config says it validated on a held-out part of its training images, not the test set. */
    public static boolean heldOutValidation(Map<String, Object> config) {
        return config != null && config.get("validation_split") instanceof Number split && split.doubleValue() > 0;
    }
}
