package dev.gradscope.data;

import java.util.Arrays;

/**
 * An immutable, host-side labelled data set: {@code rows} examples of {@code featureCount}
 * unsigned-byte features each, and one class label per example.
 *
 * <p>Features stay as bytes (row-major, row {@code r} at {@code [r * featureCount, (r + 1) *
 * featureCount)}) because that is how the whole set is uploaded to the device once; the model sees
 * {@code feature * featureScale()} (1/255 for pixels, giving inputs in [0, 1]).
 *
 * <p>The arrays are copied on the way in and on the way out, so no caller can change a data set
 * that others hold. This package sits below {@code tensor} and knows nothing of devices.
 */
public final class Dataset {
    private final String name;
    private final byte[] features;
    private final int[] labels;
    private final int featureCount;
    private final int classCount;
    private final float featureScale;

    /**
     * @param name what the set is, for messages and reports ("mnist-train")
     * @param features {@code labels.length * featureCount} unsigned bytes, row-major
     * @param labels one class per row, each in {@code 0..classCount-1}
     * @param featureCount the number of features per row (784 for MNIST)
     * @param classCount the number of classes (10 for MNIST)
     * @param featureScale the factor that turns a stored byte into the model's input (1/255)
     * @throws IllegalArgumentException if the sizes disagree or a label is out of range
     */
    public Dataset(String name, byte[] features, int[] labels, int featureCount, int classCount, float featureScale) {
        if (featureCount < 1 || classCount < 1) {
            throw new IllegalArgumentException(name + ": featureCount (" + featureCount + ") and classCount ("
                    + classCount + ") must be positive");
        }
        if ((long) labels.length * featureCount != features.length) {
            throw new IllegalArgumentException(name + ": " + labels.length + " labels of " + featureCount
                    + " features need " + (long) labels.length * featureCount + " feature bytes, got " + features.length);
        }
        if (!(featureScale > 0) || Float.isInfinite(featureScale)) {
            throw new IllegalArgumentException(name + ": featureScale must be positive and finite, got " + featureScale);
        }
        for (int row = 0; row < labels.length; row++) {
            if (labels[row] < 0 || labels[row] >= classCount) {
                throw new IllegalArgumentException(name + ": label of row " + row + " is " + labels[row]
                        + ", expected 0.." + (classCount - 1));
            }
        }
        this.name = name;
        this.features = features.clone();
        this.labels = labels.clone();
        this.featureCount = featureCount;
        this.classCount = classCount;
        this.featureScale = featureScale;
    }

    public String name() {
        return name;
    }

    /** The number of examples. */
    public int rows() {
        return labels.length;
    }

    /** The number of features per example. */
    public int featureCount() {
        return featureCount;
    }

    /** The number of classes; every label is in {@code 0..classCount()-1}. */
    public int classCount() {
        return classCount;
    }

    /** The factor that turns a stored feature byte into the model's input. */
    public float featureScale() {
        return featureScale;
    }

    /** A copy of all features: {@code rows() * featureCount()} unsigned bytes, row-major. */
    public byte[] features() {
        return features.clone();
    }

    /** A copy of all labels, one per row. */
    public int[] labels() {
        return labels.clone();
    }

    /** Feature {@code column} of row {@code row} as stored, in 0..255. */
    public int feature(int row, int column) {
        checkRow(row);
        if (column < 0 || column >= featureCount) {
            throw new IndexOutOfBoundsException(name + ": column " + column + " outside 0.." + (featureCount - 1));
        }
        return features[row * featureCount + column] & 0xFF;
    }

    /** The label of row {@code row}. */
    public int label(int row) {
        checkRow(row);
        return labels[row];
    }

    /** All features times {@link #featureScale()}: {@code rows() * featureCount()} floats, row-major. */
    public float[] scaledFeatures() {
        float[] scaled = new float[features.length];
        for (int i = 0; i < features.length; i++) {
            scaled[i] = (features[i] & 0xFF) * featureScale;
        }
        return scaled;
    }

    /** The labels as one-hot rows: {@code rows() * classCount()} floats, row-major, one 1 per row. */
    public float[] oneHotLabels() {
        return oneHotLabels(0);
    }

