package dev.gradscope.data;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * An image set in MNIST's format, MNIST itself or one of the other {@link DatasetKind}s (Fashion-MNIST was made
 * as a drop-in replacement): 28x28 grey pixels, labels 0..9, for MNIST 60,000 training and 10,000 test images.
 *
 * <p>{@link #load(DatasetKind, Path)} reads the four original IDX files, each plain or gzip, from a directory
 * that the kind's {@linkplain DatasetKind#fetchScript() fetch script} fills; {@link #loadTest(DatasetKind, Path)}
 * reads only the two test files, all that evaluating saved weights needs. {@link #loadFromClasspath(DatasetKind,
 * String)} reads the same four names (gzip) from classpath resources, such as the small subsets under
 * {@code src/test/resources}. Both check that images and labels agree in count, images are 28x28 and labels
 * are in 0..9, and name the data set in their messages.
 *
 * @param kind which data set this is
 * @param train the training images ({@code mnist-train}; {@code fashion_mnist-train} for Fashion-MNIST)
 * @param test the test images ({@code mnist-test}, {@code fashion_mnist-test})
 */
public record Mnist(DatasetKind kind, Dataset train, Dataset test) {
    public static final String TRAIN_IMAGES = "train-images-idx3-ubyte";
    public static final String TRAIN_LABELS = "train-labels-idx1-ubyte";
    public static final String TEST_IMAGES = "t10k-images-idx3-ubyte";
    public static final String TEST_LABELS = "t10k-labels-idx1-ubyte";

    public static final int IMAGE_ROWS = 28;
    public static final int IMAGE_COLUMNS = 28;
    public static final int PIXELS = IMAGE_ROWS * IMAGE_COLUMNS;
    public static final int CLASS_COUNT = 10;
    /** Pixels are stored as 0..255; the model sees them in [0, 1]. */
    public static final float PIXEL_SCALE = 1f / 255f;

    private static final String GZIP_SUFFIX = ".gz";
    private static final int IMAGE_DIMENSIONS = 3;
    private static final int LABEL_DIMENSIONS = 1;

    /** {@link #load(DatasetKind, Path)} of MNIST. */
    public static Mnist load(Path dir) {
        return load(DatasetKind.MNIST, dir);
    }

    /**
     * Loads the data set {@code kind} from {@code dir}, which holds the four standard files, each named as is
     * (plain) or with {@code .gz} (gzip).
     *
     * @throws InvalidDataException if a file is missing or malformed, or images and labels disagree; the
     *     message names the data set and says to run its fetch script
     */
    public static Mnist load(DatasetKind kind, Path dir) {
        return new Mnist(kind,
                loadSplit(kind, kind.id() + "-train", dir, TRAIN_IMAGES, TRAIN_LABELS),
                loadSplit(kind, kind.id() + "-test", dir, TEST_IMAGES, TEST_LABELS));
    }

    /**
     * Loads only the test split ({@value #TEST_IMAGES} and {@value #TEST_LABELS}, each plain or {@code .gz}) of the
     * data set {@code kind} from {@code dir}: what a command that scores saved weights reads, so that a folder
     * holding the test files alone will do.
     *
     * @throws InvalidDataException as {@link #load(DatasetKind, Path)} does, for the two test files
     */
    public static Dataset loadTest(DatasetKind kind, Path dir) {
        return loadSplit(kind, kind.id() + "-test", dir, TEST_IMAGES, TEST_LABELS);
    }

    /** {@link #loadFromClasspath(DatasetKind, String)} of MNIST. */
    public static Mnist loadFromClasspath(String resourceDir) {
        return loadFromClasspath(DatasetKind.MNIST, resourceDir);
    }

