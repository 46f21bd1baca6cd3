package dev.gradscope.data;

import static dev.gradscope.data.IdxTestFiles.gzip;
import static dev.gradscope.data.IdxTestFiles.labels;
import static dev.gradscope.data.IdxTestFiles.mnistImages;
import static dev.gradscope.data.IdxTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MnistTest {
    @TempDir
    Path dir;

    /** A tiny, well-formed MNIST: 5 training and 3 test images; training files gzip, test files plain. */
    private void writeTinyMnist() {
        write(dir.resolve(Mnist.TRAIN_IMAGES + ".gz"), gzip(mnistImages(5)));
        write(dir.resolve(Mnist.TRAIN_LABELS + ".gz"), gzip(labels(3, 1, 4, 1, 5)));
        write(dir.resolve(Mnist.TEST_IMAGES), mnistImages(3));
        write(dir.resolve(Mnist.TEST_LABELS), labels(9, 2, 6));
    }

    private static void assertMentions(InvalidDataException e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), () -> "message lacks \"" + part + "\": " + e.getMessage());
        }
    }

    @Test
    void loadsPlainAndGzipFiles() {
        writeTinyMnist();
        Mnist mnist = Mnist.load(dir);

        assertEquals(5, mnist.train().rows());
        assertEquals(3, mnist.test().rows());
        assertEquals(784, mnist.train().featureCount());
        assertEquals(10, mnist.train().classCount());
        assertEquals(1f / 255f, mnist.train().featureScale());
        assertArrayEquals(new int[] {3, 1, 4, 1, 5}, mnist.train().labels());
        assertArrayEquals(new int[] {9, 2, 6}, mnist.test().labels());
        // Pixel i of image n is (n * 31 + i) mod 256.
        assertEquals((2 * 31 + 100) % 256, mnist.test().feature(2, 100));
        assertEquals((4 * 31 + 783) % 256, mnist.train().feature(4, 783));
    }

    @Test
    void missingFileNamesBothNamesAndTheFetchScript() {
        writeTinyMnist();
        Path labels = dir.resolve(Mnist.TEST_LABELS);
        assertTrue(labels.toFile().delete());
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> Mnist.load(dir));
        assertMentions(e, labels.toString(), labels + ".gz", "not found", "scripts/fetch-mnist.sh");
    }

    @Test
    void missingDirectorySaysSo() {
        Path nowhere = dir.resolve("nowhere");
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> Mnist.load(nowhere));
        assertMentions(e, nowhere.toString(), "does not exist", "scripts/fetch-mnist.sh");
    }

    @Test
    void imageAndLabelCountsMustAgree() {
        writeTinyMnist();
        write(dir.resolve(Mnist.TEST_LABELS), labels(9, 2));
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> Mnist.load(dir));
        assertMentions(e, "counts disagree", dir.resolve(Mnist.TEST_IMAGES) + " holds 3 images",
                dir.resolve(Mnist.TEST_LABELS) + " holds 2 labels", "scripts/fetch-mnist.sh");
    }

    @Test
    void labelsMustBeDigits() {
        writeTinyMnist();
        write(dir.resolve(Mnist.TEST_LABELS), labels(9, 2, 10));
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> Mnist.load(dir));
        assertMentions(e, dir.resolve(Mnist.TEST_LABELS).toString(), "label 2 is 10", "0..9");
    }

    @Test
    void imagesMustBe28By28() {
        writeTinyMnist();
        write(dir.resolve(Mnist.TEST_IMAGES), IdxTestFiles.idx(new int[] {3, 27, 28}, new byte[3 * 27 * 28]));
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> Mnist.load(dir));
        assertMentions(e, dir.resolve(Mnist.TEST_IMAGES).toString(), "27x28", "28x28");
    }

    @Test
    void malformedFileMessageAddsTheFetchScript() {
        writeTinyMnist();
        // Swapped: the label file stored under the image name.
        write(dir.resolve(Mnist.TEST_IMAGES), labels(9, 2, 6));
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> Mnist.load(dir));
        assertMentions(e, dir.resolve(Mnist.TEST_IMAGES).toString(), "0x00000801", "0x00000803",
                "scripts/fetch-mnist.sh");
    }

    @Test
    void missingClasspathResourceNamesIt() {
        InvalidDataException e = assertThrows(InvalidDataException.class, () -> Mnist.loadFromClasspath("/no-such-dir"));
        assertMentions(e, "classpath:/no-such-dir/train-images-idx3-ubyte.gz", "not found");
    }

    @Test
    void committedSubsetIsTheStartOfRealMnist() {
        Mnist mnist = MnistSubset.load();
        Dataset train = mnist.train();
        Dataset test = mnist.test();

        assertEquals(MnistSubset.TRAIN_ROWS, train.rows());
        assertEquals(MnistSubset.TEST_ROWS, test.rows());
        assertEquals(784, train.featureCount());
        assertEquals(784, test.featureCount());
        assertEquals(1f / 255f, train.featureScale());

        // The first labels of the real MNIST files.
        assertArrayEquals(new int[] {5, 0, 4, 1, 9, 2, 1, 3, 1, 4}, train.take(10).labels());
        assertArrayEquals(new int[] {7, 2, 1, 0, 4, 1, 4, 9, 5, 9}, test.take(10).labels());

        for (Dataset split : new Dataset[] {train, test}) {
            int min = 255;
            int max = 0;
            for (byte b : split.features()) {
                min = Math.min(min, b & 0xFF);
                max = Math.max(max, b & 0xFF);
            }
            assertEquals(0, min, split.name() + " background pixels are 0");
            assertEquals(255, max, split.name() + " ink reaches 255");

            int[] counts = split.labelCounts();
            for (int digit = 0; digit < 10; digit++) {
                // Each digit is about a tenth of MNIST; a 1000-image prefix holds at least 50 of each.
                assertTrue(counts[digit] >= split.rows() / 20,
                        split.name() + " has only " + counts[digit] + " images of digit " + digit);
            }
        }
    }

    @Test
    void fullMnistWhenFetched() {
        Path fetched = Path.of(DatasetKind.MNIST.defaultDir());
        assumeTrue(Files.isDirectory(fetched), "full MNIST not fetched: run scripts/fetch-mnist.sh to test against it");
        Mnist mnist = Mnist.load(fetched);
        assertEquals(60_000, mnist.train().rows());
        assertEquals(10_000, mnist.test().rows());
        // The published class counts of MNIST.
        assertArrayEquals(new int[] {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949},
                mnist.train().labelCounts());
        assertArrayEquals(new int[] {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009},
                mnist.test().labelCounts());
        // The committed subset is the start of these files.
        Mnist subset = MnistSubset.load();
        assertArrayEquals(mnist.train().take(MnistSubset.TRAIN_ROWS).features(), subset.train().features());
        assertArrayEquals(mnist.test().take(MnistSubset.TEST_ROWS).labels(), subset.test().labels());
    }
}
