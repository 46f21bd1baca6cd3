package dev.gradscope.cli;

import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import dev.gradscope.tensor.Backend;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.Option;

/** Options that define the network and how it learns. */
final class ModelOptions {
    @Option(names = "--activation", defaultValue = "relu",
            description = "Hidden activation (default: ${DEFAULT-VALUE}): ${COMPLETION-CANDIDATES}.",
            completionCandidates = ActivationIds.class)
    String activation;

    @Option(names = "--activation-parameter", paramLabel = "VALUE",
            description = "The activation's alpha or beta (leaky_relu, elu, prelu, swish...); default: the kind's.")
    Double activationParameter;

    @Option(names = "--learn-parameter",
            description = "Learn the activation's parameter (e.g. swish's beta); prelu always learns it.")
    boolean learnParameter;

    @Option(names = "--maxout-pieces", defaultValue = "2", description = "Pieces per maxout unit (default: ${DEFAULT-VALUE}).")
    int maxoutPieces;

    @Option(names = "--hidden", split = ",", paramLabel = "WIDTH",
            description = "Hidden layer widths (default: 512,256,128,64).")
    int[] hidden = Mlp.CHAPTER_HIDDEN.clone();

    @Option(names = "--loss", defaultValue = "categorical_crossentropy",
            description = "categorical_crossentropy or mse, on the softmax output (default: ${DEFAULT-VALUE}).")
    String loss;

    @Option(names = "--optimizer", defaultValue = "adam", description = "adam or sgd (default: ${DEFAULT-VALUE}).")
    String optimizer;

    @Option(names = "--learning-rate", paramLabel = "LR",
            description = "Learning rate (default: Keras's, 0.001 for adam and 0.01 for sgd).")
    Double learningRate;

    @Option(names = "--momentum", defaultValue = "0", description = "SGD momentum (default: ${DEFAULT-VALUE}).")
    double momentum;

    @Option(names = "--nesterov", description = "Nesterov momentum for SGD.")
    boolean nesterov;

    @Option(names = "--init", defaultValue = "glorot_uniform", paramLabel = "KIND[:SCALE]",
            description = "Kernel initializer, optionally scaled, e.g. he_normal or random_normal:1.0"
                    + " (default: ${DEFAULT-VALUE}).")
    String init;

    /** Everything resolved and checked, ready to build the model. */
    record Resolved(Mlp.HiddenUnits units, int[] hidden, Loss loss, Initializer initializer, String optimizerId,
                    double learningRate, double momentum, boolean nesterov) {

        Sequential build(Backend backend, long seed, int inputs, int classes) {
            Sequential model = Mlp.build(backend, seed, inputs, hidden, classes, units, initializer);
            return model.compile(newOptimizer(), loss, "accuracy");
        }

        Optimizer newOptimizer() {
            return optimizerId.equals("adam") ? new Adam(learningRate) : new Sgd(learningRate, momentum, nesterov);
        }

        Map<String, Object> config() {
            Map<String, Object> c = new LinkedHashMap<>();
            c.put("activation", units.activation());
            c.put("activation_parameter", Double.isNaN(units.parameter()) ? null : units.parameter());
            c.put("learn_parameter", units.learnable());
            c.put("maxout_pieces", units.maxoutPieces());
            c.put("hidden", hidden);
            c.put("loss", loss.id());
            c.put("optimizer", newOptimizer().config());
            c.put("init", initializer.toString());
            return c;
        }
    }

    /** Checks every choice; a bad one is a usage error that lists the valid values. */
    Resolved resolve(RunOptions run) {
        run.validate();
        Mlp.HiddenUnits units;
        Loss resolvedLoss;
        Initializer initializer;
        if (activationParameter != null && !Double.isFinite(activationParameter)) {
            throw run.usage("--activation-parameter must be a finite number, got " + activationParameter);
        }
        try {
            units = new Mlp.HiddenUnits(activation, activationParameter == null ? Double.NaN : activationParameter,
                    learnParameter, maxoutPieces);
        } catch (IllegalArgumentException e) {
            throw run.usage("--activation: " + e.getMessage()
                    + (e.getMessage().contains("valid:") ? "" : "; valid: " + Mlp.HiddenUnits.validIds()));
        }
        try {
            resolvedLoss = Loss.fromId(loss);
        } catch (IllegalArgumentException e) {
            throw run.usage("--loss: " + e.getMessage());
        }
        try {
            initializer = Initializer.parse(init);
        } catch (IllegalArgumentException e) {
            throw run.usage("--init: " + e.getMessage());
        }
        String opt = optimizer.trim().toLowerCase(Locale.ROOT);
        if (!opt.equals("adam") && !opt.equals("sgd")) {
            throw run.usage("--optimizer: unknown optimizer '" + optimizer + "'; valid: adam, sgd");
        }
        double lr = learningRate != null ? learningRate : opt.equals("adam") ? 1e-3 : 1e-2;
        if (!(lr > 0) || Double.isInfinite(lr)) {
            throw run.usage("--learning-rate must be a positive number, got " + lr);
        }
        if (!(momentum >= 0 && momentum < 1)) {
            throw run.usage("--momentum must be in [0, 1), got " + momentum);
        }
        if (hidden.length == 0 || Arrays.stream(hidden).anyMatch(w -> w < 1)) {
            throw run.usage("--hidden needs widths >= 1, got " + Arrays.toString(hidden));
        }
        return new Resolved(units, hidden.clone(), resolvedLoss, initializer, opt, lr, momentum, nesterov);
    }

    /** The activation ids, for help text and shell completion. */
    static final class ActivationIds implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return Arrays.asList(Mlp.HiddenUnits.validIds().split(", ")).iterator();
        }
    }
}
