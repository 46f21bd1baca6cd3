package dev.gradscope.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The reference semantics of the non-GEMM ops, on inputs small enough to work out by hand. */
class CpuBackendTest {
    private final CpuBackend cpu = new CpuBackend();

    private Tensor t(float[] values, int... shape) {
        return cpu.fromHost(values, shape);
    }

    @Test
    void columnSumsAndRowVectorAddOnAView() {
        try (Tensor whole = t(new float[] {9, 9, 9, 1, 2, 3, 4, 5, 6}, 3, 3);
             Tensor sums = cpu.allocate(DType.FLOAT32, 3);
             Tensor bias = t(new float[] {10, 20, 30}, 3)) {
            Tensor lastTwoRows = whole.rows(1, 2);
            cpu.columnSums(lastTwoRows, sums);
            assertArrayEquals(new float[] {5, 7, 9}, sums.toFloatArray());
            cpu.addRowVectorAccumulate(lastTwoRows, bias);
            assertArrayEquals(new float[] {9, 9, 9, 11, 22, 33, 14, 25, 36}, whole.toFloatArray(),
                    "the first row, outside the view, is untouched");
        }
    }

    @Test
    void activationParameterSharedOrPerColumn() {
        float[] z = {-1, -2, -4, 1};
        try (Tensor zs = t(z, 2, 2);
             Tensor y = cpu.allocate(DType.FLOAT32, 2, 2);
             Tensor shared = t(new float[] {0.5f}, 1);
             Tensor perColumn = t(new float[] {0.1f, 0.2f}, 2);
             Tensor dy = t(new float[] {1, 1, 1, 1}, 2, 2);
             Tensor dShared = cpu.allocate(DType.FLOAT32, 1);
             Tensor dPerColumn = cpu.allocate(DType.FLOAT32, 2)) {
            cpu.activationForward(ActivationKind.PRELU, zs, shared, y);
            assertArrayEquals(new float[] {-0.5f, -1f, -2f, 1f}, y.toFloatArray());
            cpu.activationForward(ActivationKind.PRELU, zs, perColumn, y);
            assertArrayEquals(new float[] {-0.1f, -0.4f, -0.4f, 1f}, y.toFloatArray(), 1e-7f);
            // d/dalpha of prelu is z where z < 0: shared sums every element, per column sums each column.
            cpu.activationParameterGradient(ActivationKind.PRELU, zs, shared, dy, dShared);
            assertArrayEquals(new float[] {-7f}, dShared.toFloatArray());
            cpu.activationParameterGradient(ActivationKind.PRELU, zs, perColumn, dy, dPerColumn);
            assertArrayEquals(new float[] {-5f, -2f}, dPerColumn.toFloatArray());
        }
    }

