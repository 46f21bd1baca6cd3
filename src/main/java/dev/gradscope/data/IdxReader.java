package dev.gradscope.data;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;

/**
 * Reads IDX files of unsigned bytes (the format of MNIST and Fashion-MNIST), plain or gzip.
 *
 * <p>The format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number {@code 0x0000TTDD}
 * where {@code TT} is the element type ({@code 0x08}: unsigned byte, the only type read here) and
 * {@code DD} the number of dimensions; then each dimension as a big-endian 32-bit integer; then the
 * elements, row-major. Images are {@code 0x00000803} ({@code [count, rows, columns]}), labels
 * {@code 0x00000801} ({@code [count]}).
 *
 * <p>Gzip is recognised by its magic bytes {@code 1f 8b}, not by the file name, so a renamed file
 * still reads. Every defect (missing or empty file, wrong magic, short header or data, bytes after
 * the data, corrupt gzip) is an {@link InvalidDataException} naming the file and the numbers.
 */
public final class IdxReader {
    /** The IDX type code of unsigned bytes. */
    public static final int UNSIGNED_BYTE_TYPE = 0x08;

    private static final int MAGIC_SIZE = 4;
    private static final int DIMENSION_SIZE = 4;

    private IdxReader() {
    }

    /** The magic number of an unsigned-byte IDX file with {@code dimensionCount} dimensions. */
    public static int magicFor(int dimensionCount) {
        return (UNSIGNED_BYTE_TYPE << 8) | dimensionCount;
    }

    /**
     * Reads the IDX file at {@code path} (plain or gzip) that must hold unsigned bytes in
     * {@code expectedDimensionCount} dimensions (3 for images, 1 for labels).
     *
     * @throws InvalidDataException if the file is missing, unreadable or malformed
     */
    public static IdxArray read(Path path, int expectedDimensionCount) {
        String source = path.toString();
        byte[] fileBytes;
        try {
            fileBytes = Files.readAllBytes(path);
        } catch (NoSuchFileException e) {
            throw new InvalidDataException(source + ": file not found", e);
        } catch (IOException e) {
            throw new InvalidDataException(source + ": cannot read: " + e, e);
        }
        return parse(fileBytes, source, expectedDimensionCount);
    }

    /**
     * Reads a whole IDX stream (plain or gzip), such as a classpath resource, and closes it.
     * {@code source} names it in messages.
     *
     * @throws InvalidDataException if the stream cannot be read or is malformed
     */
    public static IdxArray read(InputStream in, String source, int expectedDimensionCount) {
        byte[] fileBytes;
        try (in) {
            fileBytes = in.readAllBytes();
        } catch (IOException e) {
            throw new InvalidDataException(source + ": cannot read: " + e, e);
        }
        return parse(fileBytes, source, expectedDimensionCount);
    }

