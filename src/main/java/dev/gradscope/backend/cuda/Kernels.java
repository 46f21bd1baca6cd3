package dev.gradscope.backend.cuda;

import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import dev.gradscope.tensor.ActivationKind;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;

/**
 * The PTX modules of {@code src/main/cuda} and every kernel function in them, loaded once per backend
 * and released by {@link #close()}.
 *
 * <p>The build compiles each {@code src/main/cuda/FAMILY.cu} to the resource {@code /ptx/FAMILY.ptx}
 * (when nvcc is there). Loading a module JIT-compiles its PTX for the GPU at hand. Every function of
 * the kernel ABI ({@code cuda-abi.md}) is looked up here, up front, in whichever module holds it, so a
 * kernel missing from the build fails when the backend opens, with the whole list of missing names,
 * and never in the middle of a training run. The activation kernels' names come from the table of
 * kinds, {@code kind.id() + "_forward"} and so on: adding a kind to {@link ActivationKind} adds its
 * kernels here without another list.
 */
final class Kernels implements AutoCloseable {
    /** The {@code .cu} files, one per op family; each becomes {@code /ptx/FAMILY.ptx}. */
    static final List<String> FAMILIES = List.of("activations", "batch_norm", "dropout", "loss", "optim", "reduce",
            "data");

    /** The start of the reason given when the PTX is not in the jar. */
    static final String NOT_BUILT = "kernels were not built (no nvcc at build time)";

    private final List<CUmodule> modules = new ArrayList<>();
    private final Map<ActivationKind, CUfunction> forward = new EnumMap<>(ActivationKind.class);
    private final Map<ActivationKind, CUfunction> backward = new EnumMap<>(ActivationKind.class);
    private final Map<ActivationKind, CUfunction> parameterGradient = new EnumMap<>(ActivationKind.class);
    private final Map<ActivationKind, CUfunction> biasForward = new EnumMap<>(ActivationKind.class);
    private final Map<ActivationKind, CUfunction> biasBackward = new EnumMap<>(ActivationKind.class);
    private final Map<String, CUfunction> byName = new LinkedHashMap<>();

    final CUfunction maxoutForward;
    final CUfunction maxoutBackward;
    final CUfunction softmaxRows;
    final CUfunction dropoutForward;
    final CUfunction batchNormTrainingForward;
    final CUfunction batchNormTrainingStatistics;
    final CUfunction batchNormTrainingNormalize;
    final CUfunction batchNormInferenceForward;
    final CUfunction batchNormBackward;
    final CUfunction batchNormBackwardSums;
    final CUfunction batchNormBackwardDx;
    final CUfunction dropoutBackward;
    final CUfunction softmaxCrossEntropyRows;
    final CUfunction softmaxMseRows;
    final CUfunction adamUpdate;
    final CUfunction sgdUpdate;
    final CUfunction adamUpdateMeasured;
    final CUfunction sgdUpdateMeasured;
    final CUfunction rmspropUpdate;
    final CUfunction rmspropUpdateMeasured;
    final CUfunction columnSums;
    final CUfunction addRowVector;
    final CUfunction segmentSumOfSquares;
    final CUfunction clipByValue;
    final CUfunction clipByGlobalNorm;
    final CUfunction fill;
    final CUfunction gatherRowsU8;
    final CUfunction gatherRowsF32;
    final CUfunction gatherRowsU8Counter;
    final CUfunction gatherRowsF32Counter;
    final CUfunction gatherBatchCounter;
    final CUfunction copyToRow;
    final CUfunction advanceCounters;
    final CUfunction gatherNextBatch;
    final CUfunction adamUpdateCounter;
    final CUfunction adamUpdateMeasuredCounter;
    final CUfunction nadamUpdateCounter;
    final CUfunction nadamUpdateMeasuredCounter;
    final CUfunction adamaxUpdateCounter;
    final CUfunction adamaxUpdateMeasuredCounter;
    final CUfunction adagradUpdate;
    final CUfunction adagradUpdateMeasured;

