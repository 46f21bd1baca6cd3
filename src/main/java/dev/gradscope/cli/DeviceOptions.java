package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.Mnist;
import java.util.Locale;
import java.util.function.Function;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Where a command runs and which data it reads: the options of every command that trains or evaluates. */
final class DeviceOptions {
    @Option(names = "--device", defaultValue = "auto",
            description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}). auto falls back to the CPU and says why.")
    String device;

    @Option(names = "--tf32", negatable = true,
            description = "Let the GPU's GEMMs round their inputs to TF32 (10-bit mantissa) on tensor cores: faster,"
                    + " less exact; off by default. Ignored, with a note, where there is no TF32 (the CPU).")
    boolean tf32;

    /** {@code --dataset} and {@code --data-dir}: all four files unless the command says otherwise. */
    @Mixin
    DataOptions data;

    /** For the commands that read the whole data set; picocli makes these. */
    DeviceOptions() {
        this(new DataOptions.AllFiles());
    }

    /** With {@code data}'s form of {@code --data-dir} (picocli takes the mixin as it is given). */
    DeviceOptions(DataOptions data) {
        this.data = data;
    }

    /**
     * Checks {@code --device} and {@code --dataset}; an unknown one becomes {@code usage}'s exception, listing the
     * valid ones.
     */
    void validate(Function<String, RuntimeException> usage) {
        if (!Devices.NAMES.contains(device.trim().toLowerCase(Locale.ROOT))) {
            throw usage.apply("unknown device '" + device + "'; valid: " + Devices.CHOICES);
        }
        data.validate(usage);
    }

    /** The four files of {@code --dataset} in {@code --data-dir} (see {@link DataOptions}). */
    Mnist loadData() {
        return data.load();
    }

    /** Only the test split of {@code --dataset} in {@code --data-dir} (see {@link DataOptions#loadTest()}). */
    Dataset loadTestData() {
        return data.loadTest();
    }

    /**
     * The backend for {@code --device}, with TF32 GEMMs when {@code --tf32} asks for them; where they are
     * not available, the selection's note says that {@code --tf32} was ignored and why (after auto's
     * fallback reason, if any), and the run goes on in FP32.
     */
    Devices.Selection openDevice() {
        Devices.Selection selection = Devices.open(device);
        if (!tf32) {
            return selection;
        }
        var backend = selection.backend();
        var unavailable = backend.tf32Unavailable();
        if (unavailable.isEmpty()) {
            try {
                backend.setTf32(true);
            } catch (RuntimeException e) {
                backend.close();
                throw e;
            }
            return selection;
        }
        String note = "--tf32 ignored: " + unavailable.get();
        return new Devices.Selection(backend, selection.fallback() == null ? note : selection.fallback() + "; " + note);
    }
}
