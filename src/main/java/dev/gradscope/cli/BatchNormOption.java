package dev.gradscope.cli;

import dev.gradscope.nn.Mlp;
import dev.gradscope.report.HtmlReport;
import java.util.List;
import java.util.function.Function;
import picocli.CommandLine.Option;

/**
 * {@code --batch-norm} of the experiments that take it ({@code losses}, {@code activations}, {@code gradients},
 * {@code init}):
 * every run's hidden layers become {@code Dense (linear) -> BatchNormalization -> activation}, with Keras's
 * momentum and epsilon. One option, one check and one sentence on the page for all of them.
 */
final class BatchNormOption {
    @Option(names = "--batch-norm",
            description = "A BatchNormalization between every hidden layer's product and its activation, in every"
                    + " run: the textbook cure for vanishing gradients, which also undoes the kernels' scale that makes"
                    + " gradients explode (not for maxout, which has no separate activation).")
    boolean on;

    /** {@code " --batch-norm"} when on, else empty: for the page's command line. */
    String argument() {
        return on ? " --batch-norm" : "";
    }

    /**
     * Refuses, when on, hidden units without a separate activation (maxout) among those {@code option} chose.
     *
     * @param usage makes the usage error
     */
    void requireSeparateActivations(List<Mlp.HiddenUnits> units, String option,
                                    Function<String, RuntimeException> usage) {
        if (on && units.stream().anyMatch(u -> u.activation().equals(Mlp.MAXOUT))) {
            throw usage.apply("--batch-norm goes between a Dense layer and its activation; maxout has no separate"
                    + " activation, so leave it out of " + option);
        }
    }

    /** {@code model} with batch normalization when on, as it is otherwise. */
    ModelOptions.Resolved applyTo(ModelOptions.Resolved model) {
        return on ? model.withBatchNorm(true) : model;
    }

    /** When on, the page's sentence saying so; {@code why} (may be empty) follows it. */
    void describe(HtmlReport page, String why) {
        if (on) {
            page.paragraph("Every hidden layer is Dense (linear) -> BatchNormalization -> activation" + why + ".");
        }
    }
}