    /**
     * The labels as smoothed one-hot rows, Keras's and PyTorch's {@code label_smoothing}: {@code onehot * (1 - ls)
     * + ls / K} with K = {@link #classCount()}, so the label's class gets {@code 1 - ls + ls / K} and every other
     * class {@code ls / K}, each computed in double and rounded to a float once (0 gives {@link #oneHotLabels()}
     * exactly). Each row still sums to 1, and its largest value is still the label's alone, which the accuracy's
     * arg-max of the targets relies on.
     *
     * @throws IllegalArgumentException when {@code labelSmoothing} is not in [0, 1), or so close to 1 that the two
     *                                  values round to the same float (then the label would be lost)
     */
    public float[] oneHotLabels(double labelSmoothing) {
        if (!(labelSmoothing >= 0 && labelSmoothing < 1)) {
            throw new IllegalArgumentException("label smoothing must be in [0, 1), got " + labelSmoothing);
        }
        float other = (float) (labelSmoothing / classCount);
        float hot = (float) (1 - labelSmoothing + labelSmoothing / classCount);
        if (classCount > 1 && !(hot > other)) {
            throw new IllegalArgumentException("label smoothing " + labelSmoothing + " over " + classCount
                    + " classes gives the label's class the float " + hot + " and the others " + other
                    + ": the label would be lost; use a smaller one");
        }
        float[] targets = new float[labels.length * classCount];
        Arrays.fill(targets, other);
        for (int row = 0; row < labels.length; row++) {
            targets[row * classCount + labels[row]] = hot;
        }
        return targets;
    }

    /** How many rows carry each class: {@code classCount()} counts. */
    public int[] labelCounts() {
        int[] counts = new int[classCount];
        for (int label : labels) {
            counts[label]++;
        }
        return counts;
    }

    /** Rows {@code from} (inclusive) to {@code to} (exclusive) as a new data set. */
    public Dataset subset(int from, int to) {
        if (from < 0 || to > rows() || from > to) {
            throw new IndexOutOfBoundsException(name + ": subset [" + from + ", " + to + ") is not within [0, "
                    + rows() + ")");
        }
        return new Dataset(name, Arrays.copyOfRange(features, from * featureCount, to * featureCount),
                Arrays.copyOfRange(labels, from, to), featureCount, classCount, featureScale);
    }

    /** A data set cut in two: the rows to train on and the rows held out to validate on. */
    public record Split(Dataset train, Dataset validation) {
    }

    /**
     * Keras's {@code validation_split}: the last {@code fraction} of the rows, taken before any shuffling, held out
     * for validation, and the rows before them to train on. The cut is Keras's, at {@code (int) (rows * (1 -
     * fraction))}, so a run holds out the same images as a Keras run given the same arrays.
     *
     * @throws IllegalArgumentException when {@code fraction} is not in (0, 1) or leaves either part without rows
     */
    public Split validationSplit(double fraction) {
        if (!(fraction > 0 && fraction < 1)) {
            throw new IllegalArgumentException("validation split must be a fraction between 0 and 1, got " + fraction);
        }
        int trainRows = (int) (rows() * (1.0 - fraction));
        if (trainRows < 1 || trainRows == rows()) {
            throw new IllegalArgumentException("validation split " + fraction + " of " + name + "'s " + rows()
                    + " rows leaves " + trainRows + " to train on and " + (rows() - trainRows)
                    + " to validate on; each needs at least one");
        }
        Dataset validation = subset(trainRows, rows());
        return new Split(subset(0, trainRows), new Dataset(name + " (validation split)", validation.features,
                validation.labels, featureCount, classCount, featureScale));
    }

    /**
     * A checksum of the rows (every feature byte and label, in order), as 8 hex digits: two data sets with the same
     * one hold the same rows, for a resumed run to check it goes on with the images it trained on.
     */
    public String checksum() {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(features);
        java.nio.ByteBuffer labelBytes = java.nio.ByteBuffer.allocate(labels.length * Integer.BYTES);
        labelBytes.asIntBuffer().put(labels);
        crc.update(labelBytes);
        return String.format(java.util.Locale.ROOT, "%08x", crc.getValue());
    }

    /** The first {@code n} rows as a new data set. */
    public Dataset take(int n) {
        return subset(0, n);
    }

    private void checkRow(int row) {
        if (row < 0 || row >= labels.length) {
            throw new IndexOutOfBoundsException(name + ": row " + row + " outside 0.." + (labels.length - 1));
        }
    }

    @Override
    public String toString() {
        return "Dataset[" + name + ": " + rows() + " rows x " + featureCount + " features, " + classCount + " classes]";
    }
}
