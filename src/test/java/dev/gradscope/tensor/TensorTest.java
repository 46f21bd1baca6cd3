package dev.gradscope.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

class TensorTest {
    private final CpuBackend cpu = new CpuBackend();

    @Test
    void viewsShareStorageAndKnowTheirShape() {
        try (Tensor t = cpu.fromHost(new float[] {0, 1, 2, 3, 4, 5}, 3, 2)) {
            assertEquals(3, t.rowCount());
            assertEquals(2, t.columnCount());
            Tensor rows = t.rows(1, 2);
            assertArrayEquals(new int[] {2, 2}, rows.shape());
            assertArrayEquals(new float[] {2, 3, 4, 5}, rows.toFloatArray());
            Tensor flat = t.reshape(6);
            cpu.fill(flat.view(5, 1), 9f);
            assertEquals(9f, t.toFloatArray()[5]);
            assertEquals(9f, t.view(5, 1).item());
        }
    }

    @Test
    void outOfRangeViewsAndBadReshapesNameTheShapes() {
        try (Tensor t = cpu.allocate(DType.FLOAT32, 3, 2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.rows(2, 2));
            assertTrue(e.getMessage().contains("[3, 2]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> t.reshape(4, 2));
            assertTrue(e.getMessage().contains("[3, 2]") && e.getMessage().contains("[4, 2]"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> t.view(4, 3));
            assertThrows(IllegalStateException.class, t::item);
        }
    }

    @Test
    void activationKindsLookUpByIdAndListTheValidOnes() {
        assertEquals(ActivationKind.LEAKY_RELU, ActivationKind.fromId("Leaky-ReLU"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ActivationKind.fromId("sigmod"));
        assertTrue(e.getMessage().contains("sigmod") && e.getMessage().contains("sigmoid"), e.getMessage());
    }
}
