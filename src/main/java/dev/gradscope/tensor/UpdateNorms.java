package dev.gradscope.tensor;

import java.util.Objects;

/**
 * Where an optimizer op also writes, per parameter tensor, the squared norm of the weights before the
 * step and the squared size of the step: the profiler's per-step statistics, measured in the update's
 * own pass over the parameters instead of in two more passes and a copy.
 *
 * @param segmentStarts INT32 {@code [segments + 1]}: where each parameter tensor starts in the flat buffers
 * @param weightSquares FLOAT32 {@code [segments]}: {@code sum of p^2} per segment, p before the step
 * @param updateSquares FLOAT32 {@code [segments]}: {@code sum of (p_after - p_before)^2} per segment, the
 *                      difference of the two floats in double on the GPU; in float on the CPU, exact while
 *                      a step is smaller than its weight (Sterbenz), within float rounding otherwise
 */
public record UpdateNorms(Tensor segmentStarts, Tensor weightSquares, Tensor updateSquares) {
    public UpdateNorms {
        Objects.requireNonNull(segmentStarts, "segmentStarts");
        Objects.requireNonNull(weightSquares, "weightSquares");
        Objects.requireNonNull(updateSquares, "updateSquares");
    }
}
