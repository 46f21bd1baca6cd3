package dev.gradscope.train;

import dev.gradscope.data.Dataset;
import dev.gradscope.nn.Sequential;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * How a classifier did per class on a data set: the confusion matrix (row: the true class, column: the predicted
 * one) and, from it, each class's precision, recall, F1 and support, as scikit-learn's {@code confusion_matrix} and
 * {@code classification_report} give them for the predicted classes. A model's predicted class is its largest
 * logit, as its evaluation's accuracy counts it. A class that is never predicted has a precision of 0, and one
 * without examples a recall of 0 (scikit-learn's {@code zero_division} default, less its warning). As in
 * scikit-learn, the macro average is over the classes present: those with examples or predictions (a class with
 * neither has no precision or recall to average); the weighted average weights each class by its support.
 */
public final class ClassificationReport {
    private final List<String> classNames;
    private final long[][] confusion;
    private final int nonFiniteRows;

    private ClassificationReport(List<String> classNames, long[][] confusion, int nonFiniteRows) {
        this.classNames = List.copyOf(classNames);
        this.confusion = confusion;
        this.nonFiniteRows = nonFiniteRows;
    }

    /**
     * Counts {@code (labels[i], predicted[i])} pairs.
     *
     * @param classNames one name per class, in label order
     */
    public static ClassificationReport of(int[] labels, int[] predicted, List<String> classNames) {
        if (labels.length != predicted.length) {
            throw new IllegalArgumentException(labels.length + " labels but " + predicted.length + " predictions");
        }
        int classes = classNames.size();
        long[][] confusion = new long[classes][classes];
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes || predicted[i] < 0 || predicted[i] >= classes) {
                throw new IllegalArgumentException("example " + i + ": label " + labels[i] + ", prediction "
                        + predicted[i] + ", outside the " + classes + " classes");
            }
            confusion[labels[i]][predicted[i]]++;
        }
        return new ClassificationReport(classNames, confusion, 0);
    }

    /** Rows per forward pass when predicting: bounds the host copy of the inputs. */
    private static final int PREDICT_ROWS = 4096;

    /**
     * Predicts every row of {@code data} with {@code model} (inference: no dropout, batch normalization's moving
     * statistics) and counts the predicted class, the first largest logit, against the label. Rows whose logits are
     * not all finite (a diverged model) are counted too, as class 0 like the evaluation's argmax does, and
     * {@link #nonFiniteRows()} says how many: a report with any says little.
     */
    public static ClassificationReport of(Sequential model, Dataset data, int batchSize, List<String> classNames) {
        if (classNames.size() != data.classCount()) {
            throw new IllegalArgumentException(classNames.size() + " class names for " + data.classCount()
                    + " classes");
        }
        int n = data.rows();
        int features = data.featureCount();
        int[] predicted = new int[n];
        int nonFinite = 0;
        for (int first = 0; first < n; first += PREDICT_ROWS) {
            int rows = Math.min(PREDICT_ROWS, n - first);
            float[][] x = new float[rows][features];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < features; c++) {
                    x[r][c] = data.feature(first + r, c) * data.featureScale();
                }
            }
            float[][] logits = model.predictLogits(x, batchSize);
            for (int r = 0; r < rows; r++) {
                predicted[first + r] = predictedClass(logits[r]);
                for (float v : logits[r]) {
                    if (!Float.isFinite(v)) {
                        nonFinite++;
                        break;
                    }
                }
            }
        }
        return new ClassificationReport(classNames, of(data.labels(), predicted, classNames).confusion, nonFinite);
    }

    /** The examples whose model outputs were not all finite; 0 for counts given directly. */
    public int nonFiniteRows() {
        return nonFiniteRows;
    }

    /** The class a model predicts from its outputs: the first largest, as the evaluation's accuracy counts it. */
    public static int predictedClass(float[] values) {
        int best = 0;
        for (int c = 1; c < values.length; c++) {
            if (values[c] > values[best]) {
                best = c;
            }
        }
        return best;
    }

    public List<String> classNames() {
        return classNames;
    }

    public int classes() {
        return classNames.size();
    }

    /** Examples of class {@code actual} predicted as {@code predicted}. */
    public long count(int actual, int predicted) {
        return confusion[actual][predicted];
    }

    /** Examples whose label is {@code c}. */
    public long support(int c) {
        long sum = 0;
        for (long v : confusion[c]) {
            sum += v;
        }
        return sum;
    }

    /** Examples predicted as {@code c}. */
    public long predictedAs(int c) {
        long sum = 0;
        for (long[] row : confusion) {
            sum += row[c];
        }
        return sum;
    }

    public long examples() {
        long sum = 0;
        for (int c = 0; c < classes(); c++) {
            sum += support(c);
        }
        return sum;
    }

    /** Of the examples predicted as {@code c}, the fraction that are {@code c}. */
    public double precision(int c) {
        long predicted = predictedAs(c);
        return predicted == 0 ? 0 : (double) confusion[c][c] / predicted;
    }

    /** Of the examples of class {@code c}, the fraction predicted as {@code c}. */
    public double recall(int c) {
        long support = support(c);
        return support == 0 ? 0 : (double) confusion[c][c] / support;
    }

    /** The harmonic mean of precision and recall; 0 when both are. */
    public double f1(int c) {
        double p = precision(c);
        double r = recall(c);
        return p + r == 0 ? 0 : 2 * p * r / (p + r);
    }

    /** The fraction of all examples predicted as their label. */
    public double accuracy() {
        long correct = 0;
        for (int c = 0; c < classes(); c++) {
            correct += confusion[c][c];
        }
        long n = examples();
        return n == 0 ? 0 : (double) correct / n;
    }

    /**
     * The class with the lowest recall among those with examples (the first, on a tie); a class without examples
     * has no recall to be weak in. -1 when no class has examples.
     */
    public int weakestClass() {
        int weakest = -1;
        for (int c = 0; c < classes(); c++) {
            if (support(c) > 0 && (weakest < 0 || recall(c) < recall(weakest))) {
                weakest = c;
            }
        }
        return weakest;
    }

    /** Whether scikit-learn's report lists class {@code c}: it has examples or predictions. */
    public boolean present(int c) {
        return support(c) > 0 || predictedAs(c) > 0;
    }

    /** {precision, recall, F1}, each the plain mean over the classes {@link #present present}; zeros if none. */
    public double[] macroAverage() {
        double[] sums = new double[3];
        int present = 0;
        for (int c = 0; c < classes(); c++) {
            if (present(c)) {
                sums[0] += precision(c);
                sums[1] += recall(c);
                sums[2] += f1(c);
                present++;
            }
        }
        for (int i = 0; i < 3 && present > 0; i++) {
            sums[i] /= present;
        }
        return sums;
    }

    /** {precision, recall, F1}, each the mean over the classes weighted by their support; zeros if no examples. */
    public double[] weightedAverage() {
        double[] sums = new double[3];
        long n = examples();
        for (int c = 0; c < classes() && n > 0; c++) {
            sums[0] += precision(c) * support(c) / n;
            sums[1] += recall(c) * support(c) / n;
            sums[2] += f1(c) * support(c) / n;
        }
        return sums;
    }

    /** The most frequent confusion, {actual, predicted}, off the diagonal; null when there is none. */
    public int[] mostConfused() {
        int[] most = null;
        for (int a = 0; a < classes(); a++) {
            for (int p = 0; p < classes(); p++) {
                if (a != p && confusion[a][p] > 0 && (most == null || confusion[a][p] > confusion[most[0]][most[1]])) {
                    most = new int[] {a, p};
                }
            }
        }
        return most;
    }

    /** A class as {@code "6 (Shirt)"}, or its label alone when the name is the label. */
    public String label(int c) {
        String name = classNames.get(c);
        return name.equals(Integer.toString(c)) ? name : c + " (" + name + ")";
    }

    /** The per-class rows and the matrix as JSON-ready maps and lists. */
    public Map<String, Object> toMap() {
        List<Map<String, Object>> perClass = new ArrayList<>();
        for (int c = 0; c < classes(); c++) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("class", c);
            row.put("name", classNames.get(c));
            row.put("precision", precision(c));
            row.put("recall", recall(c));
            row.put("f1", f1(c));
            row.put("support", support(c));
            perClass.add(row);
        }
        List<List<Long>> matrix = new ArrayList<>();
        for (long[] row : confusion) {
            matrix.add(java.util.Arrays.stream(row).boxed().toList());
        }
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("accuracy", accuracy());
        map.put("per_class", perClass);
        map.put("macro_avg", average(macroAverage()));
        map.put("weighted_avg", average(weightedAverage()));
        map.put("confusion_matrix", matrix);
        return map;
    }

    private Map<String, Object> average(double[] precisionRecallF1) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("precision", precisionRecallF1[0]);
        row.put("recall", precisionRecallF1[1]);
        row.put("f1", precisionRecallF1[2]);
        row.put("support", examples());
        return row;
    }

    /** scikit-learn's {@code classification_report} layout, then the confusion matrix. */
    public String describe() {
        int width = "weighted".length();
        for (int c = 0; c < classes(); c++) {
            width = Math.max(width, label(c).length());
        }
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-" + width + "s  %9s  %9s  %9s  %7s%n", "class", "precision", "recall",
                "f1", "support"));
        for (int c = 0; c < classes(); c++) {
            sb.append(String.format(Locale.ROOT, "%-" + width + "s  %9.4f  %9.4f  %9.4f  %7d%n", label(c), precision(c),
                    recall(c), f1(c), support(c)));
        }
        double[] macro = macroAverage();
        double[] weighted = weightedAverage();
        sb.append(String.format(Locale.ROOT, "%-" + width + "s  %9.4f  %9.4f  %9.4f  %7d%n", "macro", macro[0],
                macro[1], macro[2], examples()));
        sb.append(String.format(Locale.ROOT, "%-" + width + "s  %9.4f  %9.4f  %9.4f  %7d%n", "weighted", weighted[0],
                weighted[1], weighted[2], examples()));
        sb.append(String.format(Locale.ROOT, "accuracy %.4f%n", accuracy()));
        sb.append("confusion matrix (rows: true class, columns: predicted class):\n");
        int cell = 5;
        for (long[] row : confusion) {
            for (long v : row) {
                cell = Math.max(cell, Long.toString(v).length() + 1);
            }
        }
        sb.append(" ".repeat(4));
        for (int p = 0; p < classes(); p++) {
            sb.append(String.format(Locale.ROOT, "%" + cell + "d", p));
        }
        sb.append('\n');
        for (int a = 0; a < classes(); a++) {
            sb.append(String.format(Locale.ROOT, "%4d", a));
            for (int p = 0; p < classes(); p++) {
                sb.append(String.format(Locale.ROOT, "%" + cell + "d", confusion[a][p]));
            }
            sb.append('\n');
        }
        return sb.toString();
    }
}
