package dev.gradscope.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class DatasetTest {
    /** 4 rows of 3 features; feature j of row r is 10r + j, except the last is 255. */
    private static Dataset small() {
        byte[] features = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, (byte) 255};
        return new Dataset("small", features, new int[] {2, 0, 1, 2}, 3, 4, 0.5f);
    }

    @Test
    void reportsItsShape() {
        Dataset d = small();
        assertEquals(4, d.rows());
        assertEquals(3, d.featureCount());
        assertEquals(4, d.classCount());
        assertEquals(0.5f, d.featureScale());
        assertEquals("small", d.name());
        assertEquals(21, d.feature(2, 1));
        assertEquals(255, d.feature(3, 2));
        assertEquals(1, d.label(2));
    }

    @Test
    void aValidationSplitHoldsOutTheLastRowsWhereKerasCutsThem() {
        // Keras: split_at = int(4 * (1 - 0.3)) = int(2.8) = 2; rows 2 and 3 are held out
        Dataset.Split split = small().validationSplit(0.3);
        assertEquals(2, split.train().rows());
        assertEquals(2, split.validation().rows());
        assertEquals(11, split.train().feature(1, 1));
        assertEquals(0, split.train().label(1));
        assertEquals(21, split.validation().feature(0, 1));
        assertEquals(2, split.validation().label(1));
        assertEquals(255, split.validation().feature(1, 2));
        assertEquals("small (validation split)", split.validation().name());
        assertEquals(0.5f, split.validation().featureScale());
        assertEquals(3, small().validationSplit(0.25).train().rows(), "int(4 * 0.75) = 3");
        // nothing left on one side, or not a fraction
        for (double bad : new double[] {1e-17, 0.9, 0, 1, -0.5, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> small().validationSplit(bad), "split " + bad);
            assertTrue(e.getMessage().contains("split"), e.getMessage());
        }
    }

    @Test
    void oneHotLabelsHaveOneOnePerRow() {
        float[] expected = {
            0, 0, 1, 0,
            1, 0, 0, 0,
            0, 1, 0, 0,
            0, 0, 1, 0,
        };
        assertArrayEquals(expected, small().oneHotLabels());
    }

    /** Keras's and PyTorch's smoothing, onehot * (1 - ls) + ls / K: 0.1 over 4 classes gives 0.925 and 0.025. */
    @Test
    void smoothedLabelsSpreadTheSmoothingOverEveryClass() {
        float h = 0.925f;
        float o = 0.025f;
        float[] expected = {
            o, o, h, o,
            h, o, o, o,
            o, h, o, o,
            o, o, h, o,
        };
        assertArrayEquals(expected, small().oneHotLabels(0.1));
        assertArrayEquals(small().oneHotLabels(), small().oneHotLabels(0), "0 is the one-hot rows, bit for bit");
        float[] close = small().oneHotLabels(0.999);
        for (int row = 0; row < 4; row++) {
            double sum = 0;
            for (int c = 0; c < 4; c++) {
                sum += close[row * 4 + c];
                if (c != small().label(row)) {
                    assertTrue(close[row * 4 + small().label(row)] > close[row * 4 + c], "row " + row + " class " + c);
                }
            }
            assertEquals(1, sum, 1e-6, "row " + row + " sums to 1");
        }
        for (double bad : new double[] {-0.5, 1, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> small().oneHotLabels(bad));
            assertTrue(e.getMessage().contains(String.valueOf(bad)), e.getMessage());
        }
    }

    /**
     * A smoothing so close to 1 that, over two classes, both targets round to the float 0.5: refused, since the
     * label would be lost (the accuracy takes the targets' arg-max). 1 - 2^-25 is 1 as a float, which the loss's
     * own check refuses first.
     */
    @Test
    void aSmoothingThatWouldLoseTheLabelIsRefused() {
        Dataset twoClasses = new Dataset("two", new byte[2], new int[] {1, 0}, 1, 2, 1f);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> twoClasses.oneHotLabels(1 - 0x1p-25));
        assertTrue(e.getMessage().contains("label would be lost"), e.getMessage());
        float[] justBelow = twoClasses.oneHotLabels(Math.nextDown(1 - 0x1p-25));
        assertTrue(justBelow[1] > justBelow[0] && justBelow[2] > justBelow[3], Arrays.toString(justBelow));
    }

    @Test
    void scaledFeaturesMultiplyByTheScale() {
        float[] scaled = small().scaledFeatures();
        assertEquals(12, scaled.length);
        assertEquals(5f, scaled[3]);
        assertEquals(127.5f, scaled[11]);
    }

    @Test
    void labelCountsCountEachClass() {
        assertArrayEquals(new int[] {1, 1, 2, 0}, small().labelCounts());
    }

    @Test
    void subsetAndTakeCopyRows() {
        Dataset middle = small().subset(1, 3);
        assertEquals(2, middle.rows());
        assertArrayEquals(new byte[] {10, 11, 12, 20, 21, 22}, middle.features());
        assertArrayEquals(new int[] {0, 1}, middle.labels());
        assertEquals(0.5f, middle.featureScale());

        Dataset first = small().take(1);
        assertArrayEquals(new byte[] {0, 1, 2}, first.features());
        assertEquals(0, small().take(0).rows());
        assertEquals(4, small().take(4).rows());
        assertThrows(IndexOutOfBoundsException.class, () -> small().take(5));
        assertThrows(IndexOutOfBoundsException.class, () -> small().subset(3, 2));
        assertThrows(IndexOutOfBoundsException.class, () -> small().subset(-1, 2));
    }

    @Test
    void cannotBeChangedThroughItsArrays() {
        byte[] features = {1, 2};
        int[] labels = {0, 1};
        Dataset d = new Dataset("d", features, labels, 1, 2, 1f);
        features[0] = 99;
        labels[0] = 1;
        d.features()[1] = 99;
        d.labels()[1] = 0;
        assertArrayEquals(new byte[] {1, 2}, d.features());
        assertArrayEquals(new int[] {0, 1}, d.labels());
    }

    @Test
    void rejectsInconsistentInput() {
        IllegalArgumentException sizes = assertThrows(IllegalArgumentException.class,
                () -> new Dataset("bad", new byte[5], new int[2], 3, 2, 1f));
        assertTrue(sizes.getMessage().contains("need 6 feature bytes, got 5"), sizes.getMessage());

        IllegalArgumentException label = assertThrows(IllegalArgumentException.class,
                () -> new Dataset("bad", new byte[2], new int[] {0, 2}, 1, 2, 1f));
        assertTrue(label.getMessage().contains("row 1 is 2, expected 0..1"), label.getMessage());

        assertThrows(IllegalArgumentException.class, () -> new Dataset("bad", new byte[2], new int[2], 1, 2, 0f));
        assertThrows(IndexOutOfBoundsException.class, () -> small().feature(4, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> small().feature(0, 3));
    }
}
