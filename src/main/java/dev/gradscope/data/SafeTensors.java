package dev.gradscope.data;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
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
 * the file, the tensor and the numbers; writing goes through a temporary file and one move
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

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private SafeTensors() {
    }

    /**
     * One named tensor: its shape and its values, row-major.
     *
     * @param name   its key in the file; neither empty nor {@value #METADATA_KEY}
     * @param shape  its dimensions, each >= 0 ({@code []} is a scalar)
     * @param values its elements, as many as the shape has
     */
    public record Entry(String name, int[] shape, float[] values) {
        public Entry {
            if (name == null || name.isEmpty() || name.equals(METADATA_KEY)) {
                throw new IllegalArgumentException("a tensor's name must be neither empty nor " + METADATA_KEY
                        + ", got '" + name + "'");
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
        Header header = readHeader(file);
        Map<String, Entry> tensors = new LinkedHashMap<>();
        try (InputStream in = Files.newInputStream(file)) {
            in.skipNBytes(header.dataStart);
            for (TensorInfo info : header.tensors) {
                byte[] bytes = in.readNBytes(Math.toIntExact(info.end - info.begin));
                if (bytes.length != info.end - info.begin) {
                    throw new InvalidDataException(file + ": truncated while reading tensor '" + info.name
                            + "' (the file changed while it was read?)");
                }
                float[] values = new float[bytes.length / Float.BYTES];
                ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
                tensors.put(info.name, new Entry(info.name, info.shape, values));
            }
        } catch (IOException e) {
            throw new InvalidDataException(file + ": cannot read: " + e, e);
        }
        return new Contents(header.metadata, tensors);
    }

    /**
     * The {@value #METADATA_KEY} strings of {@code file} (empty when it has none), read and checked from its
     * header alone.
     */
    public static Map<String, String> readMetadata(Path file) {
        return Collections.unmodifiableMap(readHeader(file).metadata);
    }

    private record TensorInfo(String name, int[] shape, long begin, long end) {
    }

    private record Header(Map<String, String> metadata, List<TensorInfo> tensors, long dataStart) {
    }

    private static Header readHeader(Path file) {
        long fileSize;
        byte[] json;
        try (InputStream in = Files.newInputStream(file)) {
            fileSize = Files.size(file);
            byte[] prefix = in.readNBytes(LENGTH_PREFIX_BYTES);
            if (prefix.length < LENGTH_PREFIX_BYTES) {
                throw new InvalidDataException(String.format("%s: not a safetensors file: %d bytes, the header length"
                        + " alone needs %d", file, prefix.length, LENGTH_PREFIX_BYTES));
            }
            long headerLength = ByteBuffer.wrap(prefix).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (headerLength < 2 || Long.compareUnsigned(headerLength, fileSize - LENGTH_PREFIX_BYTES) > 0
                    || headerLength > MAX_HEADER_BYTES) {
                throw new InvalidDataException(String.format("%s: not a safetensors file: its first 8 bytes give a"
                        + " header of %s bytes, the file has %d bytes after them%s", file,
                        Long.toUnsignedString(headerLength), fileSize - LENGTH_PREFIX_BYTES,
                        headerLength > MAX_HEADER_BYTES ? " and headers are limited to " + MAX_HEADER_BYTES : ""));
            }
            json = in.readNBytes((int) headerLength);
            if (json.length != headerLength) {
                throw new InvalidDataException(file + ": truncated header (the file changed while it was read?)");
            }
        } catch (NoSuchFileException e) {
            throw new InvalidDataException(file + ": file not found", e);
        } catch (IOException e) {
            throw new InvalidDataException(file + ": cannot read: " + e, e);
        }
        long dataStart = LENGTH_PREFIX_BYTES + (long) json.length;
        return parseHeader(file, json, dataStart, fileSize - dataStart);
    }

    private static Header parseHeader(Path file, byte[] json, long dataStart, long dataBytes) {
        JsonNode root;
        try {
            root = JSON.readTree(new String(json, StandardCharsets.UTF_8));
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
        if (name.isEmpty()) {
            throw new InvalidDataException(file + ": a tensor has an empty name");
        }
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
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.canConvertToExactIntegral() || !d.canConvertToInt() || d.intValue() < 0) {
                throw new InvalidDataException(where + " has a shape that is not a list of counts: " + shapeNode);
            }
            shape[i] = d.intValue();
            elements = multiplyBelowArrayLimit(where, shapeNode, elements, shape[i]);
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2 || !offsets.get(0).canConvertToExactIntegral()
                || !offsets.get(1).canConvertToExactIntegral() || !offsets.get(0).canConvertToLong()
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
                    + " span %d", where, Arrays.toString(shape), FLOAT32, elements * Float.BYTES, offsets, end - begin));
        }
        return new TensorInfo(name, shape, begin, end);
    }

    private static long multiplyBelowArrayLimit(String where, JsonNode shape, long elements, int dimension) {
        long product = elements * dimension;
        if (product > Integer.MAX_VALUE - 8) {
            throw new InvalidDataException(where + " of shape " + shape + " has more elements than a Java array holds");
        }
        return product;
    }
}