    /**
     * Parses the bytes of a whole IDX file (plain or gzip) that came from {@code source}.
     *
     * @throws InvalidDataException if the bytes are not a well-formed unsigned-byte IDX file with
     *     {@code expectedDimensionCount} dimensions
     */
    public static IdxArray parse(byte[] fileBytes, String source, int expectedDimensionCount) {
        if (expectedDimensionCount < 1 || expectedDimensionCount > 255) {
            throw new IllegalArgumentException("expectedDimensionCount must be in 1..255, got "
                    + expectedDimensionCount);
        }
        if (fileBytes.length == 0) {
            throw new InvalidDataException(source + ": file is empty (0 bytes)");
        }
        byte[] bytes = isGzip(fileBytes) ? gunzip(fileBytes, source) : fileBytes;
        String what = isGzip(fileBytes) ? "decompressed data" : "file";
        if (bytes.length == 0) {
            throw new InvalidDataException(source + ": " + what + " is empty (0 bytes)");
        }

        int headerSize = MAGIC_SIZE + DIMENSION_SIZE * expectedDimensionCount;
        if (bytes.length < MAGIC_SIZE) {
            throw new InvalidDataException(String.format("%s: truncated: %s has %d bytes, the IDX magic number alone needs %d",
                    source, what, bytes.length, MAGIC_SIZE));
        }
        int magic = bigEndianInt(bytes, 0);
        int expectedMagic = magicFor(expectedDimensionCount);
        if (magic != expectedMagic) {
            throw new InvalidDataException(String.format("%s: wrong magic number 0x%08X, expected 0x%08X"
                    + " (unsigned bytes, %d dimensions)%s",
                    source, magic, expectedMagic, expectedDimensionCount, describeMagic(magic)));
        }
        if (bytes.length < headerSize) {
            throw new InvalidDataException(String.format("%s: truncated header: %s has %d bytes, a %d-dimensional"
                    + " IDX header needs %d", source, what, bytes.length, expectedDimensionCount, headerSize));
        }

        int[] dimensions = new int[expectedDimensionCount];
        long dataSize = 1;
        for (int i = 0; i < expectedDimensionCount; i++) {
            dimensions[i] = bigEndianInt(bytes, MAGIC_SIZE + DIMENSION_SIZE * i);
            if (dimensions[i] < 0) {
                // A size this large is a corrupt header, not a real data set.
                throw new InvalidDataException(String.format("%s: dimension %d is %d (0x%08X as unsigned), too large",
                        source, i, dimensions[i], dimensions[i]));
            }
            dataSize *= dimensions[i];
            if (dataSize > Integer.MAX_VALUE - headerSize) {
                throw new InvalidDataException(source + ": dimensions " + Arrays.toString(
                        Arrays.copyOf(dimensions, i + 1)) + " describe more than 2^31 bytes, which a Java array cannot hold");
            }
        }

        long found = bytes.length - (long) headerSize;
        if (found < dataSize) {
            throw new InvalidDataException(String.format("%s: truncated: dimensions %s need %d data bytes after the"
                    + " %d-byte header, found %d", source, Arrays.toString(dimensions), dataSize, headerSize, found));
        }
        if (found > dataSize) {
            throw new InvalidDataException(String.format("%s: %d trailing bytes after the %d data bytes that dimensions"
                    + " %s describe", source, found - dataSize, dataSize, Arrays.toString(dimensions)));
        }
        return new IdxArray(source, dimensions, Arrays.copyOfRange(bytes, headerSize, bytes.length));
    }

    /** Gzip streams start with the bytes {@code 1f 8b} (RFC 1952); IDX files start with {@code 00 00}. */
    static boolean isGzip(byte[] bytes) {
        return bytes.length >= 2 && (bytes[0] & 0xFF) == 0x1F && (bytes[1] & 0xFF) == 0x8B;
    }

    private static byte[] gunzip(byte[] compressed, String source) {
        try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(compressed))) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new InvalidDataException(source + ": starts like gzip (1f 8b) but does not decompress: " + e.getMessage()
                    + " (a truncated or corrupt download?)", e);
        }
    }

    /** Says what a wrong magic number looks like, since a swapped file or an HTML error page is the usual cause. */
    private static String describeMagic(int magic) {
        int type = (magic >>> 8) & 0xFF;
        int dimensionCount = magic & 0xFF;
        if ((magic >>> 16) == 0 && type == UNSIGNED_BYTE_TYPE) {
            return "; the file is a " + dimensionCount + "-D unsigned-byte IDX file"
                    + " (images are 3-D, labels 1-D: were two files swapped?)";
        }
        if ((magic >>> 16) == 0) {
            return String.format("; the file is an IDX file of element type 0x%02X, only 0x%02X (unsigned byte) is supported",
                    type, UNSIGNED_BYTE_TYPE);
        }
        return "; the file is not an IDX file";
    }

    private static int bigEndianInt(byte[] bytes, int offset) {
        return ((bytes[offset] & 0xFF) << 24)
                | ((bytes[offset + 1] & 0xFF) << 16)
                | ((bytes[offset + 2] & 0xFF) << 8)
                | (bytes[offset + 3] & 0xFF);
    }
}
