package dev.gradscope.train;

/**
 * Mean loss and accuracy of a model over a dataset.
 *
 * @param loss     mean per-example loss
 * @param accuracy fraction of examples whose predicted class is the label
 * @param examples how many examples were evaluated
 */
public record Evaluation(double loss, double accuracy, int examples) {
}
