package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.data.TensorBoardEventReader;
import dev.gradscope.data.TensorBoardEventReader.Event;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code train --tensorboard DIR [--histogram-freq N]}, and how {@code --resume} goes on writing there. */
class TensorBoardCommandTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private int run(List<String> args) {
        return SubsetTrainRuns.run(err, args);
    }

    private static List<String> train(String... more) {
        return SubsetTrainRuns.train(more);
    }

    private static List<Long> steps(List<Event> events, String tag) {
        return events.stream().filter(e -> tag.equals(e.tag())).map(Event::step).toList();
    }

    @Test
    void trainWritesTheEventsAndRecordsWhere() throws Exception {
        Path out = tmp.resolve("run");
        Path logs = tmp.resolve("logs");
        PrintStream stdout = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, run(train("--epochs", "2", "--out", out.toString(), "--tensorboard", logs.toString(),
                    "--histogram-freq", "1")), err.toString());
        } finally {
            System.setOut(stdout);
        }
        List<Event> train = TensorBoardEventReader.readDirectory(logs.resolve("train"));
        assertEquals(List.of(0L, 1L), steps(train, "epoch_loss"));
        assertEquals(List.of(0L, 1L, 2L, 3L), steps(train, "gradient_norm/dense.kernel"));
        assertEquals(List.of(0L, 1L), steps(train, "weights/dense_1.bias"));
        assertEquals(List.of(0L, 1L), steps(TensorBoardEventReader.readDirectory(logs.resolve("validation")),
                "epoch_accuracy"));
        Map<?, ?> history = new ObjectMapper().readValue(out.resolve("history.json").toFile(), Map.class);
        assertEquals(Map.of("log_dir", logs.toRealPath().toString(), "histogram_freq", 1),
                ((Map<?, ?>) history.get("config")).get("tensorboard"));
        assertEquals(List.of(((Number) ((List<?>) history.get("loss")).get(1)).floatValue()),
                train.stream().filter(e -> "epoch_loss".equals(e.tag()) && e.step() == 1).map(Event::simpleValue)
                        .toList());
        // --quiet prints only the result, so no line about TensorBoard
        assertTrue(!printed.toString(StandardCharsets.UTF_8).contains("tensorboard:"), printed.toString());
    }

    /**
     * The folder a run records for --tensorboard before it creates it is the one the file system then creates: a link
     * followed before its "..", the rest, not there yet, as named.
     */
    @Test
    void theRecordedFolderIsTheOneTheFileSystemCreates() throws Exception {
        Path real = Files.createDirectories(tmp.resolve("real/sub"));
        Path link = Files.createSymbolicLink(tmp.resolve("link"), real);
        Path given = link.resolve("../logs/./run/../run");
        Path recorded = TrainCommand.realPath(given);
        assertEquals(tmp.toRealPath().resolve("real/logs/run"), recorded);
        Files.createDirectories(given);
        assertEquals(given.toRealPath(), recorded, "once created");
        assertEquals(recorded, TrainCommand.realPath(given));
        assertEquals(real.toRealPath().getParent(), TrainCommand.realPath(tmp.resolve("link/..")),
                "an existing folder's real path: real/sub/.., not tmp");
    }

    @Test
    void aResumedRunGoesOnWritingWhereTheRunDidOrWhereItIsTold() throws Exception {
        Path out = tmp.resolve("run");
        Path logs = tmp.resolve("logs");
        assertEquals(0, run(train("--epochs", "1", "--out", out.toString(), "--tensorboard", logs.toString(),
                "--histogram-freq", "1")), err.toString());
        assertEquals(0, run(List.of("train", "--resume", out.toString(), "--epochs", "2", "--quiet")), err.toString());
        try (Stream<Path> files = Files.list(logs.resolve("train"))) {
            assertEquals(2, files.count(), "the resumed epochs in a file of their own");
        }
        assertEquals(List.of(0L, 1L), steps(TensorBoardEventReader.readDirectory(logs.resolve("train")),
                "epoch_loss"));

        Path elsewhere = tmp.resolve("elsewhere");
        assertEquals(0, run(List.of("train", "--resume", out.toString(), "--epochs", "3", "--tensorboard",
                elsewhere.toString(), "--quiet")), err.toString());
        List<Event> moved = TensorBoardEventReader.readDirectory(elsewhere.resolve("train"));
        assertEquals(List.of(2L), steps(moved, "epoch_loss"));
        assertEquals(List.of(2L), steps(moved, "weights/dense.kernel"), "the run's histogram frequency goes on");
        assertEquals(List.of(0L, 1L), steps(TensorBoardEventReader.readDirectory(logs.resolve("train")),
                "epoch_loss"), "the first folder is left as it was");
    }

    @Test
    void histogramFrequencyWithoutTensorBoardOrBelowZeroIsAUsageError() {
        assertEquals(2, run(train("--epochs", "1", "--histogram-freq", "1")));
        assertTrue(err.toString().contains("--histogram-freq sets how often --tensorboard writes weight histograms;"
                + " give --tensorboard DIR too"), err.toString());
        assertEquals(2, run(train("--epochs", "1", "--tensorboard", tmp.resolve("logs").toString(),
                "--histogram-freq", "-1")));
        assertTrue(err.toString().contains("--histogram-freq must be a count of epochs >= 0 (0: none), got -1"),
                err.toString());
        assertTrue(Files.notExists(tmp.resolve("logs")), "refused before anything was written");
        assertEquals(2, run(train("--epochs", "1", "--tensorboard", "")));
        assertTrue(err.toString().contains("--tensorboard needs a folder, got an empty path"), err.toString());
    }
}
