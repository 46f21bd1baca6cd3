package dev.gradscope.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TensorBoard event files: TFRecord framing, checksums, and the Event fields, read back by an independent reader. */
class TensorBoardEventsTest {
    @TempDir
    Path dir;

    @Test
    void theChecksumIsCrc32cMaskedAsTfRecordsAre() {
        byte[] check = "123456789".getBytes(StandardCharsets.US_ASCII);
        int masked = TensorBoardEventReader.maskedCrc32c(check, 0, check.length);
        // CRC-32C's published check value for "123456789" is 0xE3069283; unmasking must give it back.
        assertEquals(0xE3069283, Integer.rotateLeft(masked - 0xa282ead8, 15));
        assertEquals(masked, TensorBoardEvents.maskedCrc32c(check, 0, check.length));
        byte[] other = new byte[1000];
        for (int i = 0; i < other.length; i++) {
            other[i] = (byte) (i * 31 + 7);
        }
        assertEquals(TensorBoardEventReader.maskedCrc32c(other, 3, 990), TensorBoardEvents.maskedCrc32c(other, 3, 990));
    }

    @Test
    void aNewFileStartsWithTheVersionRecordAndNeverReplacesAnother() {
        double before = System.currentTimeMillis() / 1000.0;
        TensorBoardEvents first = TensorBoardEvents.create(dir.resolve("train"));
        TensorBoardEvents second = TensorBoardEvents.create(dir.resolve("train"));
        assertNotEquals(first.file(), second.file());
        assertTrue(first.file().getFileName().toString().startsWith("events.out.tfevents."), first.file().toString());
        List<TensorBoardEventReader.Event> events = TensorBoardEventReader.read(first.file());
        assertEquals(1, events.size());
        assertEquals(TensorBoardEvents.FILE_VERSION, events.get(0).fileVersion());
        assertNull(events.get(0).tag());
        assertTrue(events.get(0).wallTime() >= before - 1 && events.get(0).wallTime() <= before + 60);
    }

    @Test
    void theFileNameCarriesTheHostsNameAsGethostnameGivesIt() {
        assertEquals("gpu-node7", TensorBoardEvents.hostName("gpu-node7\n", "stale-name"), "the kernel's name first");
        assertEquals("from-shell", TensorBoardEvents.hostName(null, "from-shell"), "HOSTNAME when the kernel's is unread");
        assertEquals("localhost", TensorBoardEvents.hostName(" ", null));
        assertEquals("a_b.lan", TensorBoardEvents.hostName("a/b.lan", null), "no path separator in a file name");
        String name = TensorBoardEvents.create(dir).file().getFileName().toString();
        // events.out.tfevents.SECONDS.HOST.PID.N
        assertTrue(name.matches("events\\.out\\.tfevents\\.\\d+\\.[A-Za-z0-9._-]+\\." + ProcessHandle.current().pid()
                + "\\.\\d+"), name);
    }

    @Test
    void scalarsComeBackWithTheirTagsStepsAndValues() {
        TensorBoardEvents file = TensorBoardEvents.create(dir);
        file.append(new TensorBoardEvents.Events().scalar("epoch_loss", 0, 0.75).scalar("epoch_loss", 1, 0.5));
        file.append(new TensorBoardEvents.Events().scalar("gradient_norm/dense.kernel", 12345678901L, Double.NaN));
        file.append(new TensorBoardEvents.Events()); // nothing to add
        List<TensorBoardEventReader.Event> events = TensorBoardEventReader.read(file.file());
        assertEquals(4, events.size());
        assertEquals("epoch_loss", events.get(1).tag());
        assertEquals(0, events.get(1).step());
        assertEquals(0.75f, events.get(1).simpleValue());
        assertEquals(1, events.get(2).step());
        assertEquals(0.5f, events.get(2).simpleValue());
        assertEquals("gradient_norm/dense.kernel", events.get(3).tag());
        assertEquals(12345678901L, events.get(3).step());
        assertTrue(Float.isNaN(events.get(3).simpleValue()));
        assertTrue(events.get(3).wallTime() >= events.get(1).wallTime());
    }

