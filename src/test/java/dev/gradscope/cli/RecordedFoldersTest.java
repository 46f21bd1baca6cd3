package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.gradscope.data.MnistSubset;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** train --resume from another working directory, the folders a run records. */
class RecordedFoldersTest {
    @TempDir
    Path tmp;

    private static final List<String> SMALL = List.of("--device", "cpu", "--hidden", "8", "--train-limit", "200",
            "--batch-size", "50", "--quiet");

    /** Runs the CLI in a JVM of its own started in {@code cwd}; returns its exit status and output. */
    private static String[] gradscopeIn(Path cwd, List<String> args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-cp", System.getProperty("java.class.path"), GradScope.class.getName()));
        command.addAll(args);
        Process p = new ProcessBuilder(command).directory(cwd.toFile()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new String[] {Integer.toString(p.waitFor()), output};
    }

    private static List<String> with(List<String> base, String... more) {
        List<String> all = new ArrayList<>(base);
        all.addAll(List.of(more));
        return all;
    }

    private static void copySubset(Path to) throws IOException {
        Files.createDirectories(to);
        try (var files = Files.list(MnistSubset.dir())) {
            for (Path f : files.toList()) {
                Files.copy(f, to.resolve(f.getFileName()));
            }
        }
    }

    /**
     * A checkout with its data set's own folder and its runs, moved (or copied to another machine) as a whole:
     * a run that read the default data/mnist resumed there before data_dir was recorded absolute; now it looks for
     * the images in the old place.
     */
    @Test
    void aRunResumesAfterItsCheckoutMoves() throws Exception {
        Path checkout = tmp.resolve("checkout");
        copySubset(checkout.resolve("data/mnist"));
        String[] trained = gradscopeIn(checkout, with(List.of("train", "--epochs", "1", "--out", "out/run"),
                SMALL.toArray(String[]::new)));
        assertEquals("0", trained[0], trained[1]);
        Path moved = Files.move(checkout, tmp.resolve("moved"));
        String[] resumed = gradscopeIn(moved, List.of("train", "--resume", "out/run", "--epochs", "2", "--quiet"));
        assertEquals("0", resumed[0], resumed[1]);
    }

    /**
     * "A run resumes from any working directory" and "the TensorBoard folder defaults to the run's": a relative
     * --tensorboard is recorded as given, so a resume from another folder writes its events somewhere else.
     */
    @Test
    void theTensorBoardFolderFollowsTheRunToAnotherWorkingDirectory() throws Exception {
        Path first = Files.createDirectories(tmp.resolve("first"));
        Path second = Files.createDirectories(tmp.resolve("second"));
        Path run = tmp.resolve("run");
        String[] trained = gradscopeIn(first, with(List.of("train", "--data-dir", MnistSubset.dir().toAbsolutePath()
                .toString(), "--epochs", "1", "--tensorboard", "tb", "--out", run.toString()),
                SMALL.toArray(String[]::new)));
        assertEquals("0", trained[0], trained[1]);
        String[] resumed = gradscopeIn(second, List.of("train", "--resume", run.toString(), "--epochs", "2",
                "--quiet"));
        assertEquals("0", resumed[0], resumed[1]);
        assertFalse(Files.exists(second.resolve("tb")), "the resumed epochs' events went to " + second.resolve("tb")
                + ", not to the run's " + first.resolve("tb"));
    }

    /**
     * normalize() drops "link/.." textually, where the file system follows the link first: the recorded folder
     * is not the one the run read, and the run does not resume even from its own working directory.
     */
    @Test
    void theRecordedDataFolderIsTheOneTheRunRead() throws Exception {
        Path cwd = Files.createDirectories(tmp.resolve("cwd"));
        Path real = Files.createDirectories(tmp.resolve("real/sub"));
        copySubset(tmp.resolve("real/mnist"));
        Files.createSymbolicLink(cwd.resolve("link"), real);
        Path run = tmp.resolve("run");
        String[] trained = gradscopeIn(cwd, with(List.of("train", "--data-dir", "link/../mnist", "--epochs", "1",
                "--out", run.toString()), SMALL.toArray(String[]::new)));
        assertEquals("0", trained[0], trained[1]);
        String[] resumed = gradscopeIn(cwd, List.of("train", "--resume", run.toString(), "--epochs", "2", "--quiet"));
        assertEquals("0", resumed[0], resumed[1]);
    }
}
