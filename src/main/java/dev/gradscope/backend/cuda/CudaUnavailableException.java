package dev.gradscope.backend.cuda;

/**
 * The CUDA backend cannot run on this machine or with this build: no NVIDIA driver, no device, no
 * kernels in the jar, no cuBLAS, or a setup step that failed. The message is one line that says why,
 * fit to print after "using the CPU because".
 */
public final class CudaUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public CudaUnavailableException(String reason) {
        super(reason);
    }

    public CudaUnavailableException(String reason, Throwable cause) {
        super(reason, cause);
    }
}
