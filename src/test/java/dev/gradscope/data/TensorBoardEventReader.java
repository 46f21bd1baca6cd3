package dev.gradscope.data;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.WireFormat;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Reads TensorBoard event files back for the tests, checking every record's framing and both checksums with a
 * CRC-32C computed bit by bit from its definition (independent of {@code java.util.zip.CRC32C}), and decoding the
 * fields of {@code Event}, {@code Summary.Value} and {@code HistogramProto} that GradScope writes. Unknown fields
 * fail: the writer must write nothing else.
 */
public final class TensorBoardEventReader {
    private TensorBoardEventReader() {
    }

    /** A histogram as written: {@code HistogramProto}'s fields. */
    public record Histogram(double min, double max, double count, double sum, double sumOfSquares,
                            List<Double> bucketLimits, List<Double> buckets) {
    }

    /** One event: the version record has only a wall time and {@code fileVersion}; others one tagged value. */
    public record Event(double wallTime, long step, String fileVersion, String tag, Float simpleValue,
                        Histogram histogram) {
    }

    /** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one bit at a time, and TFRecord's mask. */
    public static int maskedCrc32c(byte[] data, int offset, int length) {
        int crc = 0xFFFFFFFF;
        for (int i = offset; i < offset + length; i++) {
            crc ^= data[i] & 0xFF;
            for (int bit = 0; bit < 8; bit++) {
                crc = (crc & 1) != 0 ? (crc >>> 1) ^ 0x82F63B78 : crc >>> 1;
            }
        }
        crc = ~crc;
        return Integer.rotateRight(crc, 15) + 0xa282ead8;
    }

    public static List<Event> read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        List<Event> events = new ArrayList<>();
        while (in.hasRemaining()) {
            int start = in.position();
            if (in.remaining() < 12) {
                throw new IllegalStateException(file + ": a torn record header at byte " + start);
            }
            long length = in.getLong();
            if (in.getInt() != maskedCrc32c(bytes, start, 8)) {
                throw new IllegalStateException(file + ": bad length checksum at byte " + start);
            }
            if (length < 0 || length > in.remaining() - 4) {
                throw new IllegalStateException(file + ": a record of " + length + " bytes at byte " + start
                        + " runs past the end");
            }
            int dataStart = in.position();
            in.position(dataStart + (int) length);
            if (in.getInt() != maskedCrc32c(bytes, dataStart, (int) length)) {
                throw new IllegalStateException(file + ": bad data checksum at byte " + start);
            }
            events.add(event(CodedInputStream.newInstance(bytes, dataStart, (int) length)));
        }
        return events;
    }

    /** The events of every event file in {@code dir}, files in name order. */
    public static List<Event> readDirectory(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().startsWith("events.out.tfevents.")).sorted()
                    .flatMap(f -> read(f).stream()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Event event(CodedInputStream in) {
        try {
            double wallTime = Double.NaN;
            long step = 0;
            String version = null;
            Event value = null;
            int tag;
            while ((tag = in.readTag()) != 0) {
                switch (tag) {
                    case (1 << 3) | WireFormat.WIRETYPE_FIXED64 -> wallTime = in.readDouble();
                    case (2 << 3) | WireFormat.WIRETYPE_VARINT -> step = in.readInt64();
                    case (3 << 3) | WireFormat.WIRETYPE_LENGTH_DELIMITED -> version = in.readString();
                    case (5 << 3) | WireFormat.WIRETYPE_LENGTH_DELIMITED -> {
                        if (value != null) {
                            throw new IllegalStateException("two summaries in one event");
                        }
                        value = summary(CodedInputStream.newInstance(in.readByteArray()));
                    }
                    default -> throw new IllegalStateException("unexpected Event field tag " + tag);
                }
            }
            return value == null ? new Event(wallTime, step, version, null, null, null)
                    : new Event(wallTime, step, version, value.tag(), value.simpleValue(), value.histogram());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A Summary with exactly one Value. */
    private static Event summary(CodedInputStream in) throws IOException {
        Event value = null;
        int tag;
        while ((tag = in.readTag()) != 0) {
            if (tag != ((1 << 3) | WireFormat.WIRETYPE_LENGTH_DELIMITED) || value != null) {
                throw new IllegalStateException("a Summary holds one value, got field tag " + tag);
            }
            value = value(CodedInputStream.newInstance(in.readByteArray()));
        }
        return value;
    }

    private static Event value(CodedInputStream in) throws IOException {
        String name = null;
        Float simple = null;
        Histogram histogram = null;
        int tag;
        while ((tag = in.readTag()) != 0) {
            switch (tag) {
                case (1 << 3) | WireFormat.WIRETYPE_LENGTH_DELIMITED -> name = in.readString();
                case (2 << 3) | WireFormat.WIRETYPE_FIXED32 -> simple = in.readFloat();
                case (5 << 3) | WireFormat.WIRETYPE_LENGTH_DELIMITED ->
                        histogram = histogram(CodedInputStream.newInstance(in.readByteArray()));
                default -> throw new IllegalStateException("unexpected Summary.Value field tag " + tag);
            }
        }
        return new Event(Double.NaN, 0, null, name, simple, histogram);
    }

    private static Histogram histogram(CodedInputStream in) throws IOException {
        double[] scalars = new double[5];
        List<Double> limits = new ArrayList<>();
        List<Double> buckets = new ArrayList<>();
        int tag;
        while ((tag = in.readTag()) != 0) {
            int field = WireFormat.getTagFieldNumber(tag);
            if (field >= 1 && field <= 5 && WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_FIXED64) {
                scalars[field - 1] = in.readDouble();
            } else if ((field == 6 || field == 7)
                    && WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_LENGTH_DELIMITED) {
                int end = in.pushLimit(in.readRawVarint32());
                while (in.getBytesUntilLimit() > 0) {
                    (field == 6 ? limits : buckets).add(in.readDouble());
                }
                in.popLimit(end);
            } else {
                throw new IllegalStateException("unexpected HistogramProto field tag " + tag);
            }
        }
        return new Histogram(scalars[0], scalars[1], scalars[2], scalars[3], scalars[4], limits, buckets);
    }
}
