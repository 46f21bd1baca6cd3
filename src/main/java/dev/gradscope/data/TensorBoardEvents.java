package dev.gradscope.data;

import com.google.protobuf.CodedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32C;

/**
 * One TensorBoard event file: what TensorFlow's {@code tf.summary} and PyTorch's {@code SummaryWriter} write and
 * {@code tensorboard --logdir} reads.
 *
 * <p>The format: a sequence of TFRecords, each {@code uint64 length}, {@code uint32 masked CRC-32C of the length
 * bytes}, the {@code length} bytes of one serialized {@code tensorflow.Event}, and {@code uint32 masked CRC-32C of
 * those bytes}, all little-endian; a masked CRC is {@code ((crc >>> 15 | crc << 17) + 0xa282ead8)}. The first
 * event carries only {@code file_version = "brain.Event:2"}. Scalars are written as {@code Summary.Value.simple_value}
 * and histograms as {@code Summary.Value.histo} ({@code HistogramProto}): the forms PyTorch's writer uses and that
 * TensorBoard converts to its scalar and histogram plugins. The protobuf fields (from TensorFlow's
 * {@code event.proto} and {@code summary.proto}): {@code Event} 1 wall_time (double), 2 step (int64), 3
 * file_version (string), 5 summary; {@code Summary} 1 value (repeated); {@code Value} 1 tag, 2 simple_value
 * (float), 5 histo; {@code HistogramProto} 1 min, 2 max, 3 num, 4 sum, 5 sum_squares (doubles), 6 bucket_limit
 * and 7 bucket (packed doubles).
 *
 * <p>Each {@link #append} opens the file, adds its events and closes it, so no handle stays open between epochs
 * and a run that dies leaves every appended record whole. A file (or folder) deleted meanwhile, say by someone
 * clearing old logs, is made again, with its version record first, as TensorFlow's {@code EventsWriter} does.
 */
public final class TensorBoardEvents {
    public static final String FILE_VERSION = "brain.Event:2";
    /** Buckets of a histogram when the values are not all equal: TensorBoard re-bins them for display anyway. */
    public static final int HISTOGRAM_BUCKETS = 30;

    private static final int MASK_DELTA = 0xa282ead8;
    private static final AtomicLong FILES_MADE = new AtomicLong();

    private final Path file;

    private TensorBoardEvents(Path file) {
        this.file = file;
    }

    /**
     * Creates a new event file in {@code dir} (made when missing) with its version record, named as TensorFlow
     * names them, {@code events.out.tfevents.SECONDS.HOST.PID.N}: never an existing file, so a resumed run adds a
     * file beside the earlier run's, as TensorFlow does.
     */
    public static TensorBoardEvents create(Path dir) {
        try {
            Files.createDirectories(dir);
            String prefix = "events.out.tfevents." + System.currentTimeMillis() / 1000 + "." + hostName() + "."
                    + ProcessHandle.current().pid() + ".";
            while (true) {
                Path file = dir.resolve(prefix + FILES_MADE.incrementAndGet());
                try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE)) {
                    channel.write(ByteBuffer.wrap(record(versionEvent(wallTime()))));
                    return new TensorBoardEvents(file);
                } catch (FileAlreadyExistsException e) {
                    // another writer took this name: try the next number
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a TensorBoard event file in " + dir + ": " + describe(e), e);
        }
    }

    /** Where the kernel keeps the host's name on Linux: read without the DNS lookup InetAddress may make. */
    private static final Path KERNEL_HOSTNAME = Path.of("/proc/sys/kernel/hostname");

    /** The machine's name for event file names, from the kernel or the environment. */
    private static String hostName() {
        String kernelName;
        try {
            kernelName = Files.readString(KERNEL_HOSTNAME);
        } catch (IOException | SecurityException e) {
            kernelName = null; // not Linux, or not readable: the name is only part of a file name
        }
        return hostName(kernelName, System.getenv("HOSTNAME"));
    }

    /**
     * The machine's name as TensorFlow's {@code socket.gethostname()} gives it: the kernel's (what gethostname(2)
     * returns), else {@code HOSTNAME} where the kernel's cannot be read, else "localhost"; characters a file name
     * should not hold become '_'.
     */
    static String hostName(String kernelName, String environmentName) {
        String host = kernelName == null || kernelName.isBlank() ? environmentName : kernelName.trim();
        if (host == null || host.isBlank()) {
            host = "localhost";
        }
        return host.trim().replaceAll("[^A-Za-z0-9._-]", "_");
    }

    private static double wallTime() {
        return System.currentTimeMillis() / 1000.0;
    }

    public Path file() {
        return file;
    }

    /** Events to append in one write, all stamped with the time of the {@link #append}. */
    public static final class Events {
        private final List<Value> values = new ArrayList<>();

        private record Value(long step, byte[] summaryValue) {
        }

        /** A point of the scalar series {@code tag}. NaN and infinities are written as they are. */
        public Events scalar(String tag, long step, double value) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            write(bytes, out -> {
                out.writeString(1, tag);
                out.writeFloat(2, (float) value);
            });
            values.add(new Value(step, bytes.toByteArray()));
            return this;
        }

