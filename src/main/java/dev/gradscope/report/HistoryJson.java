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
 */
public final class HistoryJson {
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
