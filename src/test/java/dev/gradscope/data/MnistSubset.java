package dev.gradscope.data;

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
}
