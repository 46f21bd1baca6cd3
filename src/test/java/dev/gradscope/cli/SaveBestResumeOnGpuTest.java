package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.SafeTensors;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The weights a resumed --save-best run keeps from an earlier epoch go on naming the device and TF32 that trained
 * and validated that epoch, not the resumed run's.
 */
@Tag("gpu")
class SaveBestResumeOnGpuTest {
    private static final Optional<String> UNAVAILABLE = CudaBackend.unavailableReason();

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        return GradScope.run(new PrintWriter(err, true), args);
    }

    @Test
    @SuppressWarnings("unchecked")
    void theKeptEpochKeepsTheSettingsThatTrainedIt() throws Exception {
        assumeTrue(UNAVAILABLE.isEmpty(), () -> "no usable CUDA device: " + UNAVAILABLE.orElse(""));
        Path dir = tmp.resolve("best");
        assertEquals(0, run("train", "--data-dir", MnistSubset.dir().toString(), "--device", "cpu", "--hidden",
                "32,16", "--train-limit", "64", "--batch-size", "16", "--epochs", "8", "--learning-rate", "0.01",
                "--quiet", "--save-best", "val_loss", "--out", dir.toString()), err.toString());
        Path weights = dir.resolve("model.safetensors");
        String bestEpoch = SafeTensors.readMetadata(weights).get("epoch");
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "10", "--device", "cuda", "--tf32",
                "--quiet"), err.toString());
        Map<String, String> metadata = SafeTensors.readMetadata(weights);
        assertEquals(bestEpoch, metadata.get("epoch"), "precondition: the resumed epochs did not beat the best");
        Map<String, Object> config = new ObjectMapper().readValue(metadata.get("config"), Map.class);
        err.getBuffer().setLength(0);
        java.io.ByteArrayOutputStream notes = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stderr = System.err;
        System.setErr(new java.io.PrintStream(notes, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            assertEquals(0, run("evaluate", weights.toString(), "--device", "cuda", "--data-dir",
                    MnistSubset.dir().toString()), err.toString());
        } finally {
            System.setErr(stderr);
        }
        err.append(notes.toString(java.nio.charset.StandardCharsets.UTF_8));
        assertFalse(err.toString().contains("pass --tf32 for the run's own numbers"), "epoch " + bestEpoch
                + " was trained and validated on the CPU in FP32, the file's config says backend "
                + config.get("backend") + ", tf32 " + config.get("tf32") + "; evaluate says: " + err);
    }
}
