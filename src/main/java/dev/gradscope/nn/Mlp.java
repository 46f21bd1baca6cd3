package dev.gradscope.nn;

import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import java.util.Arrays;
import java.util.Locale;

/**
 * Builds the multilayer perceptrons the chapter trains: dense hidden layers of one activation and a
 * softmax output. The chapter's network is {@code 784-512-256-128-64-10}.
 */
public final class Mlp {
    /** The chapter's hidden widths. */
    public static final int[] CHAPTER_HIDDEN = {512, 256, 128, 64};

    /** The id that selects {@link Maxout} hidden layers instead of an element-wise activation. */
    public static final String MAXOUT = "maxout";

    private Mlp() {
    }

    /**
     * How every hidden layer computes its units.
     *
     * @param activation   an element-wise {@link ActivationKind} id, or {@code "maxout"}
     * @param parameter    alpha or beta, or NaN for the kind's default
     * @param learnable    whether that parameter is learned (always for prelu)
     * @param maxoutPieces pieces per unit for maxout
     */
    public record HiddenUnits(String activation, double parameter, boolean learnable, int maxoutPieces) {
        public HiddenUnits {
            activation = activation.trim().toLowerCase(Locale.ROOT);
            if (!activation.equals(MAXOUT)) {
                ActivationKind kind;
                try {
                    kind = ActivationKind.fromId(activation);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("unknown activation '" + activation + "'; valid: "
                            + validIds(), e);
                }
                if (!kind.isElementWise()) {
                    throw new IllegalArgumentException("hidden layers cannot use " + kind.id()
                            + "; it is the output activation");
                }
                if (learnable && !kind.hasParameter()) {
                    throw new IllegalArgumentException(kind.id() + " has no parameter to learn");
                }
            } else if (maxoutPieces < 1) {
                throw new IllegalArgumentException("maxout needs at least 1 piece per unit, got " + maxoutPieces);
            }
        }

        /** Units of {@code activation} with its default parameter; maxout with 2 pieces. */
        public static HiddenUnits of(String activation) {
            return new HiddenUnits(activation, Double.NaN, false, 2);
        }

        /** Every valid choice, for help and error messages. */
        public static String validIds() {
            return Arrays.stream(ActivationKind.values()).filter(ActivationKind::isElementWise)
                    .map(ActivationKind::id).reduce((a, b) -> a + ", " + b).orElse("") + ", " + MAXOUT;
        }
    }

    /**
     * A compiled-ready model: {@code inputs -> hidden[0] -> ... -> classes (softmax)}, every hidden layer
     * made of {@code units}, every kernel drawn from {@code kernelInitializer}.
     */
    public static Sequential build(Backend backend, long seed, int inputs, int[] hidden, int classes,
                                   HiddenUnits units, Initializer kernelInitializer) {
        return build(backend, seed, inputs, hidden, classes, units, kernelInitializer, 0);
    }

    /**
     * {@link #build(Backend, long, int, int[], int, HiddenUnits, Initializer)} with a {@link Dropout} of
     * {@code dropoutRate} after every hidden layer (after its activation), where Keras's MNIST MLP example puts
     * them; none when the rate is 0. Dropout has no parameters, so the weights are those of the model without it.
     */
    public static Sequential build(Backend backend, long seed, int inputs, int[] hidden, int classes,
                                   HiddenUnits units, Initializer kernelInitializer, double dropoutRate) {
        return build(backend, seed, inputs, hidden, classes, units, kernelInitializer, dropoutRate, false);
    }

    /**
     * {@link #build(Backend, long, int, int[], int, HiddenUnits, Initializer, double)}, with, when
     * {@code batchNorm}, a {@link BatchNormalization} between each hidden layer's product and its activation, the
     * paper's place and Keras's idiom: {@code Dense (linear) -> BatchNormalization -> Activation}. The Dense keeps
     * its bias (Keras's examples drop it with {@code use_bias=False}): the normalisation subtracts the batch mean,
     * so the bias changes nothing, gets a zero gradient (up to rounding) and stays where weight decay leaves it.
     * Maxout units have no pre-activation to normalise and are refused.
     */
    public static Sequential build(Backend backend, long seed, int inputs, int[] hidden, int classes,
                                   HiddenUnits units, Initializer kernelInitializer, double dropoutRate,
                                   boolean batchNorm) {
        return build(backend, seed, inputs, hidden, classes, units, kernelInitializer, dropoutRate, batchNorm,
                BatchNormalization.DEFAULT_MOMENTUM, BatchNormalization.DEFAULT_EPSILON);
    }

    /**
     * {@link #build(Backend, long, int, int[], int, HiddenUnits, Initializer, double, boolean)} whose
     * normalisations have this momentum and epsilon ({@link BatchNormalization#BatchNormalization(double, float)});
     * both are ignored without {@code batchNorm}.
     */
    public static Sequential build(Backend backend, long seed, int inputs, int[] hidden, int classes,
                                   HiddenUnits units, Initializer kernelInitializer, double dropoutRate,
                                   boolean batchNorm, double batchNormMomentum, float batchNormEpsilon) {
        Dropout.requireRate(dropoutRate); // NaN would add no layer without saying so
        if (batchNorm && units.activation().equals(MAXOUT)) {
            throw new IllegalArgumentException("batch normalization goes between a Dense layer and its activation;"
                    + " maxout units have no separate activation to put it before");
        }
        Sequential model = new Sequential(backend, seed).input(inputs);
        for (int width : hidden) {
            if (batchNorm) {
                addNormalizedHidden(model, width, units, kernelInitializer,
                        new BatchNormalization(batchNormMomentum, batchNormEpsilon));
            } else {
                addHidden(model, width, units, kernelInitializer);
            }
            if (dropoutRate > 0) {
                model.add(new Dropout(dropoutRate));
            }
        }
        model.add(new Dense(classes, ActivationKind.SOFTMAX).kernelInitializer(kernelInitializer));
        model.build(inputs);
        return model;
    }

    /** {@code Dense (linear) -> BatchNormalization -> the activation as its own layer}. */
    private static void addNormalizedHidden(Sequential model, int width, HiddenUnits units, Initializer init,
                                            BatchNormalization normalization) {
        ActivationKind kind = ActivationKind.fromId(units.activation());
        double parameter = Double.isNaN(units.parameter()) ? kind.defaultParameter() : units.parameter();
        model.add(new Dense(width).kernelInitializer(init));
        model.add(normalization);
        if (kind == ActivationKind.PRELU) {
            model.add(new PReLU(parameter, true));
        } else {
            model.add(new ActivationLayer(kind, parameter, units.learnable(), false));
        }
    }

    private static void addHidden(Sequential model, int width, HiddenUnits units, Initializer init) {
        if (units.activation().equals(MAXOUT)) {
            model.add(new Maxout(width, units.maxoutPieces()).kernelInitializer(init));
            return;
        }
        ActivationKind kind = ActivationKind.fromId(units.activation());
        double parameter = Double.isNaN(units.parameter()) ? kind.defaultParameter() : units.parameter();
        if (kind == ActivationKind.PRELU) {
            model.add(new Dense(width).kernelInitializer(init));
            model.add(new PReLU(parameter, true));
        } else if (units.learnable()) {
            model.add(new Dense(width).kernelInitializer(init));
            model.add(new ActivationLayer(kind, parameter, true, false));
        } else {
            model.add(new Dense(width, kind, parameter).kernelInitializer(init));
        }
    }
}
