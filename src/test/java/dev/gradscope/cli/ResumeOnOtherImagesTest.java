package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train --resume with a --data-dir whose images are not the run's is refused (exit 1) and changes nothing: it would
 * train and validate on other images and replace the run's files (found in review).
 */
class ResumeOnOtherImagesTest {
    @TempDir
    Path run;

    @TempDir
    Path otherData;

    private static List<String> train(Path data, String... more) {
        List<String> args = new java.util.ArrayList<>(List.of("train", "--data-dir", data.toString(), "--device",
                "cpu", "--hidden", "16", "--train-limit", "200", "--batch-size", "100", "--quiet"));
        args.addAll(List.of(more));
        return args;
    }

    /** A Fashion-MNIST run resumed on MNIST's digits: same file names, same row count needed, other images. */
    @Test
    void aFashionRunResumedOnMnistDigitsIsRefused() {
        StringWriter err = new StringWriter();
        assertEquals(0, SubsetTrainRuns.run(err, train(MnistSubset.fashionDir(), "--dataset", "fashion_mnist",
                "--validation-split", "0.2", "--label-smoothing", "0.1", "--epochs", "1", "--out", run.toString())),
                err::toString);
        byte[] weights = readWeights();
        int status = SubsetTrainRuns.run(err, List.of("train", "--resume", run.toString(), "--epochs", "2",
                "--data-dir", MnistSubset.dir().toString(), "--quiet"));
        assertEquals(1, status, "resumed a Fashion-MNIST run on MNIST digits: " + err);
        assertTrue(err.toString().contains("the run trained and validated on other images than"), err.toString());
        assertArrayEquals(weights, readWeights(), "the run's weights are untouched");
    }

    /** A run validated on the test set, resumed with another test set: history's val_ numbers mix two sets. */
    @Test
    void aRunResumedWithAnotherTestSetIsRefused() throws Exception {
        for (String file : List.of("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")) {
            Files.copy(MnistSubset.dir().resolve(file), otherData.resolve(file));
        }
        for (String file : List.of("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")) {
            Files.copy(MnistSubset.fashionDir().resolve(file), otherData.resolve(file)); // 500 other images
        }
        StringWriter err = new StringWriter();
        assertEquals(0, SubsetTrainRuns.run(err, train(MnistSubset.dir(), "--epochs", "1", "--out",
                run.toString())), err::toString);
        int status = SubsetTrainRuns.run(err, List.of("train", "--resume", run.toString(), "--epochs", "2",
                "--data-dir", otherData.toString(), "--quiet"));
        assertEquals(1, status, "val_loss of epoch 1 on 1000 images, of epoch 2 on 500 others: " + err);
        assertTrue(err.toString().contains("resume with the run's own --data-dir"), err.toString());
        // the run's own images still resume it
        assertEquals(0, SubsetTrainRuns.run(err, List.of("train", "--resume", run.toString(), "--epochs", "2",
                "--data-dir", MnistSubset.dir().toString(), "--quiet")), err::toString);
    }

    private byte[] readWeights() {
        try {
            return Files.readAllBytes(run.resolve(SavedWeights.FILE));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
