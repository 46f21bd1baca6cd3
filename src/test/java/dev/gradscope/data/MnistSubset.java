package dev.gradscope.data;

import java.net.URISyntaxException;
import java.nio.file.Path;

/**
 * The MNIST subset committed under {@code src/test/resources/mnist-subset} (cut from the real files
 * by {@code scripts/make-mnist-subset.sh}): the first 4000 training and first 1000 test images; and the
 * Fashion-MNIST subset under {@code src/test/resources/fashion-mnist-subset} ({@code make-mnist-subset.sh
 * --dataset fashion_mnist}): the first 2000 training and first 500 test images.
 * Tests in any package use them to train on real images without downloading anything.
 */
public final class MnistSubset {
    public static final String RESOURCE_DIR = "/mnist-subset";
    public static final int TRAIN_ROWS = 4000;
    public static final int TEST_ROWS = 1000;

    public static final String FASHION_RESOURCE_DIR = "/fashion-mnist-subset";
    public static final int FASHION_TRAIN_ROWS = 2000;
    public static final int FASHION_TEST_ROWS = 500;

    private MnistSubset() {
    }

    public static Mnist load() {
        return Mnist.loadFromClasspath(RESOURCE_DIR);
    }

    /** The subset's folder, for commands that take {@code --data-dir}. */
    public static Path dir() {
        return folder(RESOURCE_DIR);
    }

    public static Mnist loadFashion() {
        return Mnist.loadFromClasspath(DatasetKind.FASHION_MNIST, FASHION_RESOURCE_DIR);
    }

    /** The Fashion-MNIST subset's folder, for commands that take {@code --data-dir}. */
    public static Path fashionDir() {
        return folder(FASHION_RESOURCE_DIR);
    }

    private static Path folder(String resourceDir) {
        try {
            return Path.of(MnistSubset.class.getResource(resourceDir).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException("the test resources' " + resourceDir + " is not a folder", e);
        }
    }
}
