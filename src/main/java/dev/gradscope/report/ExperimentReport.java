package dev.gradscope.report;

import dev.gradscope.train.Diagnosis;
import dev.gradscope.train.Evaluation;
import dev.gradscope.train.History;
import dev.gradscope.train.Profile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * The page that compares the runs of one experiment: figures drawn across runs (loss per epoch, train
 * and test accuracy, final accuracy bars, gradient norm against depth, gradient norm per step), a
 * summary table, verdicts, and a link to each run's own {@link RunReport}.
 *
 * <p>Files, in the experiment's folder: {@value #REPORT_FILE}, {@value #SUMMARY_FILE} (the summary
 * table), {@code figures/NAME.png|svg|csv} for each figure, and {@code runs/RUN/} for each run.
 *
 * <pre>{@code
 * ExperimentReport report = new ExperimentReport(out, "Activations");
 * report.page().paragraph("Five runs of the chapter's MLP ...");
 * report.figure(ExperimentReport.metricPerEpoch("Figure 5.17: training loss per epoch", setting, "training loss",
 *         true, runs, "loss"), "fig-5-17-loss");
 * report.summary(runs).runLinks(runs);
 * Path page = report.write();
 * }</pre>
 */
public final class ExperimentReport {
    public static final String REPORT_FILE = "report.html";
    public static final String SUMMARY_FILE = "summary.csv";
    public static final String FIGURES_DIR = "figures";
    public static final String RUNS_DIR = "runs";

    /**
     * One finished run of the experiment.
     *
     * @param name       how the figures and tables name it, e.g. {@code sigmoid} or {@code σ = 0.3}
     * @param dir        its folder, holding {@link RunReport}'s files
     * @param history    what {@code fit} returned
     * @param diagnosis  its diagnosis
     * @param seconds    wall-clock time of the run, training and evaluation
     * @param test       the one test-set evaluation after training of a run that validated on a held-out split of its
     *                   training images; null for a run validated on the test set
     * @param modelEpoch the epoch (from 1) whose weights the run ended with: its last, or an earlier one that early
     *                   stopping restored ({@code --restore-best-weights}); its final numbers are that epoch's
     */
    public record Run(String name, Path dir, History history, Diagnosis diagnosis, double seconds, Evaluation test,
                      int modelEpoch) {
        /** A run validated on the test set, whose final test accuracy is its last {@code val_accuracy}. */
        public Run(String name, Path dir, History history, Diagnosis diagnosis, double seconds) {
            this(name, dir, history, diagnosis, seconds, null);
        }

        /** A run that ended with its last epoch's weights. */
        public Run(String name, Path dir, History history, Diagnosis diagnosis, double seconds, Evaluation test) {
            this(name, dir, history, diagnosis, seconds, test, history.epochs());
        }

        /**
         * The accuracy on the test set after training: the one evaluation of a run that validated on a held-out split
         * of its training images ({@code test}), else the {@code val_accuracy} of the epoch whose weights it ended
         * with ({@link #modelLog}). NaN when there is none.
         */
        public double finalTestAccuracy() {
            return test != null ? test.accuracy() : modelLog("val_accuracy");
        }

        /** Whether the run ended with an earlier epoch's weights than its last (early stopping restored them). */
        public boolean restored() {
            return modelEpoch != history.epochs();
        }

        /**
         * {@code metric}'s value logged after the epoch whose weights the run ended with ({@link #modelEpoch}): the
         * last epoch's, or the restored one's, so that a run's final numbers describe one model, the one its test
         * figures are of. NaN when it was not recorded.
         */
        public double modelLog(String metric) {
            List<Double> values = history.metrics().get(metric);
            return values == null || modelEpoch < 1 || modelEpoch > values.size() ? Double.NaN
                    : values.get(modelEpoch - 1);
        }

        /** What its {@code val_} metrics were measured on, for labels: "test", or "validation" for a held-out split. */
        public String validatedOn() {
            return test != null ? "validation" : "test";
        }

        public Path report() {
            return dir.resolve(RunReport.REPORT_FILE);
        }

        /** The profile, or null when the profiler was off. */
        public Profile profile() {
            return history.profile();
        }

        /**
         * Mean kernel gradient norm of the first layer over the first epoch divided by the output layer's:
         * below 1, the layers next to the input learn more slowly. NaN without a profile.
         */
        public double firstToLastRatio() {
            Profile p = profile();
            if (p == null || p.steps().isEmpty()) {
                return Double.NaN;
            }
            double[] byDepth = RunReport.kernelGradientNormsByDepth(p, 0);
            return byDepth[0] / byDepth[byDepth.length - 1];
        }

        /** The last epoch's value of {@code metric}, NaN when it was not recorded. */
        public double last(String metric) {
            List<Double> values = history.metrics().get(metric);
            return values == null || values.isEmpty() ? Double.NaN : values.get(values.size() - 1);
        }

        /** Whether the diagnosis has a verdict of {@code kind}. */
        public boolean has(Diagnosis.Kind kind) {
            return diagnosis.verdicts().stream().anyMatch(v -> v.kind() == kind);
        }

        /** The kinds of its verdicts, in order, without repeats: {@code "vanishing, dead_units"}. */
        public String verdictKinds() {
            return diagnosis.verdicts().stream().map(v -> v.kind().name().toLowerCase(java.util.Locale.ROOT))
                    .distinct().collect(Collectors.joining(", "));
        }

        /** Whether the run's gradients exploded: a non-finite gradient or an exploding verdict. */
        public boolean exploded() {
            return history.nonFinite() != null || has(Diagnosis.Kind.NON_FINITE) || has(Diagnosis.Kind.EXPLODING);
        }
    }

