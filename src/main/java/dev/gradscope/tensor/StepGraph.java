package dev.gradscope.tensor;

import java.util.Objects;

/**
 * A recorded sequence of device ops, launched again and again: a training step captured once
 * ({@link Backend#capture}) and replayed for every batch of the same size.
 *
 * <p>On a GPU ({@link Backend#supportsGraphs()}) it is a CUDA graph: {@link #launch()} queues every
 * recorded kernel with the arguments it was captured with, for about a microsecond per kernel instead of
 * the several that each launch from Java costs. So whatever changes from step to step must be read by the
 * kernels from device memory (see the counter forms of {@link Backend#gatherRows(Tensor, Tensor, Tensor,
 * int, float, Tensor)}, {@link Backend#copyToRow} and {@link Backend#adamUpdate(Tensor, Tensor, Tensor,
 * Tensor, double, double, double, float, Tensor, UpdateNorms)}), never passed from the host.
 *
 * <p>A backend without graphs returns {@link #rerunning}: its launch runs the captured code again, which
 * queues the same ops with the same arguments; the trainer's graph mode runs, and is tested, the same way
 * on every backend.
 */
public interface StepGraph extends AutoCloseable {
    /** Queues the recorded ops once, in order, after the work already queued. */
    void launch();

    /** Releases the graph. Idempotent. */
    @Override
    void close();

    /** A graph whose launch runs {@code step} again: capture on a backend without device graphs. */
    static StepGraph rerunning(Runnable step) {
        Objects.requireNonNull(step, "step");
        return new StepGraph() {
            private boolean closed;

            @Override
            public void launch() {
                if (closed) {
                    throw new IllegalStateException("launch: the step graph is closed");
                }
                step.run();
            }

            @Override
            public void close() {
                closed = true;
            }
        };
    }
}
