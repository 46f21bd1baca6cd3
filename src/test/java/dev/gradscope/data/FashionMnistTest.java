package dev.gradscope.data;

import static dev.gradscope.data.IdxTestFiles.labels;
import static dev.gradscope.data.IdxTestFiles.mnistImages;
import static dev.gradscope.data.IdxTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The table of data sets ({@link DatasetKind}) and Fashion-MNIST read through {@link Mnist}. */
class FashionMnistTest {
    @TempDir
    Path dir;

    @Test
    void idsNameTheKindsInAnyCaseAndUnknownOnesListTheValidIds() {
        assertSame(DatasetKind.MNIST, DatasetKind.fromId("mnist"));
        assertSame(DatasetKind.FASHION_MNIST, DatasetKind.fromId("fashion_mnist"));
        assertSame(DatasetKind.FASHION_MNIST, DatasetKind.fromId(" Fashion-MNIST "));
        assertSame(DatasetKind.MNIST, DatasetKind.DEFAULT);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DatasetKind.fromId("cifar10"));
        assertEquals("unknown dataset 'cifar10'; valid: mnist, fashion_mnist", e.getMessage());
    }

    @Test
    void everyKindNamesItsTenClassesItsFolderAndAFetchScriptThatExists() {
        assertEquals(List.of("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"), DatasetKind.MNIST.classNames());
        // Zalando's table of labels (the dataset's README).
        assertEquals(List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                "Bag", "Ankle boot"), DatasetKind.FASHION_MNIST.classNames());
        for (DatasetKind kind : DatasetKind.values()) {
            assertEquals(Mnist.CLASS_COUNT, kind.classNames().size(), kind.id());
            assertTrue(kind.defaultDir().startsWith("data/"), kind.defaultDir());
            assertTrue(Files.isExecutable(Path.of(kind.fetchScript())), kind.fetchScript() + " is not executable");
        }
    }

    @Test
    void committedSubsetIsTheStartOfRealFashionMnist() {
        Mnist fashion = MnistSubset.loadFashion();
        assertSame(DatasetKind.FASHION_MNIST, fashion.kind());
        Dataset train = fashion.train();
        Dataset test = fashion.test();
        assertEquals("fashion_mnist-train", train.name());
        assertEquals("fashion_mnist-test", test.name());
        assertEquals(MnistSubset.FASHION_TRAIN_ROWS, train.rows());
        assertEquals(MnistSubset.FASHION_TEST_ROWS, test.rows());
        assertEquals(784, train.featureCount());
        assertEquals(10, train.classCount());
        assertEquals(1f / 255f, train.featureScale());

        // The first labels of the real files: the first training image is an ankle boot, the first test
        // images an ankle boot, a pullover and two trousers.
        assertArrayEquals(new int[] {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, train.take(10).labels());
        assertArrayEquals(new int[] {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, test.take(10).labels());
        for (Dataset split : new Dataset[] {train, test}) {
            int[] counts = split.labelCounts();
            for (int c = 0; c < 10; c++) {
                // Fashion-MNIST has exactly a tenth of each class; a prefix of 500 holds well over 25 of each.
                assertTrue(counts[c] >= split.rows() / 20, split.name() + " has only " + counts[c] + " images of "
                        + DatasetKind.FASHION_MNIST.classNames().get(c));
            }
        }
        // Photos, not pen strokes: far more of a clothes image is ink than of a digit.
        assertTrue(inkFraction(train) > 1.5 * inkFraction(MnistSubset.load().train()),
                "Fashion-MNIST ink " + inkFraction(train) + ", MNIST " + inkFraction(MnistSubset.load().train()));
    }

    private static double inkFraction(Dataset split) {
        byte[] pixels = split.features();
        long ink = 0;
        for (byte b : pixels) {
            ink += (b & 0xFF) > 0 ? 1 : 0;
        }
        return (double) ink / pixels.length;
    }

    @Test
    void messagesNameFashionMnistAndItsFetchScript() {
        InvalidDataException missing = assertThrows(InvalidDataException.class,
                () -> Mnist.load(DatasetKind.FASHION_MNIST, dir.resolve("nowhere")));
        assertTrue(missing.getMessage().startsWith("Fashion-MNIST file not found"), missing.getMessage());
        assertTrue(missing.getMessage().contains("Run scripts/fetch-fashion-mnist.sh " + dir.resolve("nowhere")
                + " to download and verify Fashion-MNIST."), missing.getMessage());

        write(dir.resolve(Mnist.TRAIN_IMAGES), mnistImages(2));
        write(dir.resolve(Mnist.TRAIN_LABELS), labels(3, 1));
        write(dir.resolve(Mnist.TEST_IMAGES), mnistImages(1));
        write(dir.resolve(Mnist.TEST_LABELS), labels(10));
        InvalidDataException label = assertThrows(InvalidDataException.class,
                () -> Mnist.load(DatasetKind.FASHION_MNIST, dir));
        assertTrue(label.getMessage().contains("label 0 is 10, Fashion-MNIST labels are 0..9")
                && label.getMessage().contains("scripts/fetch-fashion-mnist.sh"), label.getMessage());
    }

    @Test
    void fullFashionMnistWhenFetched() {
        Path fetched = Path.of(DatasetKind.FASHION_MNIST.defaultDir());
        assumeTrue(Files.isDirectory(fetched),
                "full Fashion-MNIST not fetched: run scripts/fetch-fashion-mnist.sh to test against it");
        Mnist fashion = Mnist.load(DatasetKind.FASHION_MNIST, fetched);
        assertEquals(60_000, fashion.train().rows());
        assertEquals(10_000, fashion.test().rows());
        // Balanced by construction: 6000 training and 1000 test images of each class.
        int[] sixThousand = new int[10];
        Arrays.fill(sixThousand, 6000);
        int[] thousand = new int[10];
        Arrays.fill(thousand, 1000);
        assertArrayEquals(sixThousand, fashion.train().labelCounts());
        assertArrayEquals(thousand, fashion.test().labelCounts());
        Mnist subset = MnistSubset.loadFashion();
        assertArrayEquals(fashion.train().take(MnistSubset.FASHION_TRAIN_ROWS).features(), subset.train().features());
        assertArrayEquals(fashion.test().take(MnistSubset.FASHION_TEST_ROWS).features(), subset.test().features());
        assertArrayEquals(fashion.test().take(MnistSubset.FASHION_TEST_ROWS).labels(), subset.test().labels());
    }
}
