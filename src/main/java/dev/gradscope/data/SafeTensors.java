package dev.gradscope.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads and writes <a href="https://huggingface.co/docs/safetensors">safetensors</a> files of 32-bit float
 * tensors, the format PyTorch, JAX and Hugging Face load with {@code safetensors.numpy.load_file} and its
 * siblings.
 *
 * <p>A file is an 8-byte little-endian unsigned header length {@code N}; {@code N} bytes of UTF-8 JSON
 * mapping each tensor's name to {@code {"dtype", "shape", "data_offsets": [begin, end]}}, plus an optional
 * {@code "__metadata__"} object of string values; then the data, every tensor row-major and little-endian,
 * its offsets relative to the end of the header. The tensors must cover the data exactly, without holes or
 * overlaps. GradScope writes the header padded with spaces to a multiple of 8 bytes, so every tensor is
 * 8-byte aligned in the file, as the reference implementation does.
 *
 * <p>Reading checks all of that and refuses anything else with an {@link InvalidDataException} that names
 * the file, the tensor and the numbers. Beyond the reference implementation's limits, a dimension must fit
 * a Java int and a tensor's bytes a Java array (2 GiB); writing goes through a temporary file and one move
 * ({@link AtomicFiles}), so a file being replaced is never seen half-written.
 */
public final class SafeTensors {
    /** The header key that holds the file's string metadata instead of a tensor. */
    public static final String METADATA_KEY = "__metadata__";

    /** The only element type GradScope reads and writes. */
    public static final String FLOAT32 = "F32";

    /** Longer headers are refused, as the reference implementation refuses them. */
    static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final int LENGTH_PREFIX_BYTES = 8;

    /** The most elements a tensor may have: its bytes must fit in one Java array. */
    static final long MAX_TENSOR_ELEMENTS = (Integer.MAX_VALUE - 8) / Float.BYTES;