        /**
         * The distribution of {@code values} at {@code step} in the histogram series {@code tag}: their min, max,
         * count, sum and sum of squares and {@link #HISTOGRAM_BUCKETS} equal buckets from min to max (one when they
         * are all equal). Non-finite values are left out (TensorBoard cannot draw them); with no finite value,
         * nothing is added.
         */
        public Events histogram(String tag, long step, float[] values) {
            double min = Double.POSITIVE_INFINITY;
            double max = Double.NEGATIVE_INFINITY;
            long count = 0;
            double sum = 0;
            double sumOfSquares = 0;
            for (float v : values) {
                if (Float.isFinite(v)) {
                    min = Math.min(min, v);
                    max = Math.max(max, v);
                    count++;
                    sum += v;
                    sumOfSquares += (double) v * v;
                }
            }
            if (count == 0) {
                return this;
            }
            int buckets = min == max ? 1 : HISTOGRAM_BUCKETS;
            double width = (max - min) / buckets;
            double[] counts = new double[buckets];
            for (float v : values) {
                if (Float.isFinite(v)) {
                    counts[Math.min(buckets - 1, (int) ((v - min) / width))]++;
                }
            }
            double[] limits = new double[buckets];
            for (int b = 0; b < buckets - 1; b++) {
                limits[b] = min + width * (b + 1);
            }
            limits[buckets - 1] = max; // the last bucket's upper edge, exactly, whatever the rounding above
            double lowest = min;
            double highest = max;
            double n = count;
            double total = sum;
            double squares = sumOfSquares;
            ByteArrayOutputStream histogram = new ByteArrayOutputStream();
            write(histogram, out -> {
                out.writeDouble(1, lowest);
                out.writeDouble(2, highest);
                out.writeDouble(3, n);
                out.writeDouble(4, total);
                out.writeDouble(5, squares);
                writePackedDoubles(out, 6, limits);
                writePackedDoubles(out, 7, counts);
            });
            ByteArrayOutputStream value = new ByteArrayOutputStream();
            write(value, out -> {
                out.writeString(1, tag);
                out.writeByteArray(5, histogram.toByteArray());
            });
            this.values.add(new Value(step, value.toByteArray()));
            return this;
        }

        public boolean isEmpty() {
            return values.isEmpty();
        }

        public int size() {
            return values.size();
        }
    }

    /** Appends {@code events}, one record each, in one write. */
    public void append(Events events) {
        if (events.isEmpty()) {
            return;
        }
        double now = wallTime();
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (Events.Value value : events.values) {
            ByteArrayOutputStream summary = new ByteArrayOutputStream();
            write(summary, out -> out.writeByteArray(1, value.summaryValue()));
            ByteArrayOutputStream event = new ByteArrayOutputStream();
            write(event, out -> {
                out.writeDouble(1, now);
                out.writeInt64(2, value.step());
                out.writeByteArray(5, summary.toByteArray());
            });
            all.writeBytes(record(event.toByteArray()));
        }
        try {
            if (Files.notExists(file)) {
                Files.createDirectories(file.toAbsolutePath().getParent());
                all = prepend(record(versionEvent(now)), all);
            }
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.APPEND)) {
                ByteBuffer bytes = ByteBuffer.wrap(all.toByteArray());
                while (bytes.hasRemaining()) {
                    channel.write(bytes);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write TensorBoard events to " + file + ": " + describe(e), e);
        }
    }

    private static ByteArrayOutputStream prepend(byte[] first, ByteArrayOutputStream rest) {
        ByteArrayOutputStream all = new ByteArrayOutputStream(first.length + rest.size());
        all.writeBytes(first);
        all.writeBytes(rest.toByteArray());
        return all;
    }

    /** An I/O error as its kind and message: a NoSuchFileException's message is only the path. */
    private static String describe(IOException e) {
        return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
    }

    private static byte[] versionEvent(double wallTime) {
        ByteArrayOutputStream event = new ByteArrayOutputStream();
        write(event, out -> {
            out.writeDouble(1, wallTime);
            out.writeString(3, FILE_VERSION);
        });
        return event.toByteArray();
    }

    /** One TFRecord holding {@code data}. */
    static byte[] record(byte[] data) {
        ByteBuffer record = ByteBuffer.allocate(8 + 4 + data.length + 4).order(ByteOrder.LITTLE_ENDIAN);
        record.putLong(data.length);
        record.putInt(maskedCrc32c(record.array(), 0, 8));
        record.put(data);
        record.putInt(maskedCrc32c(data, 0, data.length));
        return record.array();
    }

    /** The TFRecord checksum of {@code length} bytes of {@code data} from {@code offset}. */
    public static int maskedCrc32c(byte[] data, int offset, int length) {
        CRC32C crc = new CRC32C();
        crc.update(data, offset, length);
        int value = (int) crc.getValue();
        return ((value >>> 15) | (value << 17)) + MASK_DELTA;
    }

    @FunctionalInterface
    private interface Fields {
        void writeTo(CodedOutputStream out) throws IOException;
    }

    private static void write(ByteArrayOutputStream bytes, Fields fields) {
        try {
            CodedOutputStream out = CodedOutputStream.newInstance(bytes);
            fields.writeTo(out);
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not fail
        }
    }

    private static void writePackedDoubles(CodedOutputStream out, int field, double[] values) throws IOException {
        out.writeTag(field, com.google.protobuf.WireFormat.WIRETYPE_LENGTH_DELIMITED);
        out.writeUInt32NoTag(values.length * 8);
        for (double v : values) {
            out.writeDoubleNoTag(v);
        }
    }
}
