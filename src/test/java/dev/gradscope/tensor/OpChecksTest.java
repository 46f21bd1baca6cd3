package dev.gradscope.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.gradscope.backend.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

/**
 * What the shared checks return. Their messages are tested through the ops that make them: CpuBackendTest
 * for the reference, CudaBackendTest for the same messages on the GPU.
 */
class OpChecksTest {
    private final CpuBackend cpu = new CpuBackend();

    @Test
    void gemmResolvesEveryTranspose() {
        // c[2, 5] = op(a)[2, 3] op(b)[3, 5], with a and b stored either way round.
        Tensor c = cpu.allocate(DType.FLOAT32, 2, 5);
        Tensor a = cpu.allocate(DType.FLOAT32, 2, 3);
        Tensor aT = cpu.allocate(DType.FLOAT32, 3, 2);
        Tensor b = cpu.allocate(DType.FLOAT32, 3, 5);
        Tensor bT = cpu.allocate(DType.FLOAT32, 5, 3);
        OpChecks.GemmShape expected = new OpChecks.GemmShape(2, 5, 3);
        assertEquals(expected, OpChecks.gemm(false, false, a, b, c));
        assertEquals(expected, OpChecks.gemm(true, false, aT, b, c));
        assertEquals(expected, OpChecks.gemm(false, true, a, bT, c));
        assertEquals(expected, OpChecks.gemm(true, true, aT, bT, c));
        assertThrows(IllegalArgumentException.class, () -> OpChecks.gemm(true, false, a, b, c));
    }

    @Test
    void maxoutCountsUnits() {
        Tensor z = cpu.allocate(DType.FLOAT32, 4, 6);
        assertEquals(2, OpChecks.maxoutUnits("maxoutForward", z, 3, cpu.allocate(DType.FLOAT32, 4, 2),
                cpu.allocate(DType.INT32, 4, 2)));
        assertEquals(6, OpChecks.maxoutUnits("maxoutForward", z, 1, cpu.allocate(DType.FLOAT32, 4, 6),
                cpu.allocate(DType.INT32, 4, 6)));
    }

    @Test
    void activationParameterCountIsNoneSharedOrOnePerColumn() {
        Tensor z = cpu.allocate(DType.FLOAT32, 4, 3);
        assertEquals(0, OpChecks.activationParameterCount("op", ActivationKind.RELU, null, z));
        assertEquals(1, OpChecks.activationParameterCount("op", ActivationKind.PRELU,
                cpu.allocate(DType.FLOAT32, 1), z));
        assertEquals(3, OpChecks.activationParameterCount("op", ActivationKind.PRELU,
                cpu.allocate(DType.FLOAT32, 3), z));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OpChecks.activationParameterCount("op", ActivationKind.PRELU, null, z));
        assertEquals("op: prelu needs its alpha", e.getMessage());
    }
}
