package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The gradscope.cuda.reductionChunk property: the default, a chosen chunk, and what is refused. */
class ReductionChunkTest {
    @Test
    void theDefaultOrAMultipleOf1024() {
        assertEquals(CudaBackend.REDUCTION_CHUNK, CudaBackend.reductionChunk(null));
        assertEquals(4096, CudaBackend.reductionChunk("4096"));
        assertEquals(1024, CudaBackend.reductionChunk(" 1024 "));
    }

    @Test
    void anythingElseIsRefusedByName() {
        for (String bad : new String[] {"", "abc", "0", "-1024", "1000", "512", "99999999999"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CudaBackend.reductionChunk(bad), bad);
            assertTrue(e.getMessage().startsWith("gradscope.cuda.reductionChunk: ") && e.getMessage().contains(
                    "'" + bad + "'"), e.getMessage());
        }
    }
}
