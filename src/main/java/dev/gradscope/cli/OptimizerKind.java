package dev.gradscope.cli;

import dev.gradscope.nn.Adagrad;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Adamax;
import dev.gradscope.nn.Nadam;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.RmsProp;
import dev.gradscope.nn.Sgd;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The optimizers {@code --optimizer} takes, one row each: the id, Keras's default learning rate and weight decay, the
 * settings that apply, how the model's optimizer is built from the resolved options, and how it sizes each
 * parameter's step. {@link ModelOptions}, {@link OptimizerOptions} and the experiments read this table rather than
 * listing the optimizers themselves.
 */
enum OptimizerKind {
    ADAM("adam", 1e-3, 0, EnumSet.of(Setting.AMSGRAD),
            m -> new Adam(m.learningRate(), 0.9, 0.999, ModelOptions.DEFAULT_EPSILON, m.weightDecay(), m.amsgrad()),
            "adam divides each parameter's step by the running root mean square of its gradient"),
    ADAMW("adamw", 1e-3, Adam.ADAMW_WEIGHT_DECAY, EnumSet.of(Setting.AMSGRAD),
            m -> Adam.adamW(m.learningRate(), m.weightDecay(), m.amsgrad()),
            "adamw divides each parameter's step by the running root mean square of its gradient"),
    SGD("sgd", 1e-2, 0, EnumSet.of(Setting.MOMENTUM, Setting.NESTEROV),
            m -> new Sgd(m.learningRate(), m.momentum(), m.nesterov(), m.weightDecay()),
            "sgd's step is the learning rate times the gradient (with momentum, a decaying sum of such steps)"),
    RMSPROP("rmsprop", 1e-3, 0, EnumSet.of(Setting.MOMENTUM, Setting.RHO, Setting.CENTERED),
            m -> new RmsProp(m.learningRate(), m.rho(), m.momentum(), ModelOptions.DEFAULT_EPSILON, m.centered(),
                    m.weightDecay()),
            "rmsprop divides each parameter's step by the running root mean square of its gradient"),
    NADAM("nadam", 1e-3, 0, EnumSet.noneOf(Setting.class),
            m -> new Nadam(m.learningRate(), 0.9, 0.999, ModelOptions.DEFAULT_EPSILON, m.weightDecay()),
            "nadam divides each parameter's step by the running root mean square of its gradient"),
    ADAMAX("adamax", 1e-3, 0, EnumSet.noneOf(Setting.class),
            m -> new Adamax(m.learningRate(), 0.9, 0.999, ModelOptions.DEFAULT_EPSILON, m.weightDecay()),
            "adamax divides each parameter's step by a decaying maximum of its gradient's magnitude"),
    ADAGRAD("adagrad", 1e-3, 0, EnumSet.of(Setting.INITIAL_ACCUMULATOR),
            m -> new Adagrad(m.learningRate(), m.initialAccumulator(), ModelOptions.DEFAULT_EPSILON, m.weightDecay()),
            "adagrad divides each parameter's step by the root of its initial accumulator plus the sum of its"
                    + " squared gradients so far");

    /** The settings that apply to some optimizers only (the learning rate and weight decay apply to every one). */
    enum Setting {
        MOMENTUM("--momentum"), NESTEROV("--nesterov"), RHO("--rho"), CENTERED("--centered"), AMSGRAD("--amsgrad"),
        INITIAL_ACCUMULATOR("--initial-accumulator");

        /** The option that sets it. */
        final String option;

        Setting(String option) {
            this.option = option;
        }

        /**
         * "--momentum is for sgd and rmsprop, --nesterov for sgd, --rho and --centered for rmsprop, ...": every
         * setting with the optimizers it applies to, settings of the same optimizers together.
         */
        static String whichApplyWhere() {
            Map<String, List<String>> byOptimizers = new LinkedHashMap<>();
            for (Setting setting : values()) {
                byOptimizers.computeIfAbsent(setting.optimizers(), k -> new ArrayList<>()).add(setting.option);
            }
            List<String> parts = new ArrayList<>();
            byOptimizers.forEach((optimizers, options) -> parts.add(String.join(" and ", options)
                    + (parts.isEmpty() ? " is" : "") + " for " + optimizers));
            return String.join(", ", parts);
        }

        /** "sgd and rmsprop": the optimizers it applies to. */
        String optimizers() {
            List<String> ids = Arrays.stream(OptimizerKind.values()).filter(k -> k.takes(this))
                    .map(OptimizerKind::id).toList();
            return ids.size() == 1 ? ids.get(0)
                    : String.join(", ", ids.subList(0, ids.size() - 1)) + " and " + ids.get(ids.size() - 1);
        }
    }

    private final String id;
    private final double defaultLearningRate;
    private final double defaultWeightDecay;
    private final Set<Setting> settings;
    private final Function<ModelOptions.Resolved, Optimizer> constructor;
    private final String stepRule;

    OptimizerKind(String id, double defaultLearningRate, double defaultWeightDecay, Set<Setting> settings,
                  Function<ModelOptions.Resolved, Optimizer> constructor, String stepRule) {
        this.id = id;
        this.defaultLearningRate = defaultLearningRate;
        this.defaultWeightDecay = defaultWeightDecay;
        this.settings = settings;
        this.constructor = constructor;
        this.stepRule = stepRule;
    }

    /** As {@code --optimizer} takes it and configs record it, e.g. {@code rmsprop}. */
    String id() {
        return id;
    }

    /** Keras's default learning rate: the rate when {@code --learning-rate} is not given. */
    double defaultLearningRate() {
        return defaultLearningRate;
    }

    /** Keras's default decoupled weight decay: 0.004 for AdamW, 0 for the others. */
    double defaultWeightDecay() {
        return defaultWeightDecay;
    }

    /** Whether {@code setting} applies to this optimizer. */
    boolean takes(Setting setting) {
        return settings.contains(setting);
    }

    /** A new optimizer of this kind with {@code model}'s settings. */
    Optimizer create(ModelOptions.Resolved model) {
        return constructor.apply(model);
    }

    /** How it sizes each parameter's step, as a sentence's start: "adam divides each parameter's step by ...". */
    String stepRule() {
        return stepRule;
    }

    /** Whether it scales each parameter's step by a statistic of that parameter's own gradients (all but sgd). */
    boolean adaptive() {
        return this != SGD;
    }

    /** The kind of {@code id} (any case, surrounding spaces ignored); unknown ids name the valid ones. */
    static OptimizerKind of(String id) {
        String wanted = id.trim().toLowerCase(Locale.ROOT);
        return Arrays.stream(values()).filter(k -> k.id.equals(wanted)).findFirst().orElseThrow(
                () -> new IllegalArgumentException("unknown optimizer '" + id + "'; valid: " + validIds()));
    }

    /** "adam, adamw, sgd, ...": every id, for messages. */
    static String validIds() {
        return String.join(", ", ids());
    }

    /** Every id, in the table's order. */
    static List<String> ids() {
        return Arrays.stream(values()).map(OptimizerKind::id).toList();
    }

    /** The ids, for help text ({@code ${COMPLETION-CANDIDATES}}) and shell completion. */
    static final class Ids implements Iterable<String> {
        @Override
        public Iterator<String> iterator() {
            return ids().iterator();
        }
    }
}