    private final Path dir;
    private final HtmlReport page;

    /** A page titled {@code title} whose files go to {@code dir}. */
    public ExperimentReport(Path dir, String title) {
        this.dir = dir;
        this.page = new HtmlReport(title);
    }

    public Path dir() {
        return dir;
    }

    /** The page, to add headings, paragraphs and verdicts in order. */
    public HtmlReport page() {
        return page;
    }

    /** Writes the figure's PNG, SVG and CSV into {@code figures/} and inlines it in the page. */
    public ExperimentReport figure(Chart chart, String baseName) {
        return figure(chart, baseName, RunReport.CHART_WIDTH, RunReport.CHART_HEIGHT);
    }

    /** {@link #figure(Chart, String)} at a given size. */
    public ExperimentReport figure(Chart chart, String baseName, int width, int height) {
        List<Path> files = chart.writeFiles(dir.resolve(FIGURES_DIR), baseName, width, height);
        page.chart(chart, width, height, files.toArray(Path[]::new));
        return this;
    }

    /** Writes {@link #summaryTable} to {@value #SUMMARY_FILE}, shows it in the page and links the CSV. */
    public ExperimentReport summary(List<Run> runs) {
        return summary(runs, SUMMARY_FILE);
    }

    /** {@link #summary(List)} into another file of the experiment's folder, for experiments with several groups. */
    public ExperimentReport summary(List<Run> runs, String fileName) {
        CsvTable table = summaryTable(runs);
        Path file = dir.resolve(fileName);
        table.write(file);
        page.table("Summary (" + runs.size() + " run" + (runs.size() == 1 ? "" : "s") + ")", table);
        page.links(file);
        return this;
    }

    /** Writes {@code table} to {@code fileName} in the experiment's folder, shows it in the page and links the CSV. */
    public ExperimentReport table(String caption, CsvTable table, String fileName) {
        Path file = dir.resolve(fileName);
        table.write(file);
        page.table(caption, table);
        page.links(file);
        return this;
    }

    /** A line per run: its name and a link to its own report (charts, per-layer table, CSVs). */
    public ExperimentReport runLinks(List<Run> runs) {
        page.subheading("Each run's own report");
        for (Run run : runs) {
            page.link(run.name() + ": " + dir.relativize(run.report()).toString().replace('\\', '/'), run.report());
        }
        return this;
    }

