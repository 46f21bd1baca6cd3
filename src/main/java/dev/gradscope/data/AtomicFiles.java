package dev.gradscope.data;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Writes a file through a temporary file in the same directory and one move, so a reader (or a
 * crash) never sees a half-written file: the old contents, or the new ones.
 */
public final class AtomicFiles {
    /** What writes the contents to the temporary file. */
    @FunctionalInterface
    public interface Writer {
        void writeTo(OutputStream out) throws IOException;
    }

    private static final AtomicLong COUNTER = new AtomicLong();

    private AtomicFiles() {
    }

    public static void writeString(Path file, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        write(file, out -> out.write(bytes));
    }

    /** Creates the parent directories, writes {@code file} through a temporary file and replaces it in one move. */
    public static void write(Path file, Writer writer) {
        try {
            Path target = file.toAbsolutePath();
            Path dir = target.getParent();
            Files.createDirectories(dir);
            // Not Files.createTempFile: its file is readable by the owner only, and the move would
            // carry that over; a new file made here gets the usual permissions (umask).
            Path tmp = dir.resolve("." + target.getFileName() + "." + ProcessHandle.current().pid() + "."
                    + System.nanoTime() + "." + COUNTER.incrementAndGet() + ".tmp");
            try {
                try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE)) {
                    OutputStream out = Channels.newOutputStream(channel);
                    writer.writeTo(out);
                    out.flush();
                    // On disk before the move: otherwise a crash soon after it can leave the new name on an
                    // empty file, and the old contents gone.
                    channel.force(true);
                }
                try {
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                }
                syncDirectory(dir);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e, e);
        }
    }

    /**
     * Makes the move itself durable where the platform can (Linux and macOS open a directory for reading;
     * Windows cannot, and needs no directory sync).
     */
    private static void syncDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException e) {
            // Not supported here: the file's own contents are on disk; only the rename's durability is left
            // to the file system.
        }
    }
}
