package dev.gradscope.data;

import static dev.gradscope.data.IdxTestFiles.gzip;
import static dev.gradscope.data.IdxTestFiles.idx;
import static dev.gradscope.data.IdxTestFiles.idxWithMagic;
import static dev.gradscope.data.IdxTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IdxReaderTest {
    @TempDir
    Path dir;

    private static final int[] IMAGE_DIMS = {2, 3, 4};
    private static final byte[] IMAGE_DATA = sequence(24);

    private static byte[] sequence(int n) {
        byte[] bytes = new byte[n];
        for (int i = 0; i < n; i++) {
            bytes[i] = (byte) (250 + i); // crosses 255 -> 0, so unsigned handling shows
        }
        return bytes;
    }

    /** Reads {@code bytes} as a file in the temp dir and returns the failure, checking it names the file. */
    private InvalidDataException failure(String fileName, byte[] bytes, int dimensionCount) {
        Path file = write(dir.resolve(fileName), bytes);
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> IdxReader.read(file, dimensionCount));
        assertTrue(e.getMessage().contains(file.toString()), () -> "message does not name the file: " + e.getMessage());
        return e;
    }

    private static void assertMentions(InvalidDataException e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), () -> "message lacks \"" + part + "\": " + e.getMessage());
        }
    }

    @Test
    void readsPlainFile() {
        Path file = write(dir.resolve("images"), idx(IMAGE_DIMS, IMAGE_DATA));
        IdxArray array = IdxReader.read(file, 3);
        assertArrayEquals(IMAGE_DIMS, array.dimensions());
        assertArrayEquals(IMAGE_DATA, array.data());
        assertEquals(2, array.count());
        assertEquals(12, array.itemSize());
        assertEquals(file.toString(), array.source());
    }

    @Test
    void readsGzipFileToTheSameContents() {
        byte[] labels = {0, 9, 3, (byte) 255};
        Path plain = write(dir.resolve("labels"), idx(new int[] {4}, labels));
        Path gzipped = write(dir.resolve("labels.gz"), gzip(idx(new int[] {4}, labels)));
        IdxArray fromPlain = IdxReader.read(plain, 1);
        IdxArray fromGzip = IdxReader.read(gzipped, 1);
        assertArrayEquals(new int[] {4}, fromGzip.dimensions());
        assertArrayEquals(labels, fromGzip.data());
        assertArrayEquals(fromPlain.data(), fromGzip.data());
        assertEquals(1, fromGzip.itemSize());
    }

    @Test
    void detectsGzipByMagicBytesNotByName() {
        Path gzipWithoutSuffix = write(dir.resolve("images-idx3-ubyte"), gzip(idx(IMAGE_DIMS, IMAGE_DATA)));
        Path plainWithSuffix = write(dir.resolve("images-idx3-ubyte.gz"), idx(IMAGE_DIMS, IMAGE_DATA));
        assertArrayEquals(IMAGE_DATA, IdxReader.read(gzipWithoutSuffix, 3).data());
        assertArrayEquals(IMAGE_DATA, IdxReader.read(plainWithSuffix, 3).data());
    }

    @Test
    void readsZeroItems() {
        Path file = write(dir.resolve("none"), idx(new int[] {0, 28, 28}, new byte[0]));
        IdxArray array = IdxReader.read(file, 3);
        assertEquals(0, array.count());
        assertEquals(0, array.data().length);
    }

    @Test
    void wrongMagicNamesFoundAndExpected() {
        // A label file (1-D) where images (3-D) were expected: the usual swapped-files mistake.
        InvalidDataException e = failure("labels", idx(new int[] {4}, new byte[4]), 3);
        assertMentions(e, "wrong magic number", "0x00000801", "expected 0x00000803", "swapped");
    }

    @Test
    void notAnIdxFileAtAll() {
        byte[] html = "<!DOCTYPE html><html>404</html>".getBytes(StandardCharsets.US_ASCII);
        InvalidDataException e = failure("download.html", html, 3);
        assertMentions(e, "wrong magic number", "0x3C21444F", "expected 0x00000803", "not an IDX file");
    }

    @Test
    void otherElementTypeIsRejected() {
        // 0x0D is float in the IDX format.
        InvalidDataException e = failure("floats", idxWithMagic(0x0D01, new int[] {1}, new byte[4]), 1);
        assertMentions(e, "0x00000D01", "expected 0x00000801", "element type 0x0D");
    }

    @Test
    void truncatedDataNamesExpectedAndFoundBytes() {
        byte[] whole = idx(IMAGE_DIMS, IMAGE_DATA);
        InvalidDataException e = failure("short", Arrays.copyOf(whole, whole.length - 4), 3);
        assertMentions(e, "truncated", "[2, 3, 4]", "need 24 data bytes", "found 20");
    }

    @Test
    void truncatedHeader() {
        byte[] whole = idx(IMAGE_DIMS, IMAGE_DATA);
        InvalidDataException e = failure("header", Arrays.copyOf(whole, 10), 3);
        assertMentions(e, "truncated header", "has 10 bytes", "needs 16");
    }

    @Test
    void truncatedMagic() {
        InvalidDataException e = failure("tiny", new byte[] {0, 0}, 1);
        assertMentions(e, "truncated", "has 2 bytes", "needs 4");
    }

    @Test
    void trailingBytesAreRejected() {
        byte[] whole = idx(IMAGE_DIMS, IMAGE_DATA);
        InvalidDataException e = failure("long", Arrays.copyOf(whole, whole.length + 3), 3);
        assertMentions(e, "3 trailing bytes", "24 data bytes");
    }

    @Test
    void emptyFile() {
        InvalidDataException e = failure("empty", new byte[0], 3);
        assertMentions(e, "empty", "0 bytes");
    }

    @Test
    void emptyGzip() {
        InvalidDataException e = failure("empty.gz", gzip(new byte[0]), 1);
        assertMentions(e, "decompressed data is empty");
    }

    @Test
    void corruptGzip() {
        byte[] compressed = gzip(idx(IMAGE_DIMS, IMAGE_DATA));
        InvalidDataException e = failure("cut.gz", Arrays.copyOf(compressed, compressed.length / 2), 3);
        assertMentions(e, "gzip", "does not decompress");
    }

    @Test
    void hugeDimensionIsRejected() {
        InvalidDataException e = failure("huge", idx(new int[] {-1}, new byte[0]), 1);
        assertMentions(e, "dimension 0", "too large");
    }

    @Test
    void missingFileNamesThePath() {
        Path missing = dir.resolve("no-such-file");
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> IdxReader.read(missing, 1));
        assertMentions(e, missing.toString(), "not found");
    }
}