    /** Writes the page to {@value #REPORT_FILE} in the experiment's folder and returns its path. */
    public Path write() {
        Path file = dir.resolve(REPORT_FILE);
        page.write(file);
        return file;
    }

    /**
     * One row per run: name, epochs, final loss, train and test accuracy, the first-to-output gradient
     * ratio of epoch 1, the step where a gradient went non-finite, the verdicts and the run time. The final numbers
     * are those of the model the run ended with ({@link Run#modelLog}); when a run among them ended with an earlier
     * epoch's weights (restored by early stopping), a "model epoch" column says which epoch each row's numbers are
     * from.
     */
    public static CsvTable summaryTable(List<Run> runs) {
        boolean anyRestored = runs.stream().anyMatch(Run::restored);
        List<String> columns = new ArrayList<>(List.of("run", "epochs"));
        if (anyRestored) {
            columns.add("model epoch");
        }
        columns.addAll(List.of("loss", "accuracy", "val_loss", "val_accuracy", "test_accuracy",
                "layer 1 / output ||dW|| (epoch 1)", "non-finite at", "verdicts", "seconds"));
        CsvTable table = new CsvTable(columns.toArray(String[]::new));
        for (Run run : runs) {
            List<Object> row = new ArrayList<>(List.of(run.name(), run.history().epochs()));
            if (anyRestored) {
                row.add(run.modelEpoch());
            }
            row.addAll(List.of(run.modelLog("loss"), run.modelLog("accuracy"), run.modelLog("val_loss"),
                    run.modelLog("val_accuracy"), run.finalTestAccuracy(), run.firstToLastRatio(),
                    run.history().nonFinite() == null ? "-"
                            : RunReport.describeStep(run.history(), run.history().nonFinite()),
                    run.verdictKinds(),
                    run.seconds()));
            table.addRow(row.toArray());
        }
        return table;
    }

    /** One line per run through {@code metric}'s value at each epoch (x from 1). */
    public static LineChart metricPerEpoch(String title, String subtitle, String yLabel, boolean logY, List<Run> runs,
                                           String metric) {
        LineChart.Builder chart = LineChart.builder().title(title).subtitle(subtitle).xLabel("epoch").yLabel(yLabel)
                .logY(logY);
        for (Run run : runs) {
            chart.series(run.name(), run.history().metrics().getOrDefault(metric, List.of()));
        }
        return chart.build();
    }

    /** Two lines per run: training accuracy ({@code NAME train}) and test accuracy ({@code NAME test}), 0 to 1. */
    public static LineChart trainAndTestAccuracy(String title, String subtitle, List<Run> runs) {
        LineChart.Builder chart = LineChart.builder().title(title).subtitle(subtitle).xLabel("epoch")
                .yLabel("accuracy").yRange(0, 1);
        for (Run run : runs) {
            chart.series(run.name() + " train", run.history().metrics().getOrDefault("accuracy", List.of()));
            chart.series(run.name() + " " + run.validatedOn(), run.history().metrics().getOrDefault("val_accuracy",
                    List.of()));
        }
        return chart.build();
    }

    /**
     * Bars of the training and test accuracy of the model each run ended with (its last epoch's, or the epoch early
     * stopping restored, named under the run's name: {@code NAME (epoch 7)}), one pair per run; {@code xLabel} names
     * what the runs vary.
     */
    public static BarChart finalAccuracy(String title, String subtitle, String xLabel, List<Run> runs) {
        BarChart.Builder chart = BarChart.builder().title(title).subtitle(subtitle).xLabel(xLabel).yLabel("accuracy")
                .yRange(0, 1.05).groups("train", "test");
        for (Run run : runs) {
            chart.category(run.restored() ? run.name() + " (epoch " + run.modelEpoch() + ")" : run.name(),
                    run.modelLog("accuracy"), run.finalTestAccuracy());
        }
        return chart.build();
    }

