package dev.gradscope.backend;

import dev.gradscope.backend.cpu.CpuBackend;
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
     * @param fallback why {@code auto} did not use the GPU, or null
     */
    public record Selection(Backend backend, String fallback) {
    }

    /** Thrown when {@code --device cuda} cannot run; the message says why. */
    public static final class DeviceUnavailableException extends RuntimeException {
        public DeviceUnavailableException(String message) {
            super(message);
        }
    }

    public static Selection open(String device) {
        switch (device.trim().toLowerCase(Locale.ROOT)) {
            case "cpu":
                return new Selection(new CpuBackend(), null);
            case "cuda":
                throw new DeviceUnavailableException(cudaUnavailableReason());
            case "auto":
                return new Selection(new CpuBackend(), cudaUnavailableReason() + "; using the CPU");
            default:
                throw new IllegalArgumentException("unknown device '" + device + "'; valid: " + CHOICES);
        }
    }

    /** Why the CUDA backend cannot run here. */
    public static String cudaUnavailableReason() {
        return "this build has no CUDA backend yet (the CPU backend is complete; CUDA kernels come next)";
    }
}
