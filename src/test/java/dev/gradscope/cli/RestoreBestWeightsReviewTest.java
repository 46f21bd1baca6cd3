package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.report.HistoryJson;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Review (restore): what --restore-best-weights leaves behind when a run is interrupted, and what it reports. */
class RestoreBestWeightsReviewTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private int run(List<String> args) {
        return GradScope.run(new PrintWriter(err, true), args.toArray(String[]::new));
    }

    private static List<String> train(Path out) {
        return List.of("train", "--data-dir", MnistSubset.dir().toString(), "--device", "cpu", "--hidden", "64",
                "--train-limit", "200", "--batch-size", "100", "--learning-rate", "0.01", "--early-stopping", "2",
                "--restore-best-weights", "--epochs", "12", "--out", out.toString(), "--quiet");
    }

    @SuppressWarnings("unchecked")
    private static int epochs(Path dir) {
        return ((List<Number>) HistoryJson.read(dir.resolve("history.json")).get("val_loss")).size();
    }

    /**
     * A run that stopped early and was killed after its last epoch's training state but before the restored weights
     * were written (model.safetensors then holds the last epoch, as ModelCheckpoint left it): the state holds the
     * best copy, yet train --resume says "nothing to train" and leaves model.safetensors at the last epoch.
     */
    @Test
    void aResumeOfAStoppedRunInterruptedBeforeTheRestoredWeightsWereWrittenWritesThem() {
        Path dir = tmp.resolve("run");
        assertEquals(0, run(train(dir)), err.toString());
        int last = epochs(dir);
        Path weights = dir.resolve(SavedWeights.FILE);
        SafeTensors.Contents state = SafeTensors.read(dir.resolve(ResumedRun.FILE));
        SafeTensors.Contents kept = SafeTensors.read(weights);
        // What the file held before saveRestored: the last epoch's parameters (the state's), as epoch `last`.
        Map<String, String> metadata = new LinkedHashMap<>(kept.metadata());
        metadata.put("epoch", Integer.toString(last));
        List<SafeTensors.Entry> lastEpoch = new ArrayList<>();
        kept.tensors().keySet().forEach(name -> lastEpoch.add(state.tensors().get(name)));
        SafeTensors.write(weights, metadata, lastEpoch);

        assertEquals(0, run(List.of("train", "--resume", dir.toString(), "--epochs", "12", "--quiet")),
                err.toString());
        Map<String, SafeTensors.Entry> after = SafeTensors.read(weights).tensors();
        after.forEach((name, entry) -> assertTrue(Arrays.equals(entry.values(),
                state.tensors().get("best_weights/" + name).values()), name + ": model.safetensors holds epoch "
                + SafeTensors.readMetadata(weights).get("epoch") + ", not the restored best epoch; state says "
                + state.metadata().get("best_weights")));
    }

    /**
     * report.html's per-class section describes the restored model's figures (classes.csv is the best epoch's), but
     * says they are of the model "after epoch N" with N the last epoch.
     */
    @Test
    void theReportSaysWhichEpochThePerClassFiguresAreOf() throws IOException {
        Path dir = tmp.resolve("run");
        assertEquals(0, run(train(dir)), err.toString());
        int last = epochs(dir);
        String restored = SafeTensors.readMetadata(dir.resolve(SavedWeights.FILE)).get("epoch");
        assertTrue(Integer.parseInt(restored) < last, "the best epoch is not the last");
        String page = Files.readString(dir.resolve("report.html"));
        assertTrue(!page.contains("The model as training left it (after epoch " + last + ","),
                "report.html says the per-class figures are the model's after epoch " + last + "; they are epoch "
                        + restored + "'s");
    }
}