    /**
     * One line per run: the mean kernel gradient norm of each layer over epoch {@code epoch} (from 0)
     * against its depth (1 next to the input), log y. Runs without a profile are left out.
     */
    public static LineChart gradientNormByDepth(String title, String subtitle, List<Run> runs, int epoch) {
        LineChart.Builder chart = LineChart.builder().title(title).subtitle(subtitle)
                .xLabel("depth (1 = next to the input)")
                .yLabel("mean ||dL/dW|| over epoch " + (epoch + 1)).logY(true).markers(true);
        for (Run run : runs) {
            Profile p = run.profile();
            if (p == null || p.epochs() <= epoch) {
                continue;
            }
            double[] y = RunReport.kernelGradientNormsByDepth(p, epoch);
            double[] x = new double[y.length];
            for (int i = 0; i < x.length; i++) {
                x[i] = i + 1;
            }
            chart.series(run.name(), x, y);
        }
        return chart.build();
    }

    /**
     * The mean update ratio ||ΔW|| / ||W|| of each kernel (depth 1 next to the input first) over the steps of epoch
     * {@code epoch} (from 0), as {@code gradients.csv}'s {@code update_ratio} column holds it per step; steps whose
     * ratio is not finite (a step that stopped before its update, weights all zero) are left out; NaN where none
     * is left.
     */
    public static double[] kernelUpdateRatiosByDepth(Profile profile, int epoch) {
        List<Integer> kernels = profile.kernelSegments();
        double[] mean = new double[kernels.size()];
        for (int d = 0; d < mean.length; d++) {
            double sum = 0;
            int count = 0;
            for (Profile.StepStatistics s : profile.steps()) {
                double ratio = s.updateRatio(kernels.get(d));
                if (s.epoch() == epoch && Double.isFinite(ratio)) {
                    sum += ratio;
                    count++;
                }
            }
            mean[d] = count == 0 ? Double.NaN : sum / count;
        }
        return mean;
    }

    /**
     * One line per run: the mean update ratio ||ΔW|| / ||W|| of each kernel over epoch {@code epoch} (from 0)
     * ({@link #kernelUpdateRatiosByDepth}) against its depth, log y. Runs without a profile of that epoch are left
     * out.
     */
    public static LineChart updateRatioByDepth(String title, String subtitle, List<Run> runs, int epoch) {
        LineChart.Builder chart = LineChart.builder().title(title).subtitle(subtitle)
                .xLabel("depth (1 = next to the input)")
                .yLabel("mean ||ΔW|| / ||W|| over epoch " + (epoch + 1)).logY(true).markers(true);
        for (Run run : runs) {
            Profile p = run.profile();
            if (p == null || p.epochs() <= epoch) {
                continue;
            }
            double[] y = kernelUpdateRatiosByDepth(p, epoch);
            double[] x = new double[y.length];
            for (int i = 0; i < x.length; i++) {
                x[i] = i + 1;
            }
            chart.series(run.name(), x, y);
        }
        return chart.build();
    }

    /**
     * One line per run: the update ratio ||ΔW|| / ||W|| of the kernel at {@code depth} (1 next to the input) at
     * every step (x: global step from 1), log y.
     */
    public static LineChart kernelUpdateRatioPerStep(String title, String subtitle, List<Run> runs, int depth) {
        LineChart.Builder chart = LineChart.builder();
        for (Run run : runs) {
            Profile p = run.profile();
            if (p == null || p.kernelSegments().size() < depth) {
                continue;
            }
            int segment = p.kernelSegments().get(depth - 1);
            List<Profile.StepStatistics> steps = p.steps();
            double[] x = new double[steps.size()];
            double[] y = new double[steps.size()];
            for (int i = 0; i < x.length; i++) {
                x[i] = steps.get(i).globalStep() + 1;
                y[i] = steps.get(i).updateRatio(segment);
            }
            chart.series(run.name(), x, y);
        }
        return styled(chart, title, subtitle, "||ΔW|| / ||W|| of layer " + depth, false).build();
    }