    /**
     * Loads the data set {@code kind} from classpath resources {@code resourceDir + "/" + name + ".gz"} (gzip),
     * for example {@code loadFromClasspath(DatasetKind.MNIST, "/mnist-subset")} for the subset committed with
     * the tests.
     *
     * @throws InvalidDataException if a resource is missing or malformed, or images and labels disagree
     */
    public static Mnist loadFromClasspath(DatasetKind kind, String resourceDir) {
        return new Mnist(kind,
                toDataset(kind, kind.id() + "-train", readResource(resourceDir, TRAIN_IMAGES, IMAGE_DIMENSIONS),
                        readResource(resourceDir, TRAIN_LABELS, LABEL_DIMENSIONS)),
                toDataset(kind, kind.id() + "-test", readResource(resourceDir, TEST_IMAGES, IMAGE_DIMENSIONS),
                        readResource(resourceDir, TEST_LABELS, LABEL_DIMENSIONS)));
    }

    private static String fetchHint(DatasetKind kind, Path dir) {
        return "Run " + kind.fetchScript() + " " + dir + " to download and verify " + kind.title() + ".";
    }

    private static Path findFile(DatasetKind kind, Path dir, String name) {
        Path plain = dir.resolve(name);
        Path gzipped = dir.resolve(name + GZIP_SUFFIX);
        if (Files.isRegularFile(plain)) {
            return plain;
        }
        if (Files.isRegularFile(gzipped)) {
            return gzipped;
        }
        String where = Files.isDirectory(dir) ? "" : " (directory " + dir + " does not exist)";
        throw new InvalidDataException(kind.title() + " file not found: neither " + plain + " nor " + gzipped + where
                + ". " + fetchHint(kind, dir));
    }

    private static Dataset loadSplit(DatasetKind kind, String name, Path dir, String imagesName, String labelsName) {
        Path imagesPath = findFile(kind, dir, imagesName);
        Path labelsPath = findFile(kind, dir, labelsName);
        // Any defect in a fetched file is cured the same way: fetch it again.
        try {
            return toDataset(kind, name, IdxReader.read(imagesPath, IMAGE_DIMENSIONS),
                    IdxReader.read(labelsPath, LABEL_DIMENSIONS));
        } catch (InvalidDataException e) {
            throw new InvalidDataException(e.getMessage() + ". " + fetchHint(kind, dir), e);
        }
    }

    private static IdxArray readResource(String resourceDir, String name, int dimensionCount) {
        String resource = resourceDir + "/" + name + GZIP_SUFFIX;
        InputStream in = Mnist.class.getResourceAsStream(resource);
        if (in == null) {
            throw new InvalidDataException("classpath:" + resource + ": resource not found (the test subset is made by"
                    + " scripts/make-mnist-subset.sh)");
        }
        return IdxReader.read(in, "classpath:" + resource, dimensionCount);
    }

    private static Dataset toDataset(DatasetKind kind, String name, IdxArray images, IdxArray labels) {
        int[] dims = images.dimensions();
        if (dims[1] != IMAGE_ROWS || dims[2] != IMAGE_COLUMNS) {
            throw new InvalidDataException(images.source() + ": images are " + dims[1] + "x" + dims[2]
                    + " (dimensions " + Arrays.toString(dims) + "), " + kind.title() + " images are " + IMAGE_ROWS
                    + "x" + IMAGE_COLUMNS);
        }
        if (images.count() != labels.count()) {
            throw new InvalidDataException("image and label counts disagree: " + images.source() + " holds "
                    + images.count() + " images, " + labels.source() + " holds " + labels.count() + " labels");
        }
        byte[] labelBytes = labels.data();
        int[] classes = new int[labelBytes.length];
        for (int i = 0; i < labelBytes.length; i++) {
            classes[i] = labelBytes[i] & 0xFF;
            if (classes[i] >= CLASS_COUNT) {
                throw new InvalidDataException(labels.source() + ": label " + i + " is " + classes[i]
                        + ", " + kind.title() + " labels are 0.." + (CLASS_COUNT - 1));
            }
        }
        return new Dataset(name, images.data(), classes, PIXELS, CLASS_COUNT, PIXEL_SCALE);
    }
}
