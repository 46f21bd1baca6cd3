package dev.gradscope.cli;

import dev.gradscope.data.InvalidDataException;
import dev.gradscope.nn.Adagrad;
import dev.gradscope.nn.BatchNormalization;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.tensor.Backend;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import picocli.CommandLine.Mixin;
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

    @Option(names = "--dropout", defaultValue = "0", paramLabel = "RATE",
            description = "A Dropout of this rate after every hidden layer, in [0, 1) (default: ${DEFAULT-VALUE},"
                    + " none).")
    double dropout;

    @Option(names = "--batch-norm",
            description = "A BatchNormalization between every hidden layer's product and its activation:"
                    + " Dense (linear) -> BatchNormalization -> activation.")
    boolean batchNorm;

    @Option(names = "--bn-momentum", paramLabel = "M",
            description = "With --batch-norm: momentum of the moving statistics, moving = moving * M + batch * (1 - M),"
                    + " in [0, 1) (default: Keras's, 0.99).")
    Double batchNormMomentum;

    @Option(names = "--bn-epsilon", paramLabel = "E",
            description = "With --batch-norm: added to the variance before its square root, > 0 (default: Keras's,"
                    + " 0.001).")
    Double batchNormEpsilon;

    @Option(names = "--loss", defaultValue = "categorical_crossentropy",
            description = "categorical_crossentropy or mse, on the softmax output (default: ${DEFAULT-VALUE}).")
    String loss;

    @Option(names = "--label-smoothing", defaultValue = "0", paramLabel = "LS",
            description = "Smooth categorical_crossentropy's targets to onehot*(1-LS) + LS/classes, in [0, 1)"
                    + " (default: ${DEFAULT-VALUE}, none); loss and val_loss are then the smoothed loss, as in Keras.")
    double labelSmoothing;

    /** The optimizer and its settings (train's default: adam), as experiment init takes them too. */
    @Mixin
    OptimizerOptions optimizer = new OptimizerOptions();

    @Option(names = "--init", defaultValue = "glorot_uniform", paramLabel = "KIND[:SCALE]",
            description = "Kernel initializer, optionally scaled, e.g. he_normal, random_normal:1.0 or orthogonal:1.1"
                    + " (default: ${DEFAULT-VALUE}): ${COMPLETION-CANDIDATES}.",
            completionCandidates = InitializerIds.class)
    String init;

    /** The optimizers' ids, as {@code --optimizer} takes them ({@link OptimizerKind}'s table). */
    static final List<String> OPTIMIZERS = OptimizerKind.ids();

    /** RMSprop's rho and every optimizer's epsilon when not given: Keras's. */
    static final double DEFAULT_RHO = 0.9;
    static final double DEFAULT_EPSILON = 1e-7;

    /** The config keys of {@code --bn-momentum} and {@code --bn-epsilon}, recorded with {@code batch_norm} true. */
    static final String BATCH_NORM_MOMENTUM = "batch_norm_momentum";
    static final String BATCH_NORM_EPSILON = "batch_norm_epsilon";
    /**
     * {@link BatchNormalization#DEFAULT_EPSILON} as the number one types, which configs record (the float itself
     * would print as 0.0010000000474974513); the layer gets it as that float.
     */
    static final double DEFAULT_BATCH_NORM_EPSILON = 1e-3;

    /** Everything resolved and checked, ready to build the model. */
    record Resolved(Mlp.HiddenUnits units, int[] hidden, Loss loss, Initializer initializer, String optimizerId,
                    double learningRate, double momentum, boolean nesterov, double rho, boolean centered,
                    double weightDecay, double dropout, boolean batchNorm, double batchNormMomentum,
                    double batchNormEpsilon, double labelSmoothing, boolean amsgrad, double initialAccumulator) {

        /**
         * Without rmsprop's settings, weight decay (Keras's defaults), dropout, batch normalization and label
         * smoothing.
         */
        Resolved(Mlp.HiddenUnits units, int[] hidden, Loss loss, Initializer initializer, String optimizerId,
                 double learningRate, double momentum, boolean nesterov) {
            this(units, hidden, loss, initializer, optimizerId, learningRate, momentum, nesterov, DEFAULT_RHO, false,
                    0, 0, false, BatchNormalization.DEFAULT_MOMENTUM, DEFAULT_BATCH_NORM_EPSILON, 0, false,
                    Adagrad.DEFAULT_INITIAL_ACCUMULATOR);
        }

        /** The same settings with batch normalization on (with this run's momentum and epsilon) or off. */
        Resolved withBatchNorm(boolean on) {
            return new Resolved(units, hidden, loss, initializer, optimizerId, learningRate, momentum, nesterov, rho,
                    centered, weightDecay, dropout, on, batchNormMomentum, batchNormEpsilon, labelSmoothing, amsgrad,
                    initialAccumulator);
        }

        Sequential build(Backend backend, long seed, int inputs, int classes) {
            return build(backend, seed, inputs, classes, initializer);
        }

        /**
         * The network to load saved weights into (evaluate, predict, export), which overwrite every parameter: its
         * kernels start at zeros rather than from {@link #initializer}, whose draw would be thrown away and can
         * cost seconds (orthogonal's QR: 15 s for a 2048 x 2048 kernel). {@link #config()} still names the run's
         * initializer.
         */
        Sequential buildToLoad(Backend backend, int inputs, int classes) {
            return build(backend, 0, inputs, classes, Initializer.zeros());
        }

        private Sequential build(Backend backend, long seed, int inputs, int classes, Initializer kernels) {
            Sequential model = Mlp.build(backend, seed, inputs, hidden, classes, units, kernels, dropout,
                    batchNorm, batchNormMomentum, (float) batchNormEpsilon);
            return model.compile(newOptimizer(), loss, labelSmoothing, "accuracy");
        }

        /** The optimizer's row of {@link OptimizerKind}'s table. */
        OptimizerKind optimizer() {
            return OptimizerKind.of(optimizerId);
        }

        Optimizer newOptimizer() {
            return optimizer().create(this);
        }

        Map<String, Object> config() {
            Map<String, Object> c = new LinkedHashMap<>();
            c.put("activation", units.activation());
            c.put("activation_parameter", Double.isNaN(units.parameter()) ? null : units.parameter());
            c.put("learn_parameter", units.learnable());
            c.put("maxout_pieces", units.maxoutPieces());
            c.put("hidden", hidden);
            c.put("dropout", dropout);
            c.put("batch_norm", batchNorm);
            if (batchNorm) { // the normalisation's own settings, only where there is one
                c.put(BATCH_NORM_MOMENTUM, batchNormMomentum);
                c.put(BATCH_NORM_EPSILON, batchNormEpsilon);
            }
            c.put("loss", loss.id());
            c.put("label_smoothing", labelSmoothing);
            c.put("optimizer", newOptimizer().config());
            c.put("init", initializer.toString());
            return c;
        }
    }

    /** {@code --init}'s initializer; an unknown one or a bad scale becomes {@code invalid}'s exception. */
    static Initializer kernelInitializer(String init, Function<String, RuntimeException> invalid) {
        try {
            return Initializer.parse(init);
        } catch (IllegalArgumentException e) {
            throw invalid.apply("--init: " + e.getMessage());
        }
    }

    /** Checks every choice; a bad one is a usage error that lists the valid values. */
    Resolved resolve(RunOptions run) {
        run.validate();
        return resolve(run::usage);
    }

    /** Checks every choice; a bad one becomes {@code invalid}'s exception, whose message lists the valid values. */
    Resolved resolve(Function<String, RuntimeException> invalid) {
        Mlp.HiddenUnits units;
        Loss resolvedLoss;
        Initializer initializer;
        if (activationParameter != null && !Double.isFinite(activationParameter)) {
            throw invalid.apply("--activation-parameter must be a finite number, got " + activationParameter);
        }
        try {
            units = new Mlp.HiddenUnits(activation, activationParameter == null ? Double.NaN : activationParameter,
                    learnParameter, maxoutPieces);
        } catch (IllegalArgumentException e) {
            throw invalid.apply("--activation: " + e.getMessage()
                    + (e.getMessage().contains("valid:") ? "" : "; valid: " + Mlp.HiddenUnits.validIds()));
        }
        try {
            resolvedLoss = Loss.fromId(loss);
        } catch (IllegalArgumentException e) {
            throw invalid.apply("--loss: " + e.getMessage());
        }
        initializer = kernelInitializer(init, invalid);
        OptimizerKind kind;
        try {
            kind = OptimizerKind.of(optimizer.id);
        } catch (IllegalArgumentException e) {
            throw invalid.apply("--optimizer: " + e.getMessage());
        }
        String opt = kind.id();
        List<String> notApplying = new ArrayList<>();
        for (OptimizerKind.Setting setting : OptimizerKind.Setting.values()) {
            if (optimizer.given(setting) && !kind.takes(setting)) {
                notApplying.add(setting.option);
            }
        }
        if (!notApplying.isEmpty()) {
            throw invalid.apply(String.join(", ", notApplying) + (notApplying.size() == 1 ? " does" : " do")
                    + " not apply to --optimizer " + opt + " (" + OptimizerKind.Setting.whichApplyWhere() + ")");
        }
        Double learningRate = optimizer.learningRate;
        Double momentum = optimizer.momentum;
        Double rho = optimizer.rho;
        Double weightDecay = optimizer.weightDecay;
        Double initialAccumulator = optimizer.initialAccumulator;
        double lr = learningRate != null ? learningRate : kind.defaultLearningRate();
        // Checked as the floats the kernels compute with (Optimizer.isPositiveFloat, isFloatFraction).
        if (!Optimizer.isPositiveFloat(lr)) {
            throw invalid.apply("--learning-rate must be a positive number that a float can hold, got " + lr);
        }
        double resolvedMomentum = momentum == null ? 0 : momentum;
        if (!Optimizer.isFloatFraction(resolvedMomentum)) {
            throw invalid.apply("--momentum must be in [0, 1) as a float (0.99999999 is 1), got " + momentum);
        }
        double resolvedRho = rho == null ? DEFAULT_RHO : rho;
        if (!Optimizer.isFloatFraction(resolvedRho)) {
            throw invalid.apply("--rho must be in [0, 1) as a float (0.99999999 is 1), got " + rho);
        }
        double resolvedDecay = weightDecay != null ? weightDecay : kind.defaultWeightDecay();
        if (!Optimizer.isNonNegativeFloat(resolvedDecay)) {
            throw invalid.apply("--weight-decay must be a number >= 0 that a float can hold, got " + weightDecay);
        }
        double resolvedAccumulator = initialAccumulator == null ? Adagrad.DEFAULT_INITIAL_ACCUMULATOR
                : initialAccumulator;
        if (!Optimizer.isNonNegativeFloat(resolvedAccumulator)) {
            throw invalid.apply("--initial-accumulator must be a number >= 0 that a float can hold, got "
                    + initialAccumulator);
        }
        if (!(dropout >= 0 && dropout < 1) || (float) dropout >= 1) {
            throw invalid.apply("--dropout must be a rate in [0, 1) (0 is none), got " + dropout);
        }
        try {
            resolvedLoss.requireLabelSmoothing(labelSmoothing);
        } catch (IllegalArgumentException e) {
            throw invalid.apply("--label-smoothing: " + e.getMessage());
        }
        if (batchNorm && units.activation().equals(Mlp.MAXOUT)) {
            throw invalid.apply("--batch-norm goes between a Dense layer and its activation; maxout units have no"
                    + " separate activation (use another --activation)");
        }
        List<String> withoutBatchNorm = new ArrayList<>();
        if (batchNormMomentum != null && !batchNorm) {
            withoutBatchNorm.add("--bn-momentum");
        }
        if (batchNormEpsilon != null && !batchNorm) {
            withoutBatchNorm.add("--bn-epsilon");
        }
        if (!withoutBatchNorm.isEmpty()) {
            throw invalid.apply(String.join(", ", withoutBatchNorm) + " only " + (withoutBatchNorm.size() == 1
                    ? "applies" : "apply") + " with --batch-norm (they set its layers' moving statistics)");
        }
        double resolvedBnMomentum = batchNormMomentum == null ? BatchNormalization.DEFAULT_MOMENTUM
                : batchNormMomentum;
        // As the kernels take them: float momentum and 1 - momentum, float epsilon.
        if (!Optimizer.isFloatFraction(resolvedBnMomentum)) {
            throw invalid.apply("--bn-momentum must be in [0, 1) as a float (0.99999999 is 1), got "
                    + batchNormMomentum);
        }
        double resolvedBnEpsilon = batchNormEpsilon == null ? DEFAULT_BATCH_NORM_EPSILON : batchNormEpsilon;
        if (!Optimizer.isPositiveFloat(resolvedBnEpsilon)) {
            throw invalid.apply("--bn-epsilon must be a positive number that a float can hold, got "
                    + batchNormEpsilon);
        }
        if (hidden.length == 0 || Arrays.stream(hidden).anyMatch(w -> w < 1)) {
            throw invalid.apply("--hidden needs widths >= 1, got " + Arrays.toString(hidden));
        }
        if (units.activation().equals(Mlp.MAXOUT)
                && Arrays.stream(hidden).anyMatch(w -> (long) w * units.maxoutPieces() > Integer.MAX_VALUE)) {
            throw invalid.apply("--maxout-pieces " + units.maxoutPieces() + " with --hidden " + Arrays.toString(hidden)
                    + " gives a layer more than " + Integer.MAX_VALUE + " pre-activations per row");
        }
        // + 0.0 makes a given -0 the 0 it means, so that configs record 0.0 and compare finds no difference
        return new Resolved(units, hidden.clone(), resolvedLoss, initializer, opt, lr, resolvedMomentum + 0.0,
                optimizer.nesterov, resolvedRho, optimizer.centered, resolvedDecay + 0.0, dropout + 0.0, batchNorm,
                resolvedBnMomentum + 0.0,
                resolvedBnEpsilon, labelSmoothing + 0.0, optimizer.amsgrad, resolvedAccumulator + 0.0);
    }

    /**
     * The options a run's saved {@code config} ({@link Resolved#config()}, as history.json and weights files
     * hold it) was made from, for rebuilding its network to evaluate it (the optimizer is Adam with its
     * defaults: evaluation does not use it); {@code where} names the file in errors.
     *
     * @throws InvalidDataException when a field the model needs is missing or of the wrong type
     */
    static ModelOptions fromConfig(Map<String, Object> config, String where) {
        ModelOptions options = new ModelOptions();
        options.activation = configText(config, "activation", where);
        Object parameter = config.get("activation_parameter");
        if (parameter != null && !(parameter instanceof Number)) {
            throw new InvalidDataException(where + ": config.activation_parameter is not a number: " + parameter);
        }
        options.activationParameter = parameter == null ? null : ((Number) parameter).doubleValue();
        Object learn = config.get("learn_parameter");
        if (learn != null && !(learn instanceof Boolean)) {
            throw new InvalidDataException(where + ": config.learn_parameter is not true or false: " + learn);
        }
        options.learnParameter = Boolean.TRUE.equals(learn);
        Object pieces = config.get("maxout_pieces");
        if (pieces != null && !(pieces instanceof Integer)) {
            throw new InvalidDataException(where + ": config.maxout_pieces is not a count: " + pieces);
        }
        options.maxoutPieces = pieces == null ? 2 : (Integer) pieces; // 2: the option's default
        if (!(config.get("hidden") instanceof List<?> widths)
                || widths.stream().anyMatch(w -> !(w instanceof Integer))) {
            throw new InvalidDataException(where + ": config.hidden is not a list of layer widths: "
                    + config.get("hidden"));
        }
        options.hidden = widths.stream().mapToInt(w -> (Integer) w).toArray();
        Object dropout = config.get("dropout");
        if (dropout != null && !(dropout instanceof Number)) {
            throw new InvalidDataException(where + ": config.dropout is not a rate: " + dropout);
        }
        options.dropout = dropout == null ? 0 : ((Number) dropout).doubleValue(); // 0: a run from before dropout
        Object batchNorm = config.get("batch_norm");
        if (batchNorm != null && !(batchNorm instanceof Boolean)) {
            throw new InvalidDataException(where + ": config.batch_norm is not true or false: " + batchNorm);
        }
        options.batchNorm = Boolean.TRUE.equals(batchNorm); // absent: a run from before batch normalization
        if (options.batchNorm) { // absent: a run from before --bn-momentum and --bn-epsilon, with Keras's defaults
            options.batchNormMomentum = optionalNumber(config, BATCH_NORM_MOMENTUM, where);
            options.batchNormEpsilon = optionalNumber(config, BATCH_NORM_EPSILON, where);
        }
        options.loss = configText(config, "loss", where);
        Object smoothing = config.get("label_smoothing");
        if (smoothing != null && !(smoothing instanceof Number)) {
            throw new InvalidDataException(where + ": config.label_smoothing is not a number: " + smoothing);
        }
        // 0: a run from before label smoothing
        options.labelSmoothing = smoothing == null ? 0 : ((Number) smoothing).doubleValue();
        options.init = configText(config, "init", where);
        // evaluating does not depend on the optimizer, so the config's is not read: the options keep adam
        return options;
    }

    /**
     * {@link #fromConfig} with the config's optimizer too (its id, learning rate, momentum, Nesterov flag, rho,
     * centered flag, weight decay, AMSGrad flag and initial accumulator value, each as far as the config has it),
     * for going on with a saved run.
     *
     * @throws InvalidDataException when the optimizer's config is missing or malformed
     */
    static ModelOptions fromConfigWithOptimizer(Map<String, Object> config, String where) {
        ModelOptions options = fromConfig(config, where);
        if (!(config.get("optimizer") instanceof Map<?, ?> optimizer) || !(optimizer.get("name") instanceof String id)
                || !(optimizer.get("learning_rate") instanceof Number lr)) {
            throw new InvalidDataException(where + ": config.optimizer is not an optimizer's name and settings: "
                    + config.get("optimizer"));
        }
        OptimizerOptions settings = options.optimizer;
        settings.id = id;
        settings.learningRate = lr.doubleValue();
        settings.momentum = number(optimizer, "momentum", where);
        settings.nesterov = flag(optimizer, "nesterov", where);
        settings.rho = number(optimizer, "rho", where);
        settings.centered = flag(optimizer, "centered", where);
        settings.weightDecay = number(optimizer, "weight_decay", where); // absent from runs saved before it existed
        settings.amsgrad = flag(optimizer, "amsgrad", where); // absent from adam runs saved before it existed
        settings.initialAccumulator = number(optimizer, "initial_accumulator_value", where);
        return options;
    }

    /** {@code optimizer.key} as a number, null when absent; something else there is the file's fault. */
    private static Double number(Map<?, ?> optimizer, String key, String where) {
        Object value = optimizer.get(key);
        if (value != null && !(value instanceof Number)) {
            throw new InvalidDataException(where + ": config.optimizer." + key + " is not a number: " + value);
        }
        return value == null ? null : ((Number) value).doubleValue();
    }

    /** {@code optimizer.key} as true or false, false when absent; something else there is the file's fault. */
    private static boolean flag(Map<?, ?> optimizer, String key, String where) {
        Object value = optimizer.get(key);
        if (value != null && !(value instanceof Boolean)) {
            throw new InvalidDataException(where + ": config.optimizer." + key + " is not true or false: " + value);
        }
        return Boolean.TRUE.equals(value);
    }

    /** {@code config.key} as a number, null when absent; something else there is the file's fault. */
    private static Double optionalNumber(Map<String, Object> config, String key, String where) {
        Object value = config.get(key);
        if (value != null && !(value instanceof Number)) {
            throw new InvalidDataException(where + ": config." + key + " is not a number: " + value);
        }
        return value == null ? null : ((Number) value).doubleValue();
    }

    private static String configText(Map<String, Object> config, String key, String where) {
        if (!(config.get(key) instanceof String text)) {
            throw new InvalidDataException(where + ": config." + key + " is missing or not a string: "
                    + config.get(key));
        }
        return text;
    }

    /** The activation ids, for help text and shell completion. */
    static final class ActivationIds implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return Arrays.asList(Mlp.HiddenUnits.validIds().split(", ")).iterator();
        }
    }

    /** The initializer ids, as {@code --init} takes them. */
    static final class InitializerIds implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return Arrays.asList(Initializer.validIds().split(", ")).iterator();
        }
    }
}
