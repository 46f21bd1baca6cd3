package dev.gradscope.train;

import dev.gradscope.data.Dataset;
import java.util.ArrayList;
import java.util.List;

/**
 * How {@code fit} runs: Keras's {@code batch_size}, {@code epochs}, {@code validation_data},
 * {@code shuffle}, {@code verbose} and {@code callbacks}.
 *
 * @param batchSize  rows per step (Keras default 32; the chapter uses 256)
 * @param epochs     passes over the training data
 * @param validation data evaluated after each epoch, or null
 * @param shuffle    whether each epoch visits the rows in a new random order
 * @param verbose    0 silent, 1 progress bar on a terminal and a line per epoch
 * @param callbacks  called around epochs and steps, in order
 * @param profiler   the gradient profiler (on by default), or null to switch it off
 * @param clipGlobalNorm rescale the gradients when their global L2 norm exceeds this (0: off)
 * @param clipValue  clamp every gradient element to [-clipValue, clipValue] (0: off)
 * @param stopOnNonFinite stop training at the first step whose gradient is not finite (default), or go on
 * @param graph      capture the training step once as a CUDA graph and replay it (default), where the
 *                   backend supports graphs and every callback is {@linkplain Callback#graphSafe graph-safe};
 *                   false runs every step eagerly, op by op. Both give the same parameters, bit for bit.
 * @param stepsPerGraph in graph mode, how many consecutive training steps one graph holds (default 1): the
 *                   epoch's full batches run as graphs of this many steps, so an epoch of f full batches
 *                   takes about f / stepsPerGraph launches instead of f. At most f is used (a larger value
 *                   makes the full batches of an epoch one graph). It changes no result, only how often the
 *                   host launches; it does nothing when the steps run eagerly.
 * @param resumeFrom a saved state to go on from ({@link TrainingState#load}, which has already set the model's
 *                   parameters and optimizer state), or null: training starts at its epoch, as Keras's
 *                   {@code initial_epoch}, with its history and profile; {@code epochs} stays the total.
 */
public record FitOptions(int batchSize, int epochs, Dataset validation, boolean shuffle, int verbose,
                         List<Callback> callbacks, GradientProfiler profiler, double clipGlobalNorm,
                         double clipValue, boolean stopOnNonFinite, boolean graph, int stepsPerGraph,
                         TrainingState resumeFrom) {

    public FitOptions {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        if (epochs < 0) {
            throw new IllegalArgumentException("epochs must be >= 0, got " + epochs);
        }
        callbacks = List.copyOf(callbacks);
        if (!(clipGlobalNorm >= 0) || !(clipValue >= 0)) {
            throw new IllegalArgumentException("clipping limits must be >= 0 (0 is off), got norm " + clipGlobalNorm
                    + " and value " + clipValue);
        }
        if (stepsPerGraph < 1) {
            throw new IllegalArgumentException("steps per graph must be >= 1, got " + stepsPerGraph);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link FitOptions} with Keras's defaults. */
    public static final class Builder {
        private int batchSize = 32;
        private int epochs = 1;
        private Dataset validation;
        private boolean shuffle = true;
        private int verbose = 1;
        private final List<Callback> callbacks = new ArrayList<>();
        private GradientProfiler profiler = new GradientProfiler();
        private double clipGlobalNorm;
        private double clipValue;
        private boolean stopOnNonFinite = true;
        private boolean graph = true;
        private int stepsPerGraph = 1;
        private TrainingState resumeFrom;

        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        public Builder epochs(int epochs) {
            this.epochs = epochs;
            return this;
        }

        public Builder validation(Dataset validation) {
            this.validation = validation;
            return this;
        }

        public Builder shuffle(boolean shuffle) {
            this.shuffle = shuffle;
            return this;
        }

        public Builder verbose(int verbose) {
            this.verbose = verbose;
            return this;
        }

        public Builder callback(Callback callback) {
            this.callbacks.add(callback);
            return this;
        }

        /** Uses this profiler (e.g. with another saturation threshold); null switches profiling off. */
        public Builder profiler(GradientProfiler profiler) {
            this.profiler = profiler;
            return this;
        }

        public Builder clipGlobalNorm(double maxNorm) {
            this.clipGlobalNorm = maxNorm;
            return this;
        }

        public Builder clipValue(double limit) {
            this.clipValue = limit;
            return this;
        }

        public Builder stopOnNonFinite(boolean stop) {
            this.stopOnNonFinite = stop;
            return this;
        }

        /** Whether the step may run as a replayed CUDA graph (default true); false: eager, op by op. */
        public Builder graph(boolean graph) {
            this.graph = graph;
            return this;
        }

        /**
         * In graph mode, the consecutive training steps each graph launch runs (default 1; see
         * {@link FitOptions#stepsPerGraph()}); no effect on eager steps.
         */
        public Builder stepsPerGraph(int steps) {
            this.stepsPerGraph = steps;
            return this;
        }

        /**
         * Goes on from {@code state}, which {@link TrainingState#load} read into the model: the run starts at the
         * state's epoch, its history and profile continue the state's, and {@link #epochs} is the total to
         * reach. With the same data, batch size and options the result is that of the run never interrupted.
         */
        public Builder resumeFrom(TrainingState state) {
            this.resumeFrom = state;
            return this;
        }

        public FitOptions build() {
            return new FitOptions(batchSize, epochs, validation, shuffle, verbose, callbacks, profiler, clipGlobalNorm,
                    clipValue, stopOnNonFinite, graph, stepsPerGraph, resumeFrom);
        }
    }
}
