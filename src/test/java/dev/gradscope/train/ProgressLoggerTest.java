package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The epoch line: Keras's four decimals, and an exponent where four decimals would show nothing. */
class ProgressLoggerTest {
    @Test
    void smallValuesSuchAsALearningRateKeepTheirDigits() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressLogger logger = new ProgressLogger(3, false, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        logger.onTrainBegin(new TrainingRun(null, 3, 0, new History(), List.of("loss", "learning_rate"), 5,
                List.of(), null, null, null));
        logger.onEpochBegin(0);
        Map<String, Double> logs = new LinkedHashMap<>();
        logs.put("loss", 0.5);
        logs.put("accuracy", 0.0);
        logs.put("learning_rate", 1e-5);
        logger.onEpochEnd(0, logs);
        String line = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(line.startsWith("Epoch 1/3 - 5/5 - "), line);
        assertTrue(line.contains(" - loss: 0.5000 - accuracy: 0.0000 - learning_rate: 1.0000e-05"), line);
    }
}
