package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.gradscope.tensor.ActivationKind;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The kernels the build put into the jar against the parameter lists CudaBackend's launchers pass (the
 * kernel ABI, cuda-abi.md), read from the PTX itself: a kernel whose parameters were reordered, retyped
 * or renamed would otherwise be launched with the wrong arguments and fail only on a GPU, if at all.
 * Also how the PTX rounds batch normalization's and the shared reductions' double arithmetic. Needs no GPU, only
 * the PTX (the build makes it when nvcc is present); skips, saying so, without it.
 *
 * <p>Types as PTX spells them: {@code p} a pointer ({@code .u64}), {@code i} an int ({@code .u32} or
 * {@code .s32}), {@code f} a float ({@code .f32}), {@code d} a double ({@code .f64}).
 */
class KernelAbiTest {
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\s*\\(([^)]*)\\)");
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+\\.(\\w+)");
    private static final Pattern FILE = Pattern.compile("^\\s*\\.file\\s+(\\d+)\\s+\"([^\"]*)\"");
    private static final Pattern LOC = Pattern.compile("^\\s*\\.loc\\s+(\\d+)\\s+(\\d+)\\s");
    /** A double add, sub, mul or fma: the instruction (group 1), its name (2) and its modifiers (3: ".rn", ...). */
    private static final Pattern DOUBLE_ARITHMETIC =
            Pattern.compile("^\\s*(?:@!?%p\\d+\\s+)?((add|sub|mul|fma)((?:\\.[a-z0-9]+)*)\\.f64)\\s");
    /** The parameters every measured optimizer kernel ends with (optim.cu's GS_MEASURED_PARAMETERS). */
    private static final String MEASURED_TAIL = "piii" + "ppppi" + "ppppppi" + "pp";

    /** Every kernel CudaBackend launches, with the parameter types it passes, in order. */
    static Map<String, String> expectedAbi() {
        Map<String, String> abi = new TreeMap<>();
        for (ActivationKind kind : ActivationKind.values()) {
            if (!kind.isElementWise()) {
                continue;
            }
            abi.put(kind.id() + "_forward", "pppiii");          // z, y, param, paramCount, cols, n
            abi.put(kind.id() + "_backward", "ppppiii");        // z, dy, dz, param, paramCount, cols, n
            abi.put(kind.id() + "_bias_forward", "ppppiii");    // z, bias, y, param, paramCount, cols, n
            // z, y, dy, dz, biasGradient, param, paramCount, rows, cols, saturationThreshold, statistics
            abi.put(kind.id() + "_bias_backward", "ppppppiiifp");
            if (kind.hasParameter()) {
                abi.put(kind.id() + "_parameter_gradient", "pppiiip"); // z, dy, param, count, rows, cols, dParam
            }
        }
        abi.put("maxout_forward", "pppiii");               // z, y, winner, rows, units, pieces
        abi.put("maxout_backward", "pppiii");              // dy, winner, dz, rows, units, pieces
        abi.put("softmax_rows", "ppii");                   // logits, probabilities, rows, cols
        // in, out, n, threshold, scale, streamKey (a 64-bit integer: .u64, as a pointer reads), step
        abi.put("dropout_forward", "ppiifpp");
        abi.put("dropout_backward", "ppiifpp");
        // x, gamma, beta, momentum, oneMinusMomentum, epsilon, movingMean, movingVariance, batchMean, batchInvStd,
        // y, rows, cols, rowsPerSlice
        abi.put("batch_norm_training_forward", "pppfffpppppiii");
        // x, momentum, oneMinusMomentum, epsilon, movingMean, movingVariance, batchMean, batchInvStd, rows, cols,
        // rowsPerSlice, partials, ticket
        abi.put("batch_norm_training_statistics", "pfffppppiiipp");
        // x, gamma, beta, batchMean, batchInvStd, y, cols, n
        abi.put("batch_norm_training_normalize", "ppppppii");
        // x, gamma, beta, movingMean, movingVariance, epsilon, y, rows, cols, rowsPerSlice
        abi.put("batch_norm_inference_forward", "pppppfpiii");
        // x, gamma, batchMean, batchInvStd, dy, dx, dGamma, dBeta, rows, cols, rowsPerSlice
        abi.put("batch_norm_backward", "ppppppppiii");
        // x, gamma, batchMean, batchInvStd, dy, dGamma, dBeta, rows, cols, rowsPerSlice, partials, coefficients,
        // ticket
        abi.put("batch_norm_backward_sums", "pppppppiiippp");
        // x, batchMean, batchInvStd, dy, coefficients, dx, cols, n
        abi.put("batch_norm_backward_dx", "ppppppii");
        // logits, bias, targets, scale, dLogits, rowLoss, rowCorrect, biasGradient, rows, cols, totals, ticket
        abi.put("softmax_cross_entropy_rows", "pppfppppiipp");
        abi.put("softmax_mse_rows", "pppfppppiipp");
        abi.put("adam_update", "ppppffffi");               // params, grads, m, v, beta1, beta2, epsilon, stepSize, n
        // params, grads, velocity, lr, the step schedule (warmupStart, warmupSteps, decaySteps, alpha), momentum,
        // nesterov, weightDecay, iterations (may be NULL), n, ticket
        abi.put("sgd_update", "pppfdiidfifpip");
        // params, grads, velocity, averageGradient, momentumBuffer, lr, the step schedule, rho, momentum, epsilon,
        // centered, weightDecay, iterations (may be NULL), n, ticket
        abi.put("rmsprop_update", "pppppfdiidfffifpip");
        // ... then, in place of n, the measured tail: segmentStarts, segments, chunk, n; gradientPartials,
        // gradientSquares, gradientTable, gradientRow, gradientTableRows; weightPartials, updatePartials,
        // weightSquares, updateSquares, table, row, tableRows; counter, ticket
        abi.put("adam_update_measured", "ppppffff" + MEASURED_TAIL);
        abi.put("sgd_update_measured", "pppfdiidfifp" + MEASURED_TAIL);
        abi.put("rmsprop_update_measured", "pppppfdiidfffifp" + MEASURED_TAIL);
        abi.put("clip_by_value", "pfi");                   // t, limit, n
        abi.put("clip_by_global_norm", "ppifi");           // t, squaredNorms, normCount, maxNorm, n
        abi.put("column_sums", "ppii");                    // x, out, rows, cols
        abi.put("add_row_vector", "ppii");                 // y, bias, rows, cols
        // x, segmentStarts, segments, chunk, n, partials, out, table, row, tableRows, ticket
        abi.put("segment_sum_of_squares", "ppiiippppip");
        abi.put("fill_f32", "pfi");                        // x, value, n
        abi.put("gather_rows_u8", "ppifpii");              // source, indices, first, scale, out, rows, cols
        abi.put("gather_rows_f32", "ppifpii");
        // The step's changing values on the device (counters):
        // source, indices, counter, rowsPerCount, scale, out, rows, cols
        abi.put("gather_rows_u8_counter", "pppifpii");
        abi.put("gather_rows_f32_counter", "pppifpii");
        // features, featureScale, featuresOut, featureCols, targets, targetsOut, targetCols, indices, counter,
        // rowsPerCount, rows
        abi.put("gather_batch_counter", "pfpippippii");
        // features, featureScale, featuresOut, featureCols, targets, targetsOut, targetCols, indices, indexCount,
        // counter, rowsPerCount, rows, ticket
        abi.put("gather_next_batch", "pfpippipipiip");
        abi.put("copy_to_row_f32", "pppii");               // src, table, row, tableRows, n
        abi.put("advance_counters", "pi");                 // counters, n
        // params, grads, m, v, vHat (AMSGrad's, or NULL), learningRate, the step schedule (warmupStart, warmupSteps,
        // decaySteps, alpha), beta1, beta2 (double), epsilon, weightDecay, iterations, n, ticket
        abi.put("adam_update_counter", "pppppddiidddffpip");
        // ... then iterations and the measured tail in place of n
        abi.put("adam_update_measured_counter", "pppppddiidddffp" + MEASURED_TAIL);
        // params, grads, m, v, learningRate (float), the step schedule (as Adam's), beta1, beta2 (double), epsilon,
        // weightDecay, iterations, uProduct, n, ticket; measured: the tail in place of n
        abi.put("nadam_update_counter", "ppppfdiidddffppip");
        abi.put("nadam_update_measured_counter", "ppppfdiidddffpp" + MEASURED_TAIL);
        // params, grads, m, u, learningRate (float), the step schedule, beta1, beta2 (double), epsilon, weightDecay,
        // iterations, n, ticket; measured: the tail in place of n
        abi.put("adamax_update_counter", "ppppfdiidddffpip");
        abi.put("adamax_update_measured_counter", "ppppfdiidddffp" + MEASURED_TAIL);
        // params, grads, accumulator, learningRate, the step schedule, epsilon, weightDecay, iterations (may be
        // NULL), n, ticket; measured: the tail in place of n
        abi.put("adagrad_update", "pppfdiidffpip");
        abi.put("adagrad_update_measured", "pppfdiidffp" + MEASURED_TAIL);
        return abi;
    }

    /** The PTX of one kernel family, from the jar's resources. */
    private static String ptx(String family) throws IOException {
        try (InputStream in = KernelAbiTest.class.getResourceAsStream(Kernels.resource(family))) {
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    @Test
    void everyKernelInTheJarTakesTheParametersItsLauncherPasses() throws IOException {
        List<String> missing = Kernels.missingResources();
        assumeTrue(missing.isEmpty(), () -> Kernels.NOT_BUILT + ": " + missing + " not on the test classpath");
        Map<String, String> found = new TreeMap<>();
        for (String family : Kernels.FAMILIES) {
            String ptx = ptx(family);
            Matcher entry = ENTRY.matcher(ptx);
            while (entry.find()) {
                StringBuilder types = new StringBuilder();
                Matcher param = PARAM.matcher(entry.group(2));
                while (param.find()) {
                    types.append(switch (param.group(1)) {
                        case "u64", "b64", "s64" -> 'p';
                        case "u32", "s32", "b32" -> 'i';
                        case "f32" -> 'f';
                        case "f64" -> 'd';
                        default -> '?';
                    });
                }
                String previous = found.put(entry.group(1), types.toString());
                assertEquals(null, previous, entry.group(1) + " is defined twice");
            }
        }
        List<String> differences = new ArrayList<>();
        expectedAbi().forEach((name, types) -> {
            if (!found.containsKey(name)) {
                differences.add(name + ": missing");
            } else if (!found.get(name).equals(types)) {
                differences.add(name + ": PTX takes " + found.get(name) + ", the launcher passes " + types);
            }
        });
        found.keySet().stream().filter(name -> !expectedAbi().containsKey(name))
                .forEach(name -> differences.add(name + ": in the PTX but launched by nobody"));
        assertEquals(List.of(), differences, "kernel ABI differences");
    }

    /**
     * The double arithmetic of batch_norm.cu, and that of common.cuh in every module (its reductions), as PTX writes
     * it: every add, sub and mul has a rounding modifier (.rn: a __d*_rn intrinsic), for the driver's JIT may fuse a
     * plain mul.f64 and add.f64 into one FMA or not, at its own choice, so that the sums' bits would depend on the
     * driver at hand; batch_norm.ptx has no fma.f64 at all (none of its arithmetic is fused by nvcc either). The
     * instructions are attributed to their source lines by the PTX's .loc lines (-lineinfo), inlined code included;
     * those of a line that calls exp are CUDA's exp, inlined without lines of its own, and are not ours to round.
     */
    @Test
    void batchNormAndTheReductionsRoundEveryDoubleOperationAsWritten() throws IOException {
        List<String> missing = Kernels.missingResources();
        assumeTrue(missing.isEmpty(), () -> Kernels.NOT_BUILT + ": " + missing + " not on the test classpath");
        List<String> commonLines = Files.readAllLines(Path.of("src/main/cuda/common.cuh"));
        List<String> unrounded = new ArrayList<>();
        int checked = 0;
        for (String family : Kernels.FAMILIES) {
            String[] lines = ptx(family).split("\n");
            Map<String, String> files = new TreeMap<>();
            for (String line : lines) {
                Matcher file = FILE.matcher(line);
                if (file.find()) {
                    files.put(file.group(1), file.group(2).substring(file.group(2).lastIndexOf('/') + 1));
                }
            }
            String source = "?";
            boolean callsExp = false;
            for (int i = 0; i < lines.length; i++) {
                Matcher loc = LOC.matcher(lines[i]);
                if (loc.find()) {
                    source = files.getOrDefault(loc.group(1), "?");
                    int line = Integer.parseInt(loc.group(2));
                    callsExp = source.equals("common.cuh") && line >= 1 && line <= commonLines.size()
                            && commonLines.get(line - 1).matches(".*\\bexp\\(.*");
                    continue;
                }
                Matcher op = DOUBLE_ARITHMETIC.matcher(lines[i]);
                if (!op.find()) {
                    continue;
                }
                boolean batchNorm = family.equals("batch_norm");
                if (!batchNorm && (!source.equals("common.cuh") || callsExp)) {
                    continue;
                }
                checked++;
                boolean rounded = op.group(3).matches(".*\\.(rn|rz|rm|rp)(\\..*)?");
                boolean fused = op.group(2).equals("fma");
                if (!rounded || (fused && batchNorm)) {
                    unrounded.add(family + ".ptx line " + (i + 1) + ": " + op.group(1) + " (from " + source + ")");
                }
            }
        }
        assertTrue(checked > 100, "found only " + checked + " double operations of batch_norm.cu and common.cuh"
                + " (is the PTX built without -lineinfo?)");
        assertEquals(List.of(), unrounded.subList(0, Math.min(10, unrounded.size())), unrounded.size()
                + " double operations that the JIT may fuse, or that were fused (the first 10)");
    }
}
