package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertAll;
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
 * An --out of evaluate, predict or export that would replace a file they read or one of a train run's files is a
 * usage error and leaves it alone (found in review: they wrote JSON or ONNX over the weights, the state, the history).
 */
class OutputFilesTest {
    @TempDir
    Path run;

    private void train() {
        StringWriter err = new StringWriter();
        assertEquals(0, SubsetTrainRuns.run(err, SubsetTrainRuns.train("--validation-split", "0.2",
                "--label-smoothing", "0.1", "--batch-norm", "--dropout", "0.2", "--epochs", "1", "--out",
                run.toString())), err::toString);
    }

    /** Runs the command; asserts it exits 2 and leaves the file's bytes alone. */
    private void assertRefusedAndKept(Path kept, String... args) throws Exception {
        byte[] before = Files.readAllBytes(kept);
        StringWriter err = new StringWriter();
        int status = SubsetTrainRuns.run(err, List.of(args));
        byte[] after = Files.readAllBytes(kept);
        assertAll(() -> assertEquals(2, status, "a usage error: " + String.join(" ", args) + "\n" + err),
                () -> assertArrayEquals(before, after, kept + " was replaced"));
    }

    @Test
    void evaluateOutOverTheTrainingStateIsRefused() throws Exception {
        train();
        Path state = run.resolve("training-state.safetensors");
        assertRefusedAndKept(state, "evaluate", run.resolve(SavedWeights.FILE).toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", state.toString());
    }

    @Test
    void predictOutOverItsOwnWeightsIsRefused() throws Exception {
        train();
        Path weights = run.resolve(SavedWeights.FILE);
        assertRefusedAndKept(weights, "predict", weights.toString(), "--device", "cpu", "--test-index", "0",
                "--data-dir", MnistSubset.dir().toString(), "--out", weights.toString());
    }

    @Test
    void exportOutOverTheRunsHistoryIsRefused() throws Exception {
        train();
        Path history = run.resolve("history.json");
        assertRefusedAndKept(history, "export", run.resolve(SavedWeights.FILE).toString(), "--out",
                history.toString());
    }

    @Test
    void predictOutOverTheImageItClassifiesIsRefused() throws Exception {
        train();
        Path image = run.resolve("digit.png");
        javax.imageio.ImageIO.write(new java.awt.image.BufferedImage(28, 28,
                java.awt.image.BufferedImage.TYPE_BYTE_GRAY), "png", image.toFile());
        assertRefusedAndKept(image, "predict", run.resolve(SavedWeights.FILE).toString(), image.toString(),
                "--device", "cpu", "--out", image.toString());
    }

    /** A JSON file beside the run under a name of its own is fine. */
    @Test
    void anOutOfItsOwnBesideTheRunIsWritten() throws Exception {
        train();
        StringWriter err = new StringWriter();
        assertEquals(0, SubsetTrainRuns.run(err, List.of("evaluate", run.resolve(SavedWeights.FILE).toString(),
                "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--out",
                run.resolve("evaluation.json").toString())), err::toString);
        assertTrue(Files.size(run.resolve("evaluation.json")) > 0);
    }
}
