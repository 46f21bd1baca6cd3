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
 */
public record FitOptions(int batchSize, int epochs, Dataset validation, boolean shuffle, int verbose,
                         List<Callback> callbacks) {

    public FitOptions {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        if (epochs < 0) {
            throw new IllegalArgumentException("epochs must be >= 0, got " + epochs);
        }
        callbacks = List.copyOf(callbacks);
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

        public FitOptions build() {
            return new FitOptions(batchSize, epochs, validation, shuffle, verbose, callbacks);
        }
    }
}
