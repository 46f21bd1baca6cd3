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
 * @param table         null, or FLOAT32 with rows of {@code 2 * segments} elements ({@code [steps, 2,
 *                      segments]}, say): the op also stores weightSquares, then updateSquares, into row
 *                      {@code row[0]}, as {@link Backend#copyToRow} would (a row outside the table is an error
 *                      on the CPU; a GPU writes nothing then). A step's row of a per-step table, without an op
 *                      of its own.
 * @param row           INT32 {@code [1]}, read on the device, when there is a table; else null
 */
public record UpdateNorms(Tensor segmentStarts, Tensor weightSquares, Tensor updateSquares, Tensor table,
                          Tensor row) {
    public UpdateNorms {
        Objects.requireNonNull(segmentStarts, "segmentStarts");
        Objects.requireNonNull(weightSquares, "weightSquares");
        Objects.requireNonNull(updateSquares, "updateSquares");
        if ((table == null) != (row == null)) {
            throw new IllegalArgumentException("update norms: a table needs its row, and a row its table");
        }
    }

    /** The norms alone, stored into no table. */
    public UpdateNorms(Tensor segmentStarts, Tensor weightSquares, Tensor updateSquares) {
        this(segmentStarts, weightSquares, updateSquares, null, null);
    }
}