    /**
     * Strict where the reference implementation is: nothing after the header's object, and a key given twice
     * is refused (the reference keeps the last). Strings and names as long as the header may hold.
     */
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxStringLength((int) MAX_HEADER_BYTES)
                    .maxNameLength((int) MAX_HEADER_BYTES).build())
            .build())
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private SafeTensors() {
    }

    /**
     * One named tensor: its shape and its values, row-major.
     *
     * @param name   its key in the file; not {@value #METADATA_KEY}
     * @param shape  its dimensions, each >= 0 ({@code []} is a scalar)
     * @param values its elements, as many as the shape has
     */
    public record Entry(String name, int[] shape, float[] values) {
        public Entry {
            if (name == null || name.equals(METADATA_KEY)) {
                throw new IllegalArgumentException("a tensor cannot be named " + name);
            }
            long size = 1;
            for (int d : shape) {
                if (d < 0) {
                    throw new IllegalArgumentException("tensor '" + name + "' has a negative dimension: "
                            + Arrays.toString(shape));
                }
                size *= d;
            }
            if (size != values.length) {
                throw new IllegalArgumentException("tensor '" + name + "' of shape " + Arrays.toString(shape)
                        + " needs " + size + " values, got " + values.length);
            }
            shape = shape.clone();
        }

        @Override
        public int[] shape() {
            return shape.clone();
        }
    }

    /**
     * What a file holds.
     *
     * @param metadata its {@value #METADATA_KEY} strings (empty when it has none)
     * @param tensors  its tensors by name, in the order of their data in the file
     */
    public record Contents(Map<String, String> metadata, Map<String, Entry> tensors) {
        public Contents {
            metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
            tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        }
    }

    /** Writes {@code tensors}, in this order, and {@code metadata} (may be empty) to {@code file}. */
    public static void write(Path file, Map<String, String> metadata, List<Entry> tensors) {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject(METADATA_KEY);
            metadata.forEach((key, value) -> meta.put(key, requireText(key, value)));
        }
        long offset = 0;
        Set<String> names = new HashSet<>();
        for (Entry t : tensors) {
            if (!names.add(t.name())) {
                throw new IllegalArgumentException("two tensors named '" + t.name() + "' for " + file);
            }
            long bytes = (long) t.values().length * Float.BYTES;
            ObjectNode info = header.putObject(t.name());
            info.put("dtype", FLOAT32);
            ArrayNode shape = info.putArray("shape");
            for (int d : t.shape()) {
                shape.add(d);
            }
            info.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(header);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise the safetensors header for " + file, e);
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
        AtomicFiles.write(file, out -> writeTo(out, headerBytes, tensors));
    }

    private static String requireText(String key, String value) {
        if (key == null || value == null) {
            throw new IllegalArgumentException("safetensors metadata keys and values are strings, got " + key
                    + " = " + value);
        }
        return value;
    }

    private static void writeTo(OutputStream stream, byte[] header, List<Entry> tensors) throws IOException {
        DataOutputStream out = new DataOutputStream(new java.io.BufferedOutputStream(stream, 1 << 16));
        out.writeLong(Long.reverseBytes(header.length)); // little-endian
        out.write(header);
        ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        for (Entry t : tensors) {
            for (float v : t.values()) {
                if (!chunk.hasRemaining()) {
                    out.write(chunk.array(), 0, chunk.position());
                    chunk.clear();
                }
                chunk.putFloat(v);
            }
        }
        out.write(chunk.array(), 0, chunk.position());
        out.flush();
    }

    /** Reads every tensor of {@code file}; see the class comment for what is checked. */
    public static Contents read(Path file) {
        try (Reader reader = open(file)) {
            return reader.readAll();
        }
    }

    /**
     * The {@value #METADATA_KEY} strings of {@code file} (empty when it has none), read and checked from its
     * header alone.
     */
    public static Map<String, String> readMetadata(Path file) {
        try (Reader reader = open(file)) {
            return reader.metadata();
        }
    }

    /**
     * Opens {@code file} and reads and checks its header; the tensors' values are read on demand, from the
     * same open file. So a reader sees one version of a file that a writer replaces meanwhile (the move swaps
     * the name, not the open file), and a caller can check names and shapes before reading any value.
     */
    public static Reader open(Path file) {
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new InvalidDataException(file + ": file not found", e);
        } catch (IOException e) {
            throw new InvalidDataException(file + ": cannot read: " + e, e);
        }
        boolean opened = false;
        try {
            Reader reader = new Reader(file, channel, readHeader(file, channel));
            opened = true;
            return reader;
        } finally {
            if (!opened) { // any failure, an Error too, closes the file now rather than when collected
                try {
                    channel.close();
                } catch (IOException e) {
                    // the failure being thrown says more than this one
                }
            }
        }
    }

    /** An open safetensors file whose header has been read and checked ({@link #open}). */
    public static final class Reader implements AutoCloseable {
        private final Path file;
        private final FileChannel channel;
        private final Header header;
        private final Map<String, TensorInfo> byName = new LinkedHashMap<>();

        private Reader(Path file, FileChannel channel, Header header) {
            this.file = file;
            this.channel = channel;
            this.header = header;
            for (TensorInfo t : header.tensors) {
                byName.put(t.name, t);
            }
        }

        public Path file() {
            return file;
        }

        /** The {@value #METADATA_KEY} strings (empty when the file has none). */
        public Map<String, String> metadata() {
            return Collections.unmodifiableMap(header.metadata);
        }

        /** Each tensor's shape by name, in the order of their data in the file. */
        public Map<String, int[]> shapes() {
            Map<String, int[]> shapes = new LinkedHashMap<>();
            byName.forEach((name, t) -> shapes.put(name, t.shape.clone()));
            return shapes;
        }

        /** The values of tensor {@code name}, row-major. */
        public float[] values(String name) {
            TensorInfo t = byName.get(name);
            if (t == null) {
                throw new IllegalArgumentException(file + " has no tensor '" + name + "'");
            }
            ByteBuffer bytes = ByteBuffer.allocate((int) (t.end - t.begin)).order(ByteOrder.LITTLE_ENDIAN);
            try {
                long position = header.dataStart + t.begin;
                while (bytes.hasRemaining()) {
                    int read = channel.read(bytes, position + bytes.position());
                    if (read < 0) {
                        throw new InvalidDataException(file + ": truncated while reading tensor '" + name
                                + "' (the file shrank while it was read?)");
                    }
                }
            } catch (IOException e) {
                throw new InvalidDataException(file + ": cannot read tensor '" + name + "': " + e, e);
            }
            float[] values = new float[bytes.capacity() / Float.BYTES];
            bytes.flip();
            bytes.asFloatBuffer().get(values);
            return values;
        }

        /** Every tensor, in data order, with the metadata. */
        public Contents readAll() {
            Map<String, Entry> tensors = new LinkedHashMap<>();
            for (TensorInfo t : header.tensors) {
                tensors.put(t.name, new Entry(t.name, t.shape, values(t.name)));
            }
            return new Contents(header.metadata, tensors);
        }

        @Override
        public void close() {
            try {
                channel.close();
            } catch (IOException e) {
                throw new InvalidDataException(file + ": cannot close: " + e, e);
            }
        }
    }

    private record TensorInfo(String name, int[] shape, long begin, long end) {
    }

    private record Header(Map<String, String> metadata, List<TensorInfo> tensors, long dataStart) {
    }

    private static Header readHeader(Path file, FileChannel channel) {
        try {
            long fileSize = channel.size();
            ByteBuffer prefix = ByteBuffer.allocate(LENGTH_PREFIX_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, prefix, 0);
            if (prefix.hasRemaining()) {
                throw new InvalidDataException(String.format("%s: not a safetensors file: %d bytes, the header length"
                        + " alone needs %d", file, prefix.position(), LENGTH_PREFIX_BYTES));
            }
            long headerLength = prefix.getLong(0);
            if (headerLength < 2 || Long.compareUnsigned(headerLength, fileSize - LENGTH_PREFIX_BYTES) > 0
                    || headerLength > MAX_HEADER_BYTES) {
                throw new InvalidDataException(String.format("%s: not a safetensors file: its first 8 bytes give a"
                        + " header of %s bytes, the file has %d bytes after them%s", file,
                        Long.toUnsignedString(headerLength), fileSize - LENGTH_PREFIX_BYTES,
                        headerLength > MAX_HEADER_BYTES ? " and headers are limited to " + MAX_HEADER_BYTES : ""));
            }
            ByteBuffer json = ByteBuffer.allocate((int) headerLength);
            readFully(channel, json, LENGTH_PREFIX_BYTES);
            if (json.hasRemaining()) {
                throw new InvalidDataException(file + ": truncated header (the file shrank while it was read?)");
            }
            long dataStart = LENGTH_PREFIX_BYTES + headerLength;
            return parseHeader(file, json.flip(), dataStart, fileSize - dataStart);
        } catch (IOException e) {
            throw new InvalidDataException(file + ": cannot read: " + e, e);
        }
    }

    /** Reads from {@code position} until {@code buffer} is full or the file ends. */
    private static void readFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) {
                return;
            }
        }
    }

    private static Header parseHeader(Path file, ByteBuffer json, long dataStart, long dataBytes) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(json).toString();
        } catch (CharacterCodingException e) {
            throw new InvalidDataException(file + ": the safetensors header is not valid UTF-8", e);
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new InvalidDataException(file + ": the safetensors header is not valid JSON: "
                    + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new InvalidDataException(file + ": the safetensors header is not a JSON object");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorInfo> tensors = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (field.getKey().equals(METADATA_KEY)) {
                readMetadata(file, field.getValue(), metadata);
            } else {
                tensors.add(tensorInfo(file, field.getKey(), field.getValue()));
            }
        }
        tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expectedBegin = 0;
        for (TensorInfo t : tensors) {
            if (t.begin != expectedBegin) {
                throw new InvalidDataException(String.format("%s: tensor '%s' starts at data byte %d, where %d was"
                        + " expected: the tensors must cover the data without holes or overlaps", file, t.name,
                        t.begin, expectedBegin));
            }
            expectedBegin = t.end;
        }
        if (expectedBegin != dataBytes) {
            throw new InvalidDataException(String.format("%s: the tensors cover %d data bytes, the file has %d after"
                    + " its header%s", file, expectedBegin, dataBytes,
                    expectedBegin > dataBytes ? " (truncated?)" : ""));
        }
        return new Header(metadata, tensors, dataStart);
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> into) {
        if (node.isNull()) {
            return; // the reference implementation reads an absent and a null metadata alike
        }
        if (!node.isObject()) {
            throw new InvalidDataException(file + ": " + METADATA_KEY + " is not a JSON object of strings");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (!field.getValue().isTextual()) {
                throw new InvalidDataException(file + ": " + METADATA_KEY + "." + field.getKey()
                        + " is not a string: " + field.getValue());
            }
            into.put(field.getKey(), field.getValue().textValue());
        }
    }

    private static TensorInfo tensorInfo(Path file, String name, JsonNode node) {
        String where = file + ": tensor '" + name + "'";
        if (!node.isObject()) {
            throw new InvalidDataException(where + " is not described by a JSON object: " + node);
        }
        JsonNode dtype = node.get("dtype");
        if (dtype == null || !dtype.isTextual()) {
            throw new InvalidDataException(where + " has no dtype string");
        }
        if (!dtype.textValue().equals(FLOAT32)) {
            throw new InvalidDataException(where + " is " + dtype.textValue() + "; GradScope reads " + FLOAT32
                    + " (32-bit float) tensors only");
        }
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw new InvalidDataException(where + " has no shape array");
        }
        int[] shape = new int[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToInt() || d.intValue() < 0) {
                throw new InvalidDataException(where + " has a shape that is not a list of counts: " + shapeNode);
            }
            shape[i] = d.intValue();
        }
        long elements = elementsWithinLimit(where, shape);
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2 || !offsets.get(0).isIntegralNumber()
                || !offsets.get(1).isIntegralNumber() || !offsets.get(0).canConvertToLong()
                || !offsets.get(1).canConvertToLong()) {
            throw new InvalidDataException(where + " has no data_offsets [begin, end]: " + offsets);
        }
        long begin = offsets.get(0).longValue();
        long end = offsets.get(1).longValue();
        if (begin < 0 || end < begin) {
            throw new InvalidDataException(where + " has data_offsets " + offsets
                    + ", which are not 0 <= begin <= end");
        }
        if (end - begin != elements * Float.BYTES) {
            throw new InvalidDataException(String.format("%s: shape %s of %s needs %d bytes, its data_offsets %s"
                    + " span %d", where, Arrays.toString(shape), FLOAT32, elements * Float.BYTES, offsets,
                    end - begin));
        }
        return new TensorInfo(name, shape, begin, end);
    }

    /**
     * The elements of a tensor of {@code shape}; refuses tensors whose bytes would not fit in one Java array
     * (2 GiB), which GradScope could not hold either.
     */
    private static long elementsWithinLimit(String where, int[] shape) {
        long elements = 1;
        for (int d : shape) {
            if (d == 0) {
                return 0;
            }
        }
        for (int d : shape) {
            elements *= d; // at most MAX_TENSOR_ELEMENTS * Integer.MAX_VALUE: no overflow
            if (elements > MAX_TENSOR_ELEMENTS) {
                throw new InvalidDataException(where + " of shape " + Arrays.toString(shape) + " has more than "
                        + MAX_TENSOR_ELEMENTS + " elements (2 GiB), more than GradScope holds in one tensor");
            }
        }
        return elements;
    }
}