    /** Loads every module and finds every function; the backend's context must be current. */
    Kernels() {
        List<String> missingResources = missingResources();
        if (!missingResources.isEmpty()) {
            throw new CudaUnavailableException(NOT_BUILT + ": " + String.join(", ", missingResources)
                    + " not in the jar");
        }
        try {
            for (String family : FAMILIES) {
                CUmodule module = new CUmodule();
                try {
                    CudaErrors.checkDriver(cuModuleLoadData(module, ptx(family)));
                } catch (jcuda.CudaException e) {
                    throw CudaErrors.wrap("loading the kernels of " + resource(family), "", e);
                }
                modules.add(module);
            }
            List<String> missing = new ArrayList<>();
            for (ActivationKind kind : ActivationKind.values()) {
                if (!kind.isElementWise()) {
                    continue;
                }
                forward.put(kind, find(kind.id() + "_forward", missing));
                backward.put(kind, find(kind.id() + "_backward", missing));
                biasForward.put(kind, find(kind.id() + "_bias_forward", missing));
                biasBackward.put(kind, find(kind.id() + "_bias_backward", missing));
                if (kind.hasParameter()) {
                    parameterGradient.put(kind, find(kind.id() + "_parameter_gradient", missing));
                }
            }
            maxoutForward = find("maxout_forward", missing);
            maxoutBackward = find("maxout_backward", missing);
            softmaxRows = find("softmax_rows", missing);
            dropoutForward = find("dropout_forward", missing);
            batchNormTrainingForward = find("batch_norm_training_forward", missing);
            batchNormTrainingStatistics = find("batch_norm_training_statistics", missing);
            batchNormTrainingNormalize = find("batch_norm_training_normalize", missing);
            batchNormInferenceForward = find("batch_norm_inference_forward", missing);
            batchNormBackward = find("batch_norm_backward", missing);
            batchNormBackwardSums = find("batch_norm_backward_sums", missing);
            batchNormBackwardDx = find("batch_norm_backward_dx", missing);
            dropoutBackward = find("dropout_backward", missing);
            softmaxCrossEntropyRows = find("softmax_cross_entropy_rows", missing);
            softmaxMseRows = find("softmax_mse_rows", missing);
            adamUpdate = find("adam_update", missing);
            sgdUpdate = find("sgd_update", missing);
            adamUpdateMeasured = find("adam_update_measured", missing);
            sgdUpdateMeasured = find("sgd_update_measured", missing);
            rmspropUpdate = find("rmsprop_update", missing);
            rmspropUpdateMeasured = find("rmsprop_update_measured", missing);
            columnSums = find("column_sums", missing);
            addRowVector = find("add_row_vector", missing);
            segmentSumOfSquares = find("segment_sum_of_squares", missing);
            clipByValue = find("clip_by_value", missing);
            clipByGlobalNorm = find("clip_by_global_norm", missing);
            fill = find("fill_f32", missing);
            gatherRowsU8 = find("gather_rows_u8", missing);
            gatherRowsF32 = find("gather_rows_f32", missing);
            gatherRowsU8Counter = find("gather_rows_u8_counter", missing);
            gatherRowsF32Counter = find("gather_rows_f32_counter", missing);
            gatherBatchCounter = find("gather_batch_counter", missing);
            copyToRow = find("copy_to_row_f32", missing);
            advanceCounters = find("advance_counters", missing);
            gatherNextBatch = find("gather_next_batch", missing);
            adamUpdateCounter = find("adam_update_counter", missing);
            adamUpdateMeasuredCounter = find("adam_update_measured_counter", missing);
            nadamUpdateCounter = find("nadam_update_counter", missing);
            nadamUpdateMeasuredCounter = find("nadam_update_measured_counter", missing);
            adamaxUpdateCounter = find("adamax_update_counter", missing);
            adamaxUpdateMeasuredCounter = find("adamax_update_measured_counter", missing);
            adagradUpdate = find("adagrad_update", missing);
            adagradUpdateMeasured = find("adagrad_update_measured", missing);
            if (!missing.isEmpty()) {
                throw new CudaUnavailableException("the kernels in the jar are incomplete: no " + String.join(", ", missing)
                        + " in " + FAMILIES.stream().map(Kernels::resource).toList()
                        + " (the kernel ABI is cuda-abi.md; src/main/cuda implements it)");
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** {@code ID_forward} of an element-wise kind. */
    CUfunction forward(ActivationKind kind) {
        return require(forward, kind, "forward");
    }

    /** {@code ID_backward} of an element-wise kind. */
    CUfunction backward(ActivationKind kind) {
        return require(backward, kind, "backward");
    }

    /** {@code ID_bias_forward} of an element-wise kind: bias, then activation. */
    CUfunction biasForward(ActivationKind kind) {
        return require(biasForward, kind, "bias_forward");
    }

    /** {@code ID_bias_backward} of an element-wise kind: activation backward, bias gradient, unit statistics. */
    CUfunction biasBackward(ActivationKind kind) {
        return require(biasBackward, kind, "bias_backward");
    }

    /** {@code ID_parameter_gradient} of a kind with a parameter. */
    CUfunction parameterGradient(ActivationKind kind) {
        return require(parameterGradient, kind, "parameter_gradient");
    }

    /** How many kernel functions were found, for {@code gradscope info}. */
    int functionCount() {
        return byName.size();
    }

    private static CUfunction require(Map<ActivationKind, CUfunction> table, ActivationKind kind, String what) {
        CUfunction f = table.get(kind);
        if (f == null) {
            throw new IllegalArgumentException(kind.id() + " has no " + what + " kernel"
                    + (kind.isElementWise() ? " (it has no parameter)" : " (it is not element-wise)"));
        }
        return f;
    }

    /** The function {@code name} from whichever module defines it; null (and noted) when none does. */
    private CUfunction find(String name, List<String> missing) {
        for (CUmodule module : modules) {
            CUfunction f = new CUfunction();
            try {
                // CUDA_ERROR_NOT_FOUND when this module does not define it: try the next one.
                if (cuModuleGetFunction(f, module, name) == 0) {
                    byName.put(name, f);
                    return f;
                }
            } catch (jcuda.CudaException e) {
                // not in this module
            }
        }
        missing.add(name);
        return null;
    }

    /** {@code /ptx/activations.ptx}. */
    static String resource(String family) {
        return "/ptx/" + family + ".ptx";
    }

    /** The PTX resources that are not on the classpath (the build had no nvcc). */
    static List<String> missingResources() {
        List<String> missing = new ArrayList<>();
        for (String family : FAMILIES) {
            if (Kernels.class.getResource(resource(family)) == null) {
                missing.add(resource(family));
            }
        }
        return missing;
    }

    /** A module's PTX text, NUL-terminated: cuModuleLoadData reads PTX as a C string. */
    private static byte[] ptx(String family) {
        try (InputStream in = Kernels.class.getResourceAsStream(resource(family))) {
            if (in == null) {
                throw new CudaUnavailableException(NOT_BUILT + ": " + resource(family) + " not in the jar");
            }
            byte[] text = in.readAllBytes();
            return Arrays.copyOf(text, text.length + 1);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + resource(family), e);
        }
    }

    /** Unloads the modules; their functions become invalid. Idempotent. */
    @Override
    public void close() {
        RuntimeException first = null;
        for (CUmodule module : modules) {
            try {
                CudaErrors.checkDriver(cuModuleUnload(module));
            } catch (jcuda.CudaException e) {
                if (first == null) {
                    first = CudaErrors.wrap("unloading the kernels", "", e);
                }
            }
        }
        modules.clear();
        byName.clear();
        if (first != null) {
            throw first;
        }
    }
}
