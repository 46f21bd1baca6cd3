package dev.gradscope.data;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;

/** Builds IDX files for tests, independently of {@link IdxReader}: header by hand, big-endian. */
final class IdxTestFiles {
    private IdxTestFiles() {
    }

    /** The bytes of an unsigned-byte IDX file with the given dimensions and data. */
    static byte[] idx(int[] dimensions, byte[] data) {
        return idxWithMagic(0x0800 | dimensions.length, dimensions, data);
    }

    /** Like {@link #idx} but with any magic number, to make bad files. */
    static byte[] idxWithMagic(int magic, int[] dimensions, byte[] data) {
        ByteBuffer buffer = ByteBuffer.allocate(4 + 4 * dimensions.length + data.length); // big-endian by default
        buffer.putInt(magic);
        for (int d : dimensions) {
            buffer.putInt(d);
        }
        buffer.put(data);
        return buffer.array();
    }

    static byte[] gzip(byte[] plain) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
            gz.write(plain);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** {@code count} images of 28x28 with pixel {@code i} of image {@code n} = (n * 31 + i) mod 256. */
    static byte[] mnistImages(int count) {
        byte[] pixels = new byte[count * Mnist.PIXELS];
        for (int n = 0; n < count; n++) {
            for (int i = 0; i < Mnist.PIXELS; i++) {
                pixels[n * Mnist.PIXELS + i] = (byte) ((n * 31 + i) % 256);
            }
        }
        return idx(new int[] {count, 28, 28}, pixels);
    }

    /** A label file holding {@code labels}. */
    static byte[] labels(int... labels) {
        byte[] bytes = new byte[labels.length];
        for (int i = 0; i < labels.length; i++) {
            bytes[i] = (byte) labels[i];
        }
        return idx(new int[] {labels.length}, bytes);
    }

    static Path write(Path file, byte[] bytes) {
        try {
            return Files.write(file, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
