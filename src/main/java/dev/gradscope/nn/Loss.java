package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Losses on a softmax output. Each takes the output layer's logits and fuses the softmax with the loss
 * and its gradient, which is both faster and numerically stable (no log of a rounded-to-zero
 * probability). Reported values are means over the batch, as in Keras.
 */
public enum Loss {
    /**
     * Categorical cross-entropy, {@code -sum_c t_c log p_c} with {@code p = softmax(z)}. Its gradient
     * {@code p - t} does not shrink when the softmax saturates on a wrong answer, which is why it learns
     * faster than MSE on a softmax output. With label smoothing ls ({@link Sequential#compile(Optimizer, Loss,
     * double, String...)}), Keras's and PyTorch's {@code label_smoothing}, t is the smoothed target
     * {@code onehot * (1 - ls) + ls / K}: the loss no longer reaches 0, so the logits stop growing without bound.
     */
    CATEGORICAL_CROSSENTROPY("categorical_crossentropy", "crossentropy", "cross_entropy", "ce"),
    /**
     * Mean squared error on the softmax probabilities, {@code mean_c (p_c - t_c)^2}, as in the chapter's
     * Keras code ({@code loss='mse'} after a softmax). Its gradient passes through the softmax
     * Jacobian, which vanishes when the softmax saturates.
     */
    MEAN_SQUARED_ERROR("mse", "mean_squared_error");

    private final String id;
    private final List<String> aliases;

    Loss(String id, String... aliases) {
        this.id = id;
        this.aliases = List.of(aliases);
    }

    public String id() {
        return id;
    }

    /**
     * Writes {@code dLogits} = the gradient of the batch-mean loss with respect to the logits (each
     * example's gradient times {@code gradientScale}, normally 1/batch) and accumulates
     * {@code totals[0] += summed loss}, {@code totals[1] += correct predictions}.
     */
    public void apply(Backend backend, Tensor logits, Tensor targets, float gradientScale, Tensor dLogits,
                      Tensor totals) {
        switch (this) {
            case CATEGORICAL_CROSSENTROPY -> backend.softmaxCrossEntropy(logits, targets, gradientScale, dLogits,
                    totals);
            case MEAN_SQUARED_ERROR -> backend.softmaxMeanSquaredError(logits, targets, gradientScale, dLogits,
                    totals);
        }
    }

    /**
     * {@link #apply(Backend, Tensor, Tensor, float, Tensor, Tensor)} on logits that still lack the output
     * layer's {@code bias}: adds it (in place), and also writes the bias gradient (the column sums of
     * dLogits). The output layer's end of a training step, one launch on a GPU.
     */
    public void apply(Backend backend, Tensor logits, Tensor bias, Tensor targets, float gradientScale,
                      Tensor dLogits, Tensor biasGradient, Tensor totals) {
        switch (this) {
            case CATEGORICAL_CROSSENTROPY -> backend.softmaxCrossEntropy(logits, bias, targets, gradientScale,
                    dLogits, biasGradient, totals);
            case MEAN_SQUARED_ERROR -> backend.softmaxMeanSquaredError(logits, bias, targets, gradientScale,
                    dLogits, biasGradient, totals);
        }
    }

    /**
     * Checks a label smoothing for this loss: in [0, 1) as a float (the targets are floats: 0.99999999 is 1), and 0
     * for any loss but categorical cross-entropy (Keras's MSE has none).
     *
     * @throws IllegalArgumentException naming the value and the loss when it is not
     */
    public void requireLabelSmoothing(double labelSmoothing) {
        if (!(labelSmoothing >= 0 && labelSmoothing < 1)) {
            throw new IllegalArgumentException("label smoothing must be in [0, 1), got " + labelSmoothing);
        }
        if ((float) labelSmoothing >= 1) {
            throw new IllegalArgumentException("label smoothing must be in [0, 1) as a float, and " + labelSmoothing
                    + " is 1 as a float");
        }
        if (labelSmoothing != 0 && this != CATEGORICAL_CROSSENTROPY) {
            throw new IllegalArgumentException("label smoothing " + labelSmoothing + " applies to --loss "
                    + CATEGORICAL_CROSSENTROPY.id + " only, not " + id);
        }
    }

    /** Looks a loss up by id or alias; the error names the bad id and the valid ones. */
    public static Loss fromId(String id) {
        String key = id.trim().toLowerCase(Locale.ROOT).replace('-', '_');
        for (Loss loss : values()) {
            if (loss.id.equals(key) || loss.aliases.contains(key)) {
                return loss;
            }
        }
        throw new IllegalArgumentException("unknown loss '" + id + "'; valid: " + validIds());
    }

    public static String validIds() {
        return Arrays.stream(values()).map(Loss::id).collect(Collectors.joining(", "));
    }
}
