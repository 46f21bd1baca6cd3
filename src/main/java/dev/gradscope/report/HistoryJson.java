package dev.gradscope.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.gradscope.data.AtomicFiles;
import dev.gradscope.train.History;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a run's {@code history.json}: one array per metric ({@code loss}, {@code accuracy},
 * {@code val_loss}, {@code val_accuracy}, {@code learning_rate}) with a value per epoch, {@code epoch_seconds}, and
 * {@code config}, everything the run was given. Writes go to a temporary file that replaces the old
 * one in one move, so a crash never leaves a half-written history behind.
 *
 * <p>A run that early stopping restored to an earlier epoch's weights ({@code --restore-best-weights}) also has
 * {@value #RESTORED_KEY}: which epoch's model it ended with ({@link #restoredDocument}), since the arrays alone say
 * only what every epoch logged.
 */
public final class HistoryJson {
    /** The key of the model a run ended with when early stopping restored an earlier epoch's weights. */
    public static final String RESTORED_KEY = "restored";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private HistoryJson() {
    }

    /** The document as a map, in the order it is written. */
    public static Map<String, Object> document(History history, Map<String, Object> config) {
        Map<String, Object> doc = new LinkedHashMap<>();
        for (String key : List.of("loss", "accuracy", "val_loss", "val_accuracy")) {
            doc.put(key, history.metrics().getOrDefault(key, List.of()));
        }
        history.metrics().forEach(doc::putIfAbsent);
        doc.put("epoch_seconds", history.epochSeconds());
        doc.put("config", config);
        return doc;
    }

    public static void write(Path file, History history, Map<String, Object> config) {
        writeAtomically(file, document(history, config));
    }

    /**
     * What {@value #RESTORED_KEY} holds: {@code epoch}, from 1 as everywhere in the history ({@code test.epoch},
     * {@code non_finite.epoch}), the {@code monitor} that chose it and its {@code best} value, and {@code logs}, what
     * that epoch logged (the arrays' values at that epoch), so that a reader sees the kept model's numbers at once.
     */
    public static Map<String, Object> restoredDocument(int epoch, String monitor, double best,
                                                       Map<String, Double> logs) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("epoch", epoch);
        doc.put("monitor", monitor);
        doc.put("best", best);
        doc.put("logs", logs);
        return doc;
    }

    /**
     * Puts {@code key} into the history in {@code file} (replacing one there), before {@code config}, which stays
     * last: for what is known only once the run has ended and its history is written, as {@value #RESTORED_KEY}.
     */
    public static void put(Path file, String key, Object value) {
        Map<String, Object> read = read(file);
        Map<String, Object> doc = new LinkedHashMap<>();
        read.forEach((k, v) -> {
            if (k.equals("config")) {
                doc.put(key, value);
            }
            if (!k.equals(key)) {
                doc.put(k, v);
            }
        });
        doc.putIfAbsent(key, value);
        writeAtomically(file, doc);
    }

    /** Serialises {@code value} as indented JSON to {@code file} through a temporary file and a move. */
    public static void writeAtomically(Path file, Object value) {
        try {
            AtomicFiles.writeString(file, JSON.writeValueAsString(value) + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** Reads a JSON file written by this class, for tests and tools. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> read(Path file) {
        try {
            return JSON.readValue(file.toFile(), Map.class);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }
}
