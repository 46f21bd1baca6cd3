package dev.gradscope.tensor;

import java.util.Objects;

/**
 * Where an optimizer op also writes, per parameter tensor, the squared norm of the gradient it steps with:
 * {@link Backend#segmentSumOfSquares(Tensor, Tensor, Tensor, Tensor, Tensor)} of the gradients, measured in
 * the update's own pass (see {@link StepEnd}).
 *
 * @param segmentStarts INT32 {@code [segments + 1]}: where each parameter tensor starts in the flat buffers
 * @param squares       FLOAT32 {@code [segments]}: {@code sum of g^2} per segment
 * @param table         null, or FLOAT32 with rows of {@code segments} elements: the op also stores squares into
 *                      row {@code row[0]}, as {@link Backend#copyToRow} would
 * @param row           INT32 {@code [1]}, read on the device, when there is a table; else null
 */
public record GradientNorms(Tensor segmentStarts, Tensor squares, Tensor table, Tensor row) {
    public GradientNorms {
        Objects.requireNonNull(segmentStarts, "segmentStarts");
        Objects.requireNonNull(squares, "squares");
        if ((table == null) != (row == null)) {
            throw new IllegalArgumentException("gradient norms: a table needs its row, and a row its table");
        }
    }
}
