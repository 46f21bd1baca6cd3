package dev.gradscope.data;

import java.net.URISyntaxException;
import java.nio.file.Path;

/**
 * The MNIST subset committed under {@code src/test/resources/mnist-subset} (cut from the real files
 * by {@code scripts/make-mnist-subset.sh}): the first 4000 training and first 1000 test images.
 * Tests in any package use it to train on real digits without downloading anything.
 */
public final class MnistSubset {
    public static final String RESOURCE_DIR = "/mnist-subset";
    public static final int TRAIN_ROWS = 4000;
    public static final int TEST_ROWS = 1000;

    private MnistSubset() {
    }

    public static Mnist load() {
        return Mnist.loadFromClasspath(RESOURCE_DIR);
    }

    /** The subset's folder, for commands that take {@code --data-dir}. */
    public static Path dir() {
        try {
            return Path.of(MnistSubset.class.getResource(RESOURCE_DIR).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException("the test resources' " + RESOURCE_DIR + " is not a folder", e);
        }
    }
}
