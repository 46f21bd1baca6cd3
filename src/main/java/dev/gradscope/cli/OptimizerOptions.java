package dev.gradscope.cli;

import dev.gradscope.nn.Adagrad;
import dev.gradscope.nn.Adam;
import java.util.function.Function;
import picocli.CommandLine.Option;

/**
 * An experiment's optimizer, chosen with {@code train}'s options and checked by {@link ModelOptions#resolve}: every
 * optimizer {@code train} accepts, with the settings that apply to it, and each one refused as {@code train} refuses
 * it. The experiment names its default optimizer ({@link #resolve}).
 */
final class OptimizerOptions {
    @Option(names = "--optimizer", paramLabel = "ID",
            description = "adam, adamw, sgd, rmsprop, nadam, adamax or adagrad (default: the experiment's).")
    String optimizer;

    @Option(names = "--learning-rate", paramLabel = "LR",
            description = "Learning rate (default: Keras's, 0.01 for sgd, 0.001 for the others).")
    Double learningRate;

    @Option(names = "--momentum", paramLabel = "M", description = "Momentum of sgd or rmsprop (default: 0).")
    Double momentum;

    @Option(names = "--nesterov", description = "Nesterov momentum for sgd.")
    boolean nesterov;

    @Option(names = "--rho", paramLabel = "RHO",
            description = "rmsprop's discount of the squared gradients' moving average, in [0, 1) (default: 0.9).")
    Double rho;

    @Option(names = "--centered", description = "Centered rmsprop.")
    boolean centered;

    @Option(names = "--amsgrad", description = "adam's or adamw's AMSGrad variant.")
    boolean amsgrad;

    @Option(names = "--initial-accumulator", paramLabel = "A",
            description = "adagrad's starting accumulator value, >= 0 (default: Keras's, 0.1).")
    Double initialAccumulator;

    @Option(names = "--weight-decay", paramLabel = "WD",
            description = "Decoupled weight decay (default: 0.004 for adamw, 0 for the others).")
    Double weightDecay;

    /**
     * {@code model} with these optimizer settings ({@code defaultId} when {@code --optimizer} is not given), resolved
     * and checked by {@link ModelOptions#resolve(Function)}: an unknown optimizer or a setting that does not apply to
     * it becomes {@code invalid}'s exception, with train's message.
     */
    ModelOptions.Resolved resolve(ModelOptions model, String defaultId, Function<String, RuntimeException> invalid) {
        model.optimizer = optimizer != null ? optimizer : defaultId;
        model.learningRate = learningRate;
        model.momentum = momentum;
        model.nesterov = nesterov;
        model.rho = rho;
        model.centered = centered;
        model.amsgrad = amsgrad;
        model.initialAccumulator = initialAccumulator;
        model.weightDecay = weightDecay;
        return model.resolve(invalid);
    }

    /**
     * The options that choose {@code model}'s optimizer, as a command line gives them: {@code --optimizer} and
     * {@code --learning-rate} always, the others where they differ from the optimizer's defaults.
     */
    static String arguments(ModelOptions.Resolved model) {
        String id = model.optimizerId();
        StringBuilder sb = new StringBuilder(" --optimizer ").append(id).append(" --learning-rate ")
                .append(ExperimentCommand.scaleText(model.learningRate()));
        if (model.momentum() > 0) {
            sb.append(" --momentum ").append(ExperimentCommand.scaleText(model.momentum()));
        }
        if (model.nesterov()) {
            sb.append(" --nesterov");
        }
        if (id.equals("rmsprop") && model.rho() != 0.9) {
            sb.append(" --rho ").append(ExperimentCommand.scaleText(model.rho()));
        }
        if (model.centered()) {
            sb.append(" --centered");
        }
        if (model.amsgrad()) {
            sb.append(" --amsgrad");
        }
        if (id.equals("adagrad") && model.initialAccumulator() != Adagrad.DEFAULT_INITIAL_ACCUMULATOR) {
            sb.append(" --initial-accumulator ").append(ExperimentCommand.scaleText(model.initialAccumulator()));
        }
        if (model.weightDecay() != (id.equals("adamw") ? Adam.ADAMW_WEIGHT_DECAY : 0)) {
            sb.append(" --weight-decay ").append(ExperimentCommand.scaleText(model.weightDecay()));
        }
        return sb.toString();
    }

    /**
     * "plain SGD (lr 0.01, no momentum)", "SGD (lr 0.01, momentum 0.9, Nesterov)", "rmsprop (lr 0.001, momentum 0.9)": the optimizer
     * as the pages name it.
     */
    static String text(ModelOptions.Resolved model) {
        String id = model.optimizerId();
        StringBuilder sb = new StringBuilder();
        if (id.equals("sgd")) {
            sb.append(model.momentum() > 0 ? "SGD" : "plain SGD").append(" (lr ")
                    .append(ExperimentCommand.scaleText(model.learningRate()))
                    .append(model.momentum() > 0 ? ", momentum " + ExperimentCommand.scaleText(model.momentum())
                            + (model.nesterov() ? ", Nesterov" : "") : ", no momentum");
        } else {
            sb.append(id).append(" (lr ").append(ExperimentCommand.scaleText(model.learningRate()));
            if (model.momentum() > 0) {
                sb.append(", momentum ").append(ExperimentCommand.scaleText(model.momentum()));
            }
            if (model.centered()) {
                sb.append(", centered");
            }
            if (model.amsgrad()) {
                sb.append(", AMSGrad");
            }
        }
        if (model.weightDecay() > 0) {
            sb.append(", weight decay ").append(ExperimentCommand.scaleText(model.weightDecay()));
        }
        return sb.append(")").toString();
    }
}