    @Test
    void activationParameterErrorsNameTheOpAndShapes() {
        try (Tensor z = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor y = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor wrong = cpu.allocate(DType.FLOAT32, 2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.activationForward(ActivationKind.ELU, z, wrong, y));
            assertTrue(e.getMessage().contains("elu") && e.getMessage().contains("[2]")
                    && e.getMessage().contains("[2, 3]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.activationForward(ActivationKind.LEAKY_RELU, z, null, y));
            assertTrue(e.getMessage().contains("alpha"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.activationForward(ActivationKind.SOFTMAX, z, null, y));
            assertTrue(e.getMessage().contains("softmax"), e.getMessage());
        }
    }

    @Test
    void maxoutPicksTheFirstLargestPieceAndRoutesTheGradientToIt() {
        // One row, two units of three pieces: (1, 5, 5) -> 5 at piece 1 (first of the tie); (-3, -1, -2) -> -1.
        try (Tensor z = t(new float[] {1, 5, 5, -3, -1, -2}, 1, 6);
             Tensor y = cpu.allocate(DType.FLOAT32, 1, 2);
             Tensor winner = cpu.allocate(DType.INT32, 1, 2);
             Tensor dy = t(new float[] {10, 20}, 1, 2);
             Tensor dz = t(new float[] {7, 7, 7, 7, 7, 7}, 1, 6)) {
            cpu.maxoutForward(z, 3, y, winner);
            assertArrayEquals(new float[] {5, -1}, y.toFloatArray());
            assertArrayEquals(new int[] {1, 1}, winner.toIntArray());
            cpu.maxoutBackward(dy, winner, 3, dz);
            assertArrayEquals(new float[] {0, 10, 0, 0, 20, 0}, dz.toFloatArray());
        }
    }

    @Test
    void softmaxRowsSumToOneAndSurviveHugeLogits() {
        try (Tensor z = t(new float[] {0, (float) Math.log(3), 1000, 1000, -1000, 0}, 3, 2);
             Tensor p = cpu.allocate(DType.FLOAT32, 3, 2)) {
            cpu.softmax(z, p);
            assertArrayEquals(new float[] {0.25f, 0.75f, 0.5f, 0.5f, 0f, 1f}, p.toFloatArray(), 1e-7f);
        }
    }

    @Test
    void segmentSumOfSquares() {
        try (Tensor x = t(new float[] {1, 2, 3, 4, 5}, 5);
             Tensor starts = cpu.fromHost(new int[] {0, 2, 2, 5}, 4);
             Tensor out = cpu.allocate(DType.FLOAT32, 3)) {
            cpu.segmentSumOfSquares(x, starts, out);
            assertArrayEquals(new float[] {5, 0, 50}, out.toFloatArray());
        }
    }

    @Test
    void gatherRowsScalesBytesAsUnsignedAndChecksIndices() {
        byte[] pixels = {0, (byte) 255, (byte) 128, 1, 2, 3};
        try (Tensor source = cpu.fromHost(pixels, 3, 2);
             Tensor order = cpu.fromHost(new int[] {2, 0, 1, 7}, 4);
             Tensor out = cpu.allocate(DType.FLOAT32, 2, 2)) {
            cpu.gatherRows(source, order, 1, 0.5f, out);
            assertArrayEquals(new float[] {0f, 127.5f, 64f, 0.5f}, out.toFloatArray());
            cpu.gatherRows(source, order, 0, 1f, out);
            assertArrayEquals(new float[] {2, 3, 0, 255}, out.toFloatArray());
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                    () -> cpu.gatherRows(source, order, 2, 1f, out));
            assertTrue(e.getMessage().contains("index 7"), e.getMessage());
        }
    }

    @Test
    void fillCopyAndHostRoundTrips() {
        try (Tensor a = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor b = cpu.allocate(DType.FLOAT32, 6)) {
            assertArrayEquals(new float[6], a.toFloatArray(), "allocate zero-fills");
            cpu.fill(a.rows(1, 1), 2.5f);
            cpu.copy(a, b);
            assertArrayEquals(new float[] {0, 0, 0, 2.5f, 2.5f, 2.5f}, b.toFloatArray());
            assertThrows(IllegalArgumentException.class, () -> cpu.copyFromHost(new float[5], b));
        }
    }

    @Test
    void gemmShapeErrorNamesEveryShape() {
        try (Tensor a = cpu.allocate(DType.FLOAT32, 2, 3);
             Tensor b = cpu.allocate(DType.FLOAT32, 4, 5);
             Tensor c = cpu.allocate(DType.FLOAT32, 2, 5)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cpu.gemm(false, false, 1f, a, b, 0f, c));
            assertTrue(e.getMessage().contains("[2, 3]") && e.getMessage().contains("[4, 5]")
                    && e.getMessage().contains("[2, 5]"), e.getMessage());
        }
    }

    @Test
    void gemmThroughTheBackendOnViews() {
        // [[1, 2], [3, 4]] x [[5, 6], [7, 8]] = [[19, 22], [43, 50]]; a is the second half of a buffer.
        try (Tensor buffer = t(new float[] {0, 0, 0, 0, 1, 2, 3, 4}, 8);
             Tensor b = t(new float[] {5, 6, 7, 8}, 2, 2);
             Tensor c = t(new float[] {1, 1, 1, 1}, 2, 2)) {
            Tensor a = buffer.view(4, 2, 2);
            cpu.gemm(false, false, 1f, a, b, 0f, c);
            assertArrayEquals(new float[] {19, 22, 43, 50}, c.toFloatArray());
            cpu.gemm(true, false, 1f, a, b, 1f, c); // aᵀ b = [[26, 30], [38, 44]], plus c
            assertArrayEquals(new float[] {45, 52, 81, 94}, c.toFloatArray());
        }
    }
}
