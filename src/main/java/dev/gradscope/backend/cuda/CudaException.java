package dev.gradscope.backend.cuda;

import dev.gradscope.tensor.Shapes;
import dev.gradscope.tensor.Tensor;
import java.util.StringJoiner;

/**
 * A CUDA driver or cuBLAS call failed. The message names the GradScope op that made the call, the
 * shapes of the tensors it was given, and the CUDA error by name and by the driver's description, e.g.
 * {@code relu_forward on [256, 784] FLOAT32, [256, 784] FLOAT32: CUDA_ERROR_INVALID_VALUE (invalid argument)}.
 *
 * <p>Kernels run asynchronously, so an error in a kernel's execution (an illegal address, say) is
 * reported by the next call that waits for the stream ({@code toHost*}, {@code synchronize}); the
 * message then says which op was queued last. Run with {@code -Dgradscope.cuda.syncEachOp=true} to
 * wait after every op, so that the failing op reports its own error.
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String op;
    private final String errorName;

    /**
     * @param op          the GradScope op or setup step that failed ({@code "gemm"}, {@code "relu_forward"})
     * @param operands    the tensors the op was given, described by shape in the message
     * @param errorName   the CUDA or cuBLAS error name ({@code CUDA_ERROR_OUT_OF_MEMORY})
     * @param description the driver's or cuBLAS's description of the error, or null
     * @param cause       the JCuda exception, or null
     */
    public CudaException(String op, String operands, String errorName, String description, Throwable cause) {
        super(op + (operands == null || operands.isEmpty() ? "" : " on " + operands) + ": " + errorName
                + (description == null || description.isEmpty() ? "" : " (" + description + ")"), cause);
        this.op = op;
        this.errorName = errorName;
    }

    /** The op or setup step that failed. */
    public String op() {
        return op;
    }

    /** The CUDA or cuBLAS error name, e.g. {@code CUDA_ERROR_ILLEGAL_ADDRESS}. */
    public String errorName() {
        return errorName;
    }

    /** {@code "[256, 784] FLOAT32, [256, 784] FLOAT32"}: the operands of an op, for messages. */
    static String describe(Tensor... tensors) {
        StringJoiner j = new StringJoiner(", ");
        for (Tensor t : tensors) {
            j.add(t == null ? "null" : Shapes.describe(t.shape()) + " " + t.dtype());
        }
        return j.toString();
    }
}
