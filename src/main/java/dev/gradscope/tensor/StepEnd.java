package dev.gradscope.tensor;

/**
 * The work that ends a training step, taken over by its optimizer op so that a GPU does it in the update's
 * own launch instead of in ops of its own: each part optional, done in this order.
 *
 * @param gradientNorms null, or the gradients' squared norms per segment, measured before the update
 * @param updateNorms   null, or the weights' squared norms before the update and the update's squared size
 * @param counter       null, or an INT32 tensor whose every element the op advances by one once the update is
 *                      done and every table row is stored ({@link Backend#advanceCounters}): the step's index on
 *                      the device, which the rows above may read
 */
public record StepEnd(GradientNorms gradientNorms, UpdateNorms updateNorms, Tensor counter) {
    /** Nothing but the update. */
    public static final StepEnd NONE = new StepEnd(null, null, null);

    /** The update measured by {@code updateNorms} (may be null), nothing else. */
    public static StepEnd measuring(UpdateNorms updateNorms) {
        return updateNorms == null ? NONE : new StepEnd(null, updateNorms, null);
    }
}