    /**
     * One line per run: the gradient norm of the kernel at {@code depth} (1 next to the input) at every
     * step (x: global step from 1, on a log axis with {@code logX}, which spreads out the first steps where
     * an exploding run ends), log y; a run's line ends where its gradient stopped being finite.
     */
    public static LineChart kernelGradientNormPerStep(String title, String subtitle, List<Run> runs, int depth,
                                                      boolean logX) {
        LineChart.Builder chart = LineChart.builder();
        addKernelNormsPerStep(chart, runs, depth, Profile.StepStatistics::gradientNorms);
        return styled(chart, title, subtitle, "||dL/dW|| of layer " + depth, logX).build();
    }

    /**
     * {@link #kernelGradientNormPerStep} for the size of each step's update of that kernel, ||W_after −
     * W_before||: what the optimizer did with the gradient (after clipping, where there is clipping). A step
     * that stopped before its update has none and is not drawn. Each run of {@code variants}, named as a run of
     * {@code runs} followed by {@code variantSuffix}, is drawn dashed in that run's colour.
     */
    public static LineChart kernelUpdateNormPerStep(String title, String subtitle, List<Run> runs,
                                                    String variantSuffix, List<Run> variants, int depth, boolean logX) {
        LineChart.Builder chart = LineChart.builder();
        addKernelNormsPerStep(chart, runs, depth, Profile.StepStatistics::updateNorms);
        for (Run variant : variants) {
            String base = variant.name().endsWith(variantSuffix)
                    ? variant.name().substring(0, variant.name().length() - variantSuffix.length()) : null;
            boolean drawn = addKernelNormsPerStep(chart, List.of(variant), depth, Profile.StepStatistics::updateNorms)
                    == 1;
            if (drawn && runs.stream().anyMatch(r -> r.name().equals(base) && r.profile() != null)) {
                chart.variantOf(base);
            }
        }
        return styled(chart, title, subtitle, "||ΔW|| of layer " + depth, logX).build();
    }

    private static LineChart.Builder styled(LineChart.Builder chart, String title, String subtitle, String yLabel,
                                            boolean logX) {
        return chart.title(title).subtitle(subtitle).xLabel("step (over all epochs)").yLabel(yLabel).logY(true)
                .logX(logX);
    }

    /**
     * A line per run with a profile: {@code norms}' value of the kernel at {@code depth} at every step. Returns how
     * many lines it added.
     */
    private static int addKernelNormsPerStep(LineChart.Builder chart, List<Run> runs, int depth,
                                              Function<Profile.StepStatistics, double[]> norms) {
        int added = 0;
        for (Run run : runs) {
            Profile p = run.profile();
            if (p == null || p.kernelSegments().size() < depth) {
                continue;
            }
            int segment = p.kernelSegments().get(depth - 1);
            List<Profile.StepStatistics> steps = p.steps();
            double[] x = new double[steps.size()];
            double[] y = new double[steps.size()];
            for (int i = 0; i < x.length; i++) {
                x[i] = steps.get(i).globalStep() + 1;
                y[i] = norms.apply(steps.get(i))[segment];
            }
            chart.series(run.name(), x, y);
            added++;
        }
        return added;
    }

    /** The runs of {@code runs} whose gradients exploded ({@link Run#exploded()}), in order. */
    public static List<Run> exploded(List<Run> runs) {
        List<Run> result = new ArrayList<>();
        for (Run run : runs) {
            if (run.exploded()) {
                result.add(run);
            }
        }
        return result;
    }

    /** The run's verdicts as callouts, each headline prefixed with the run's name. */
    public ExperimentReport verdicts(Run run) {
        for (Diagnosis.Verdict v : run.diagnosis().verdicts()) {
            page.verdict(RunReport.tone(v.kind()), run.name() + ": " + RunReport.headline(v.kind()),
                    RunReport.sentence(v.text()));
        }
        return this;
    }
}
