package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.report.RunFiles;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --validation-split F}: Keras's validation_split. val_loss and val_accuracy come from the last F of the
 * training images, the test set is evaluated once after training, and a resumed run holds out the same images.
 */
class ValidationSplitCommandTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    /** 200 subset images, 20% held out: 160 to train on (batches of 100 and 60) and 40 to validate on. */
    private static List<String> split(Path out, int epochs, String... more) {
        List<String> args = SubsetTrainRuns.train("--validation-split", "0.2", "--epochs",
                Integer.toString(epochs), "--out", out.toString());
        args.addAll(List.of(more));
        return args;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> config(Map<String, Object> history) {
        return (Map<String, Object>) history.get("config");
    }

    @Test
    void theLastImagesAreHeldOutAndTheTestSetIsEvaluatedOnceAfterTraining() throws IOException {
        Path dir = tmp.resolve("split");
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        PrintStream original = System.out;
        System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, SubsetTrainRuns.run(err, split(dir, 2)), err.toString());
        } finally {
            System.setOut(original);
        }
        Map<String, Object> history = HistoryJson.read(dir.resolve("history.json"));
        Map<String, Object> config = config(history);
        assertEquals(0.2, config.get("validation_split"));
        assertEquals(160, config.get("train_examples"), "the images trained on");
        assertEquals(40, config.get("validation_examples"), "the images held out");
        @SuppressWarnings("unchecked")
        Map<String, Object> test = (Map<String, Object>) history.get("test");
        int testImages = MnistSubset.load().test().rows();
        assertEquals(testImages, test.get("examples"));
        double testAccuracy = (double) test.get("accuracy");
        assertTrue(testAccuracy > 0.1 && testAccuracy <= 1, "the model learned something: " + testAccuracy);
        // the validation accuracy is a count out of 40 images, the test accuracy one out of the test set
        List<?> validation = (List<?>) history.get("val_accuracy");
        double last = ((Number) validation.get(validation.size() - 1)).doubleValue();
        assertEquals(Math.rint(last * 40), last * 40, 1e-9, "val_accuracy counts the 40 held-out images: " + last);
        String printed = stdout.toString(StandardCharsets.UTF_8);
        assertTrue(printed.contains(String.format(java.util.Locale.ROOT, "test_accuracy %.4f", testAccuracy)),
                printed);
        String report = Files.readString(dir.resolve("report.html"));
        assertTrue(report.contains("validation (val_loss)") && report.contains("test_accuracy"), "report labels");
        assertTrue(report.contains("160 MNIST training images (40 more held out for validation) and " + testImages
                + " test images"), "the setting line counts the three sets");
        // read back as a finished run (compare reads it so): the test evaluation is not an epoch metric
        RunFiles.Run run = RunFiles.read(dir);
        assertEquals(2, run.history().epochs());
        assertFalse(run.history().metrics().containsKey("test"));
        assertEquals(testAccuracy, run.test().accuracy());
        assertEquals(2, test.get("epoch"), "the model as training left it");
    }

    @Test
    void withoutASplitTheTestSetValidatesAsBefore() throws IOException {
        Path dir = tmp.resolve("plain");
        assertEquals(0, SubsetTrainRuns.run(err, SubsetTrainRuns.train("--epochs", "1", "--out", dir.toString())),
                err.toString());
        Map<String, Object> history = HistoryJson.read(dir.resolve("history.json"));
        assertEquals(0.0, config(history).get("validation_split"));
        assertEquals(200, config(history).get("train_examples"));
        assertEquals(MnistSubset.load().test().rows(), config(history).get("validation_examples"));
        assertFalse(history.containsKey("test"), "the test set was the validation data: no second evaluation");
        assertNull(RunFiles.read(dir).test());
    }

    @Test
    void aResumedRunHoldsOutTheSameImagesAndEqualsTheRunTrainedInOneGo() throws IOException {
        Path straight = tmp.resolve("straight");
        assertEquals(0, SubsetTrainRuns.run(err, split(straight, 2)), err.toString());
        Path resumed = tmp.resolve("resumed");
        assertEquals(0, SubsetTrainRuns.run(err, split(resumed, 1)), err.toString());
        assertEquals(2, SubsetTrainRuns.run(err, List.of("train", "--resume", resumed.toString(), "--epochs", "2",
                "--validation-split", "0.1")), err.toString());
        assertTrue(err.toString().contains("takes no --validation-split"), err.toString());
        assertEquals(0, SubsetTrainRuns.run(err, List.of("train", "--resume", resumed.toString(), "--epochs", "2",
                "--quiet")), err.toString());
        Map<String, Object> a = HistoryJson.read(straight.resolve("history.json"));
        Map<String, Object> b = HistoryJson.read(resumed.resolve("history.json"));
        for (String key : List.of("loss", "accuracy", "val_loss", "val_accuracy", "test")) {
            assertEquals(a.get(key), b.get(key), key);
        }
        assertEquals(40, config(b).get("validation_examples"));
    }

    /** compare ranks a split run by its accuracy on the test set, not on its held-out images (found in review). */
    @Test
    void compareCallsTestAccuracyOnlyWhatWasMeasuredOnTheTestSet() throws IOException {
        Path split = tmp.resolve("split");
        assertEquals(0, SubsetTrainRuns.run(err, split(split, 2)), err.toString());
        Path plain = tmp.resolve("plain");
        assertEquals(0, SubsetTrainRuns.run(err, SubsetTrainRuns.train("--epochs", "2", "--out", plain.toString())),
                err.toString());
        Path out = tmp.resolve("compare");
        assertEquals(0, SubsetTrainRuns.run(err, List.of("compare", split.toString(), plain.toString(), "--out",
                out.toString())), err.toString());
        Map<String, Object> history = HistoryJson.read(split.resolve("history.json"));
        @SuppressWarnings("unchecked")
        double testAccuracy = (double) ((Map<String, Object>) history.get("test")).get("accuracy");
        List<?> validation = (List<?>) history.get("val_accuracy");
        double heldOut = ((Number) validation.get(validation.size() - 1)).doubleValue();
        assertNotEquals(heldOut, testAccuracy, "the subset's two accuracies differ, so the test can tell them apart");
        String page = Files.readString(out.resolve("report.html"));
        int verdict = page.indexOf("Best final test accuracy");
        assertTrue(verdict >= 0, "no verdict");
        String text = page.substring(verdict, Math.min(page.length(), verdict + 400));
        assertTrue(text.contains(String.format(java.util.Locale.ROOT, "split %.4f", testAccuracy)), text);
        assertTrue(page.contains("held out of the training set (--validation-split)"), "the curves are explained");
        assertTrue(page.contains("Validation or test loss per epoch"), "one run validated on each: the title says so");
        List<String> summary = Files.readAllLines(out.resolve("summary.csv"));
        assertTrue(summary.get(0).contains("test_accuracy"), summary.get(0));
        assertTrue(summary.stream().anyMatch(line -> line.startsWith("split,") && line.contains(","
                + testAccuracy + ",")), String.join("\n", summary));
    }

    @Test
    void aSplitThatIsNoFractionOrLeavesNothingIsAUsageError() {
        for (String bad : List.of("1", "-0.2", "NaN", "0.999")) {
            List<String> args = new ArrayList<>(SubsetTrainRuns.train("--epochs", "1", "--validation-split", bad));
            StringWriter errors = new StringWriter();
            assertEquals(2, SubsetTrainRuns.run(errors, args), bad + ": " + errors);
            assertTrue(errors.toString().contains("--validation-split"), errors.toString());
        }
    }
}
