package dev.gradscope.cli;

import dev.gradscope.nn.Adagrad;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import picocli.CommandLine.Option;

/**
 * The optimizer options, shared by {@code train} (through {@link ModelOptions}) and {@code experiment init}: every
 * optimizer of {@link OptimizerKind}'s table with the settings that apply to it, checked by {@link
 * ModelOptions#resolve}. The command that owns them names its default optimizer.
 */
final class OptimizerOptions {
    /** Its initial value, the owner's default optimizer, is what the help shows as the default. */
    @Option(names = "--optimizer", paramLabel = "ID", completionCandidates = OptimizerKind.Ids.class,
            description = "${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    String id;

    @Option(names = "--learning-rate", paramLabel = "LR",
            description = "Learning rate (default: Keras's, 0.01 for sgd, 0.001 for the others).")
    Double learningRate;

    @Option(names = "--momentum", paramLabel = "M", description = "Momentum of sgd or rmsprop, in [0, 1) (default: 0).")
    Double momentum;

    @Option(names = "--nesterov", description = "Nesterov momentum for sgd.")
    boolean nesterov;

    @Option(names = "--rho", paramLabel = "RHO",
            description = "rmsprop's discount of the squared gradients' moving average, in [0, 1) (default: 0.9).")
    Double rho;

    @Option(names = "--centered",
            description = "Centered rmsprop: divides by the gradient's estimated variance, not its second moment.")
    boolean centered;

    @Option(names = "--amsgrad", description = "adam's or adamw's AMSGrad variant (Keras's amsgrad=True).")
    boolean amsgrad;

    @Option(names = "--initial-accumulator", paramLabel = "A",
            description = "adagrad's starting accumulator value, >= 0 (default: Keras's, 0.1).")
    Double initialAccumulator;

    @Option(names = "--weight-decay", paramLabel = "WD",
            description = "Decoupled weight decay, Keras 3's, for any optimizer: p -= p * WD * lr before each"
                    + " update (default: 0.004 for adamw, Keras's AdamW, 0 for the others).")
    Double weightDecay;

    /** Options whose optimizer is {@code defaultId} unless {@code --optimizer} says otherwise. */
    OptimizerOptions(String defaultId) {
        this.id = defaultId;
    }

    /** {@code train}'s: adam unless {@code --optimizer} says otherwise. */
    OptimizerOptions() {
        this(OptimizerKind.ADAM.id());
    }

    /** Whether the command line gave {@code setting}'s option. */
    boolean given(OptimizerKind.Setting setting) {
        return switch (setting) {
            case MOMENTUM -> momentum != null;
            case NESTEROV -> nesterov;
            case RHO -> rho != null;
            case CENTERED -> centered;
            case AMSGRAD -> amsgrad;
            case INITIAL_ACCUMULATOR -> initialAccumulator != null;
        };
    }

    /**
     * {@code model} with these optimizer settings, resolved and checked by {@link ModelOptions#resolve(Function)}:
     * an unknown optimizer or a setting that does not apply to it becomes {@code invalid}'s exception, with train's
     * message.
     */
    ModelOptions.Resolved resolve(ModelOptions model, Function<String, RuntimeException> invalid) {
        model.optimizer = this;
        return model.resolve(invalid);
    }

    /**
     * The settings of {@code model}'s optimizer that differ from its defaults, as {@code [option, value]} pairs
     * ({@code value} null for a flag), in the options' order: what a command line or a description has to say
     * besides the optimizer and its learning rate.
     */
    static List<String[]> nonDefaultSettings(ModelOptions.Resolved model) {
        OptimizerKind kind = model.optimizer();
        List<String[]> settings = new ArrayList<>();
        if (kind.takes(OptimizerKind.Setting.RHO) && model.rho() != ModelOptions.DEFAULT_RHO) {
            settings.add(new String[] {"--rho", number(model.rho())});
        }
        if (kind.takes(OptimizerKind.Setting.MOMENTUM) && model.momentum() > 0) {
            settings.add(new String[] {"--momentum", number(model.momentum())});
        }
        if (model.nesterov()) {
            settings.add(new String[] {"--nesterov", null});
        }
        if (model.centered()) {
            settings.add(new String[] {"--centered", null});
        }
        if (model.amsgrad()) {
            settings.add(new String[] {"--amsgrad", null});
        }
        if (kind.takes(OptimizerKind.Setting.INITIAL_ACCUMULATOR)
                && model.initialAccumulator() != Adagrad.DEFAULT_INITIAL_ACCUMULATOR) {
            settings.add(new String[] {"--initial-accumulator", number(model.initialAccumulator())});
        }
        if (model.weightDecay() != kind.defaultWeightDecay()) {
            settings.add(new String[] {"--weight-decay", number(model.weightDecay())});
        }
        return settings;
    }

    /**
     * The options that choose {@code model}'s optimizer, as a command line gives them: {@code --optimizer} and
     * {@code --learning-rate} always, the others where they differ from the optimizer's defaults.
     */
    static String arguments(ModelOptions.Resolved model) {
        StringBuilder sb = new StringBuilder(" --optimizer ").append(model.optimizerId()).append(" --learning-rate ")
                .append(number(model.learningRate()));
        for (String[] setting : nonDefaultSettings(model)) {
            sb.append(' ').append(setting[0]);
            if (setting[1] != null) {
                sb.append(' ').append(setting[1]);
            }
        }
        return sb.toString();
    }

    /**
     * "plain SGD (lr 0.01, no momentum)", "SGD (lr 0.01, momentum 0.9, Nesterov)", "rmsprop (lr 0.001, rho 0.8,
     * momentum 0.9, centered)", "adagrad (lr 0.001, initial accumulator 0.5)": the optimizer as the pages name it,
     * with every setting that differs from its defaults.
     */
    static String text(ModelOptions.Resolved model) {
        boolean sgd = model.optimizer() == OptimizerKind.SGD;
        StringBuilder sb = new StringBuilder(sgd ? (model.momentum() > 0 ? "SGD" : "plain SGD") : model.optimizerId())
                .append(" (lr ").append(number(model.learningRate()));
        if (sgd && model.momentum() == 0) {
            sb.append(", no momentum");
        }
        for (String[] setting : nonDefaultSettings(model)) {
            String words = switch (setting[0]) {
                case "--nesterov" -> "Nesterov";
                case "--amsgrad" -> "AMSGrad";
                default -> setting[0].substring(2).replace('-', ' ');
            };
            sb.append(", ").append(words);
            if (setting[1] != null) {
                sb.append(' ').append(setting[1]);
            }
        }
        return sb.append(")").toString();
    }

    /** 0.01, 0.9, 1: a setting as the user would type it; the double's shortest text, which parses back to it. */
    private static String number(double value) {
        return ExperimentCommand.scaleText(value);
    }
}
