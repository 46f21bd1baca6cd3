package dev.gradscope.backend;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.backend.cuda.CudaUnavailableException;
import dev.gradscope.tensor.Backend;
import java.util.List;
import java.util.Locale;

/**
 * Chooses the backend for {@code --device auto|cpu|cuda}. {@code auto} takes the GPU when one works and
 * otherwise says in one line why it fell back to the CPU; {@code cuda} fails when it cannot run.
 */
public final class Devices {
    /** The valid {@code --device} values. */
    public static final List<String> NAMES = List.of("auto", "cpu", "cuda");

    /** {@link #NAMES} for messages. */
    public static final String CHOICES = String.join(", ", NAMES);

    private Devices() {
    }

    /**
     * The backend and, when {@code auto} fell back, the one-line reason (null otherwise).
     *
     * @param backend  the opened backend; the caller closes it
     * @param fallback why {@code auto} did not use the GPU, or what else was asked for and not done (a
     *                 setting the backend lacks), in one line to show the user; null when nothing was
     */
    public record Selection(Backend backend, String fallback) {
    }

    /** Thrown when {@code --device cuda} cannot run; the message says why. */
    public static final class DeviceUnavailableException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public DeviceUnavailableException(String message) {
            super(message);
        }

        public DeviceUnavailableException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * Opens the backend for a {@code --device} value.
     *
     * @throws DeviceUnavailableException for {@code cuda} when the GPU cannot be used
     * @throws IllegalArgumentException   for a value not in {@link #NAMES}
     */
    public static Selection open(String device) {
        switch (device.trim().toLowerCase(Locale.ROOT)) {
            case "cpu":
                return new Selection(new CpuBackend(), null);
            case "cuda":
                try {
                    return new Selection(new CudaBackend(), null);
                } catch (CudaUnavailableException e) {
                    throw new DeviceUnavailableException("--device cuda: " + e.getMessage(), e);
                }
            case "auto":
                try {
                    return new Selection(new CudaBackend(), null);
                } catch (CudaUnavailableException e) {
                    // The backend was never opened, so nothing is left to close.
                    return new Selection(new CpuBackend(), e.getMessage() + "; using the CPU");
                }
            default:
                throw new IllegalArgumentException("unknown device '" + device + "'; valid: " + CHOICES);
        }
    }

    /**
     * Why the CUDA backend cannot run here, in one line; null when nothing stands in its way (opening
     * it may still fail at a later step, which {@link #open} reports).
     */
    public static String cudaUnavailableReason() {
        return CudaBackend.unavailableReason().orElse(null);
    }
}
