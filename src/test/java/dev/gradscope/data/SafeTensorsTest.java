package dev.gradscope.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
    @TempDir
    Path dir;

    private static final List<SafeTensors.Entry> TENSORS = List.of(
            new SafeTensors.Entry("dense.kernel", new int[] {2, 3}, new float[] {1f, -2f, 3.5f, 1e-30f, -0f, 7f}),
            new SafeTensors.Entry("dense.bias", new int[] {3}, new float[] {0.25f, Float.MIN_VALUE, -1e30f}),
            new SafeTensors.Entry("scale", new int[] {}, new float[] {42f}),
            new SafeTensors.Entry("empty", new int[] {0, 4}, new float[0]));

    @Test
    void whatIsWrittenReadsBackBitForBitWithItsMetadataAndOrder() {
        Path file = dir.resolve("w.safetensors");
        SafeTensors.write(file, Map.of("epoch", "3", "note", "é ✓"), TENSORS);
        SafeTensors.Contents contents = SafeTensors.read(file);
        assertEquals(Map.of("epoch", "3", "note", "é ✓"), contents.metadata());
        assertEquals(List.of("dense.kernel", "dense.bias", "scale", "empty"), List.copyOf(contents.tensors().keySet()));
        for (SafeTensors.Entry expected : TENSORS) {
            SafeTensors.Entry read = contents.tensors().get(expected.name());
            assertArrayEquals(expected.shape(), read.shape(), expected.name());
            assertArrayEquals(expected.values(), read.values(), expected.name());
        }
        assertEquals(Map.of("epoch", "3", "note", "é ✓"), SafeTensors.readMetadata(file));
    }

    /** The layout the safetensors specification gives, checked byte by byte without the class's reader. */
    @Test
    void theFileIsALittleEndianLengthAPaddedJsonHeaderAndLittleEndianData() throws IOException {
        Path file = dir.resolve("layout.safetensors");
        SafeTensors.write(file, Map.of(), TENSORS.subList(0, 2));
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = buffer.getLong();
        assertEquals(0, headerLength % 8, "the header is padded so the data starts 8-byte aligned");
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{") && header.stripTrailing().endsWith("}"), header);
        assertTrue(header.substring(header.lastIndexOf('}') + 1).isBlank(), "padding is spaces: " + header);
        assertTrue(header.contains("\"dense.kernel\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"),
                header);
        assertTrue(header.contains("\"dense.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}"),
                header);
        assertTrue(!header.contains("__metadata__"), "no metadata object when there is none: " + header);
        assertEquals(8 + headerLength + 36, bytes.length);
        buffer.position((int) (8 + headerLength));
        assertEquals(1f, buffer.getFloat());
        assertEquals(-2f, buffer.getFloat());
        buffer.position((int) (8 + headerLength + 24));
        assertEquals(0.25f, buffer.getFloat());
    }

    /**
     * A file as another writer may lay it out, built here by hand from the specification: the metadata after
     * the tensors, tensors listed out of their data order, no padding.
     */
    @Test
    void readsAnyValidLayoutOfTheHeader() throws IOException {
        String header = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                + "\"a\":{\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\"},"
                + "\"__metadata__\":{\"format\":\"pt\"}}";
        Path file = file("other.safetensors", header, 1.5f, -3f, 9f);
        SafeTensors.Contents contents = SafeTensors.read(file);
        assertEquals(Map.of("format", "pt"), contents.metadata());
        assertEquals(List.of("a", "b"), List.copyOf(contents.tensors().keySet()), "in data order");
        assertArrayEquals(new float[] {1.5f, -3f}, contents.tensors().get("a").values());
        assertArrayEquals(new float[] {9f}, contents.tensors().get("b").values());
    }

    @Test
    void brokenFilesAreRefusedWithTheFileAndWhatIsWrong() throws IOException {
        String ok = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        assertRefused(Files.write(dir.resolve("empty"), new byte[0]), "0 bytes");
        assertRefused(Files.write(dir.resolve("short"), new byte[5]), "5 bytes");
        assertRefused(raw("huge", Long.MAX_VALUE, "{}"), "header of 9223372036854775807 bytes");
        assertRefused(raw("negative", -1L, "{}"), "header of 18446744073709551615 bytes");
        assertRefused(raw("long", 100, "{}"), "header of 100 bytes, the file has 2");
        assertRefused(file("json", "{\"a\": [", 0f), "not valid JSON");
        assertRefused(file("array", "[1, 2]"), "not a JSON object");
        assertRefused(file("duplicate", "{" + ok + "," + ok + "}", 1f, 2f), "Duplicate field 'a'");
        assertRefused(file("f16", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 0f),
                "tensor 'a' is F16; GradScope reads F32");
        assertRefused(file("nodtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0f),
                "tensor 'a' has no dtype");
        assertRefused(file("shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0f),
                "tensor 'a' has a shape that is not a list of counts");
        assertRefused(file("fraction", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 0f),
                "not a list of counts");
        assertRefused(file("size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0f, 0f),
                "tensor 'a': shape [3] of F32 needs 12 bytes, its data_offsets [0,8] span 8");
        assertRefused(file("backwards", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 0f, 0f),
                "not 0 <= begin <= end");
        assertRefused(file("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0f, 0f),
                "tensor 'a' starts at data byte 4, where 0 was expected");
        assertRefused(file("overlap", "{" + ok + ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                0f, 0f), "starts at data byte 4, where 8 was expected");
        assertRefused(file("trailing", "{" + ok + "}", 0f, 0f, 0f), "the tensors cover 8 data bytes, the file has 12");
        assertRefused(file("truncated", "{" + ok + "}", 0f), "cover 8 data bytes, the file has 4 after its header"
                + " (truncated?)");
        assertRefused(file("metadata", "{\"__metadata__\":{\"epoch\":3}}"), "__metadata__.epoch is not a string");
        assertRefused(dir.resolve("missing.safetensors"), "file not found");
    }

    /**
     * Where the reference implementation is strict, so is GradScope; where it accepts, GradScope does too,
     * within Java's limits (a dimension is an int, a tensor's bytes fit an array).
     */
    @Test
    void theReadersLimitsAreTheReferenceImplementations() throws IOException {
        String ok = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        byte[] badUtf8 = "{\"__metadata__\":{\"k\":\"\u00ff\"}}".getBytes(StandardCharsets.ISO_8859_1);
        assertRefused(bytes("utf8", badUtf8), "not valid UTF-8");
        assertRefused(file("trailing-text", "{" + ok + "} x", 1f, 2f), "not valid JSON");
        assertRefused(file("two-objects", "{" + ok + "}{}", 1f, 2f), "not valid JSON");
        assertRefused(file("float-shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
                1f, 2f), "not a list of counts");
        assertRefused(file("float-offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]}}",
                1f, 2f), "has no data_offsets");
        assertRefused(file("huge", "{\"a\":{\"dtype\":\"F32\",\"shape\":[600000000],\"data_offsets\":[0,"
                + "2400000000]}}"), "of shape [600000000] has more than 536870909 elements (2 GiB)");

        SafeTensors.Contents accepted = SafeTensors.read(file("accepted", "{\"__metadata__\":null,"
                + "\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"none\":{\"dtype\":\"F32\",\"shape\":[2147483647,0],\"data_offsets\":[4,4]}}", 5f));
        assertEquals(Map.of(), accepted.metadata(), "a null metadata is no metadata");
        assertArrayEquals(new float[] {5f}, accepted.tensors().get("").values(), "an empty name is a name");
        assertArrayEquals(new int[] {2147483647, 0}, accepted.tensors().get("none").shape());

        String longText = "x".repeat(21_000_000); // beyond Jackson's default limit of 20 million characters
        String longName = "n".repeat(60_000); // beyond its default limit of 50,000 for a name
        Path large = dir.resolve("large.safetensors");
        SafeTensors.write(large, Map.of("note", longText),
                List.of(new SafeTensors.Entry(longName, new int[] {1}, new float[] {1f})));
        SafeTensors.Contents read = SafeTensors.read(large);
        assertEquals(longText, read.metadata().get("note"));
        assertEquals(List.of(longName), List.copyOf(read.tensors().keySet()));
    }

    /**
     * A reader that opened the file sees one version of it while a writer replaces it again and again, with
     * headers of changing lengths: never the header of one version with the data of another.
     */
    @Test
    void aReaderSeesOneVersionOfAFileBeingReplaced() throws Exception {
        Path file = dir.resolve("busy.safetensors");
        List<List<SafeTensors.Entry>> versions = List.of(
                List.of(new SafeTensors.Entry("w", new int[] {4}, new float[] {1f, 2f, 3f, 4f})),
                List.of(new SafeTensors.Entry("w", new int[] {4}, new float[] {-1f, -2f, -3f, -4f})));
        List<Map<String, String>> metadata =
                List.of(Map.of("epoch", "1"), Map.of("epoch", "2", "note", "x".repeat(37)));
        SafeTensors.write(file, metadata.get(0), versions.get(0));
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread writer = new Thread(() -> {
            for (int i = 0; !stop.get(); i++) {
                SafeTensors.write(file, metadata.get(i % 2), versions.get(i % 2));
            }
        });
        writer.start();
        try {
            long deadline = System.nanoTime() + 1_000_000_000L;
            int reads = 0;
            while (System.nanoTime() < deadline) {
                SafeTensors.Contents contents = SafeTensors.read(file);
                int version = contents.metadata().get("epoch").equals("1") ? 0 : 1;
                assertArrayEquals(versions.get(version).get(0).values(), contents.tensors().get("w").values(),
                        "read " + reads + ": the data of the version whose header was read");
                reads++;
            }
            assertTrue(reads > 10, "reads: " + reads);
        } finally {
            stop.set(true);
            writer.join();
        }
    }

    @Test
    void writingRefusesTwoTensorsOfOneNameAndBadEntries() {
        Path file = dir.resolve("dup.safetensors");
        SafeTensors.Entry a = new SafeTensors.Entry("a", new int[] {1}, new float[] {1f});
        assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(file, Map.of(), List.of(a, a)));
        assertTrue(!Files.exists(file), "nothing written");
        assertThrows(IllegalArgumentException.class, () -> new SafeTensors.Entry("a", new int[] {2}, new float[1]));
        assertThrows(IllegalArgumentException.class,
                () -> new SafeTensors.Entry(SafeTensors.METADATA_KEY, new int[] {1}, new float[1]));
        assertThrows(IllegalArgumentException.class, () -> new SafeTensors.Entry("n", new int[] {-1}, new float[0]));
    }

    private void assertRefused(Path file, String expected) {
        InvalidDataException e =
                assertThrows(InvalidDataException.class, () -> SafeTensors.read(file), file.toString());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
    }

    private Path bytes(String name, byte[] header) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
        out.write(header);
        return Files.write(dir.resolve(name), out.toByteArray());
    }

    /** A file of {@code header} (unpadded) and {@code values} as little-endian floats. */
    private Path file(String name, String header, float... values) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            data.putFloat(v);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).array());
        out.write(json);
        out.write(data.array());
        return Files.write(dir.resolve(name), out.toByteArray());
    }

    /** A file whose first 8 bytes claim a header of {@code claimedLength} bytes, followed by {@code rest}. */
    private Path raw(String name, long claimedLength, String rest) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(claimedLength).array());
        out.write(rest.getBytes(StandardCharsets.UTF_8));
        return Files.write(dir.resolve(name), out.toByteArray());
    }
}