    @Test
    void aHistogramHasItsMomentsAndEqualBucketsOfTheFiniteValues() {
        TensorBoardEvents file = TensorBoardEvents.create(dir);
        file.append(new TensorBoardEvents.Events()
                .histogram("weights/dense.kernel", 3, new float[] {-1, 0, 0.5f, 1, Float.NaN, Float.POSITIVE_INFINITY})
                .histogram("weights/dense.bias", 3, new float[] {0.25f, 0.25f, 0.25f})
                .histogram("weights/nothing_finite", 3, new float[] {Float.NaN}));
        List<TensorBoardEventReader.Event> events = TensorBoardEventReader.read(file.file());
        assertEquals(3, events.size(), "a histogram with no finite value is left out");
        TensorBoardEventReader.Histogram h = events.get(1).histogram();
        assertEquals("weights/dense.kernel", events.get(1).tag());
        assertEquals(3, events.get(1).step());
        assertEquals(-1, h.min());
        assertEquals(1, h.max());
        assertEquals(4, h.count());
        assertEquals(0.5, h.sum());
        assertEquals(2.25, h.sumOfSquares());
        assertEquals(TensorBoardEvents.HISTOGRAM_BUCKETS, h.buckets().size());
        assertEquals(TensorBoardEvents.HISTOGRAM_BUCKETS, h.bucketLimits().size());
        assertEquals(1.0, h.bucketLimits().get(h.bucketLimits().size() - 1));
        for (int b = 1; b < h.bucketLimits().size(); b++) {
            assertTrue(h.bucketLimits().get(b) > h.bucketLimits().get(b - 1), "limits increase");
        }
        // Width 2/30: -1 in bucket 0, 0 in bucket 15, 0.5 in bucket 22, the maximum in the last one.
        assertEquals(1.0, h.buckets().get(0));
        assertEquals(1.0, h.buckets().get(15));
        assertEquals(1.0, h.buckets().get(22));
        assertEquals(1.0, h.buckets().get(29));
        assertEquals(4.0, h.buckets().stream().mapToDouble(Double::doubleValue).sum());
        TensorBoardEventReader.Histogram equal = events.get(2).histogram();
        assertEquals(List.of(0.25), equal.bucketLimits());
        assertEquals(List.of(3.0), equal.buckets());
    }

    @Test
    void aFileDeletedBetweenAppendsIsMadeAgainWithItsVersionRecordFirst() throws Exception {
        TensorBoardEvents file = TensorBoardEvents.create(dir.resolve("logs").resolve("train"));
        file.append(new TensorBoardEvents.Events().scalar("epoch_loss", 0, 1));
        deleteTree(dir.resolve("logs"));
        file.append(new TensorBoardEvents.Events().scalar("epoch_loss", 1, 0.5));
        List<TensorBoardEventReader.Event> events = TensorBoardEventReader.read(file.file());
        assertEquals(2, events.size());
        assertEquals(TensorBoardEvents.FILE_VERSION, events.get(0).fileVersion());
        assertEquals(1, events.get(1).step());
    }

    private static void deleteTree(Path root) throws java.io.IOException {
        try (var paths = Files.walk(root)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    @Test
    void aFileThatCannotBeWrittenSaysWhyWithTheErrorsKind() throws Exception {
        Path blocker = Files.writeString(dir.resolve("not-a-folder"), "");
        java.io.UncheckedIOException e = org.junit.jupiter.api.Assertions.assertThrows(
                java.io.UncheckedIOException.class, () -> TensorBoardEvents.create(blocker.resolve("train")));
        assertTrue(e.getMessage().startsWith("cannot create a TensorBoard event file in " + blocker.resolve("train")
                + ": FileSystemException"), e.getMessage());
    }

    @Test
    void aRecordCutShortIsFoundByTheReader() throws Exception {
        TensorBoardEvents file = TensorBoardEvents.create(dir);
        file.append(new TensorBoardEvents.Events().scalar("epoch_loss", 0, 1));
        byte[] bytes = Files.readAllBytes(file.file());
        bytes[bytes.length - 6] ^= 1; // a bit of the value
        Path damaged = dir.resolve("damaged");
        Files.write(damaged, bytes);
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> TensorBoardEventReader.read(damaged));
        assertTrue(e.getMessage().contains("bad data checksum"), e.getMessage());
    }
}
