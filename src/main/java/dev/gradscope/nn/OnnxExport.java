package dev.gradscope.nn;

import com.google.protobuf.CodedOutputStream;
import dev.gradscope.data.AtomicFiles;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.tensor.ActivationKind;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A built {@link Sequential} as an <a href="https://onnx.ai">ONNX</a> model, what Keras 3's
 * {@code model.export(path, format="onnx")} and PyTorch's {@code torch.onnx.export} write: the inference graph,
 * runnable by ONNX Runtime (or any ONNX runtime) from any language, with the model's weights inside.
 *
 * <p>The graph: one input {@value #INPUT} {@code float [batch, inputs]} (batch symbolic) and two outputs,
 * {@value #LOGITS} (the output layer's {@code x · W + b}, what the model's losses and accuracy take) and
 * {@value #PROBABILITIES} (their softmax over the last axis): {@link Sequential#predictLogits} and, for the
 * softmax output layer every command builds, {@link Sequential#predict} (a linear output layer's predict gives the
 * logits themselves). Each {@link Dense} is a {@code Gemm} ({@code transB = 0}: the kernel is
 * {@code [in, out]}, as here) followed by its activation; a {@link Maxout} is a {@code Gemm} to
 * {@code units * pieces}, a {@code Reshape} to {@code [batch, units, pieces]} and a {@code ReduceMax} over the
 * pieces (piece {@code p} of unit {@code u} is column {@code u * pieces + p}); a {@link BatchNormalization} is the
 * inference {@code BatchNormalization} op with the moving statistics and the layer's epsilon; a {@link Dropout}
 * is nothing (inference passes through it). Initializers are named as the weights file names the tensors
 * ({@code dense.kernel}, {@code p_re_lu.alpha}, {@code batch_normalization.moving_mean}).
 *
 * <p>Every activation kind is exported with GradScope's definition ({@link ActivationKind}): an ONNX operator
 * where one computes the same function with the same parameter (Relu, Sigmoid, Tanh, Elu, Selu, Celu,
 * LeakyRelu, PRelu, Softplus, Softsign, Atan, HardSigmoid with alpha 1/6 and beta 1/2 (ONNX's default alpha is
 * Keras 2's 0.2), HardSwish, Clip for hardtanh and relu6), otherwise a composite of basic operators: step is
 * {@code Cast(x > 0)} (NaN kept NaN), gelu the exact erf form, swish and silu {@code x * Sigmoid(beta x)}, mish
 * {@code x * Tanh(Softplus(x))}, log_sigmoid {@code -Softplus(-x)}, bent_identity {@code x (x / (h + 1)) / 2 + x}
 * with {@code h = hypot(x, 1)} scaled as hypot scales it (the form of the backends: no cancellation near 0, no
 * overflow of x^2). A learned parameter is an
 * initializer: PReLU's slopes feed {@code PRelu}, a learned swish beta its {@code Mul}, a learned elu or celu
 * alpha its composite. Opset {@value #OPSET} (IR version {@value #IR_VERSION}), widely supported: GELU and Mish,
 * operators only from opsets 20 and 18, are composed instead.
 *
 * <p>The file is an ONNX {@code ModelProto} encoded here with protobuf's {@link CodedOutputStream}, field by field,
 * without generated classes (as {@link dev.gradscope.data.TensorBoardEvents} writes its events). The field numbers,
 * from onnx.proto: {@code ModelProto} 1 ir_version, 2 producer_name, 3 producer_version, 7 graph, 8 opset_import,
 * 14 metadata_props ({@code StringStringEntryProto} 1 key, 2 value);
 * {@code OperatorSetIdProto} 1 domain, 2 version; {@code GraphProto} 1 node, 2 name, 5 initializer, 11 input,
 * 12 output; {@code NodeProto} 1 input, 2 output, 3 name, 4 op_type, 5 attribute; {@code AttributeProto} 1 name,
 * 2 f, 3 i, 7 floats, 8 ints, 20 type; {@code TensorProto} 1 dims, 2 data_type, 8 name, 9 raw_data (little-endian);
 * {@code ValueInfoProto} 1 name, 2 type; {@code TypeProto} 1 tensor_type; {@code TypeProto.Tensor} 1 elem_type,
 * 2 shape; {@code TensorShapeProto} 1 dim; {@code Dimension} 1 dim_value, 2 dim_param. onnx.proto is proto2, so
 * repeated numbers are written unpacked, one field each.
 */
public final class OnnxExport {
    /** The ONNX IR version of the files written: 8, ONNX 1.10's (with opset 17, ONNX Runtime 1.12 or later reads them). */
    public static final int IR_VERSION = 8;
    /** The default-domain opset the graph uses. */
    public static final int OPSET = 17;

    /** The graph's input: a batch of rows of the model's input features. */
    public static final String INPUT = "input";
    /** The graph's first output: the output layer's pre-activation. */
    public static final String LOGITS = "logits";
    /** The graph's second output: the softmax of the logits over the last axis. */
    public static final String PROBABILITIES = "probabilities";
    /** The symbolic name of the batch dimension. */
    public static final String BATCH = "batch";

    /** The program named in the file's {@code producer_name}. */
    public static final String PRODUCER = "gradscope";

    // onnx.proto's enums
    private static final int TENSOR_FLOAT = 1;
    private static final int TENSOR_INT64 = 7;
    private static final int ATTRIBUTE_FLOAT = 1;
    private static final int ATTRIBUTE_INT = 2;
    private static final int ATTRIBUTE_INTS = 7;

    /** SELU's constants, as {@link ActivationKind#SELU} gives them (ONNX's defaults are their float roundings). */
    private static final double SELU_ALPHA = 1.6732632423543772848170429916717;
    private static final double SELU_SCALE = 1.0507009873554804934193349852946;

    private OnnxExport() {
    }

    /** What {@link #write} wrote: the file, its size, and the graph's outputs' width. */
    public record Written(Path file, long bytes, int inputs, int outputs) {
    }

    /**
     * Writes {@code model} to {@code file} as ONNX, through a temporary file and one move (the old file or the new
     * one, never half of one).
     *
     * @throws IllegalArgumentException when the model holds a layer that cannot be exported, or its output is not a
     *                                  softmax or linear Dense layer
     * @throws IllegalStateException    when a weight is NaN or infinite (nothing is written then)
     */
    public static Written write(Sequential model, Path file) {
        return write(model, file, Map.of());
    }

    /**
     * {@link #write(Sequential, Path)} with {@code metadata} in the model's {@code metadata_props}, the key-value
     * strings ONNX runtimes hand back with the model (ONNX Runtime's {@code modelmeta.custom_metadata_map}), in the
     * map's order: what a user of the file needs besides the graph, such as the names of the classes.
     */
    public static Written write(Sequential model, Path file, Map<String, String> metadata) {
        byte[] bytes = encode(model, metadata);
        AtomicFiles.write(file, out -> out.write(bytes));
        return new Written(file, bytes.length, model.inputUnits(), model.outputUnits());
    }

    /**
     * {@code model} as the bytes of an ONNX {@code ModelProto}.
     *
     * @throws IllegalArgumentException as {@link #write}
     * @throws IllegalStateException    as {@link #write}
     */
    public static byte[] encode(Sequential model) {
        return encode(model, Map.of());
    }

    /** {@link #encode(Sequential)} with {@code metadata} in the model's {@code metadata_props}. */
    public static byte[] encode(Sequential model, Map<String, String> metadata) {
        if (!model.isBuilt()) {
            throw new IllegalStateException("ONNX export: the model is not built yet (call build(inputUnits) or fit)");
        }
        List<Layer> layers = model.layers();
        Layer last = layers.get(layers.size() - 1);
        if (!(last instanceof Dense output)
                || (output.activation() != ActivationKind.SOFTMAX && output.activation() != ActivationKind.LINEAR)) {
            throw new IllegalArgumentException("ONNX export: the output layer must be Dense with a softmax (or linear)"
                    + " activation, whose pre-activation is the logits; got " + last.name() + " (" + last.typeName()
                    + ", " + last.describe() + ")");
        }
        List<SafeTensors.Entry> entries = WeightsFile.entries(model);
        Optional<String> nonFinite = WeightsFile.firstNonFinite(entries);
        if (nonFinite.isPresent()) {
            throw new IllegalStateException("ONNX export: " + nonFinite.get() + " (an exported model holds finite"
                    + " numbers only)");
        }
        Map<String, SafeTensors.Entry> tensors = new LinkedHashMap<>();
        entries.forEach(e -> tensors.put(e.name(), e));

        Graph graph = new Graph();
        String h = INPUT;
        for (int i = 0; i < layers.size() - 1; i++) {
            h = layer(graph, layers.get(i), h, tensors);
        }
        graph.op(output.name(), "Gemm", List.of(), LOGITS, h, graph.weight(tensors, output.name() + ".kernel"),
                graph.weight(tensors, output.name() + ".bias"));
        graph.op(output.name(), "Softmax", List.of(Attribute.integer("axis", -1)), PROBABILITIES, LOGITS);

        byte[] graphProto = message(out -> {
            for (byte[] node : graph.nodes) {
                out.writeByteArray(1, node);
            }
            out.writeString(2, PRODUCER);
            for (byte[] initializer : graph.initializers) {
                out.writeByteArray(5, initializer);
            }
            out.writeByteArray(11, valueInfo(INPUT, model.inputUnits()));
            out.writeByteArray(12, valueInfo(LOGITS, model.outputUnits()));
            out.writeByteArray(12, valueInfo(PROBABILITIES, model.outputUnits()));
        });
        byte[] opset = message(out -> out.writeInt64(2, OPSET)); // domain "" (the default) is left unset
        return message(out -> {
            out.writeInt64(1, IR_VERSION);
            out.writeString(2, PRODUCER);
            out.writeString(3, producerVersion());
            out.writeByteArray(7, graphProto);
            out.writeByteArray(8, opset);
            for (Map.Entry<String, String> entry : metadata.entrySet()) {
                out.writeByteArray(14, message(property -> { // StringStringEntryProto: 1 key, 2 value
                    property.writeString(1, entry.getKey());
                    property.writeString(2, entry.getValue());
                }));
            }
        });
    }

    /** The nodes of one layer, which reads the value {@code x}; returns the name of its output value. */
    private static String layer(Graph graph, Layer layer, String x, Map<String, SafeTensors.Entry> tensors) {
        String name = layer.name();
        if (layer instanceof Dense dense) {
            String z = graph.op(name, "Gemm", List.of(), graph.fresh(name + "/pre_activation"), x,
                    graph.weight(tensors, name + ".kernel"), graph.weight(tensors, name + ".bias"));
            return activation(graph, name, dense.activation(), Parameter.fixed(dense.activationParameter()), z);
        }
        if (layer instanceof Maxout maxout) {
            String z = graph.op(name, "Gemm", List.of(), graph.fresh(name + "/pieces"), x,
                    graph.weight(tensors, name + ".kernel"), graph.weight(tensors, name + ".bias"));
            String shape = graph.int64s(name + "/shape", -1, maxout.outputUnits(), maxout.pieces());
            String grouped = graph.op(name, "Reshape", List.of(), graph.fresh(name + "/grouped"), z, shape);
            // opset 17's ReduceMax takes its axes as an attribute (an input only from opset 18)
            return graph.op(name, "ReduceMax", List.of(Attribute.integers("axes", 2), Attribute.integer("keepdims", 0)),
                    graph.fresh(name + "/output"), grouped);
        }
        if (layer instanceof ActivationLayer activation) {
            ActivationKind kind = activation.kind();
            Parameter parameter = activation.learnable()
                    ? Parameter.learned(graph.weight(tensors, name + "." + kind.parameterName()))
                    : Parameter.fixed(activation.initialParameter());
            return activation(graph, name, kind, parameter, x);
        }
        if (layer instanceof BatchNormalization norm) {
            return graph.op(name, "BatchNormalization", List.of(Attribute.real("epsilon", norm.epsilon())),
                    graph.fresh(name + "/output"), x, graph.weight(tensors, name + ".gamma"),
                    graph.weight(tensors, name + ".beta"), graph.weight(tensors, name + ".moving_mean"),
                    graph.weight(tensors, name + ".moving_variance"));
        }
        if (layer instanceof Dropout) {
            return x; // inference: the identity
        }
        throw new IllegalArgumentException("ONNX export: layer " + name + " (" + layer.typeName() + ") has no ONNX"
                + " form yet");
    }

    /** An activation's parameter: fixed (an attribute, or a constant), or learned, the initializer {@code tensor}. */
    private record Parameter(float value, String tensor) {
        static Parameter fixed(double value) {
            return new Parameter((float) value, null); // the kernels take it as a float, so does ONNX
        }

        static Parameter learned(String tensor) {
            return new Parameter(Float.NaN, tensor);
        }

        boolean isLearned() {
            return tensor != null;
        }
    }

    /**
     * The nodes that apply {@code kind} to the value {@code x}, with GradScope's definition of the kind (see
     * {@link ActivationKind}); returns the name of the output value. The switch has no default: a kind added to
     * {@link ActivationKind} does not compile until it has an ONNX form here.
     */
    private static String activation(Graph g, String layer, ActivationKind kind, Parameter p, String x) {
        String y = g.fresh(layer + "/output");
        return switch (kind) {
            case LINEAR -> x;
            case STEP -> {
                // NaN stays NaN, as both backends give it: Cast(x > 0) alone would make it a clean 0
                String positive = g.op(layer, "Cast", List.of(Attribute.integer("to", TENSOR_FLOAT)),
                        g.fresh(layer + "/step"), g.op(layer, "Greater", x, g.constant(0)));
                yield g.op(layer, "Where", List.of(), y, g.op(layer, "IsNaN", x), x, positive);
            }
            case SIGMOID -> g.op(layer, "Sigmoid", List.of(), y, x);
            case TANH -> g.op(layer, "Tanh", List.of(), y, x);
            case HARD_TANH -> g.op(layer, "Clip", List.of(), y, x, g.constant(-1), g.constant(1));
            case ARCTAN -> g.op(layer, "Atan", List.of(), y, x);
            case SOFTSIGN -> g.op(layer, "Softsign", List.of(), y, x);
            case BENT_IDENTITY -> {
                // x (x / (h + 1)) / 2 + x with h = hypot(x, 1), as the backends compute it: h = s sqrt((x/s)^2 +
                // (1/s)^2) with s = max(|x|, 1) does not overflow x^2 for |x| above 1.8e19 (s = 1 for |x| <= 1)
                String scale = g.op(layer, "Max", g.op(layer, "Abs", x), g.constant(1));
                String xs = g.op(layer, "Div", x, scale);
                String inverse = g.op(layer, "Div", g.constant(1), scale);
                String hypot = g.op(layer, "Mul", scale, g.op(layer, "Sqrt", g.op(layer, "Add",
                        g.op(layer, "Mul", xs, xs), g.op(layer, "Mul", inverse, inverse))));
                String ratio = g.op(layer, "Div", x, g.op(layer, "Add", hypot, g.constant(1)));
                yield g.op(layer, "Add", List.of(), y, g.op(layer, "Mul", g.op(layer, "Mul", x, ratio),
                        g.constant(0.5f)), x);
            }
            case RELU -> g.op(layer, "Relu", List.of(), y, x);
            // LeakyRelu is x for x >= 0 and alpha x below: the same function, 0 included
            case LEAKY_RELU, PRELU -> p.isLearned()
                    ? g.op(layer, "PRelu", List.of(), y, x, p.tensor())
                    : g.op(layer, "LeakyRelu", List.of(Attribute.real("alpha", p.value())), y, x);
            case ELU -> p.isLearned()
                    ? negativePiece(g, layer, y, x, g.op(layer, "Mul", p.tensor(), expm1(g, layer, x)))
                    : g.op(layer, "Elu", List.of(Attribute.real("alpha", p.value())), y, x);
            case CELU -> p.isLearned()
                    ? negativePiece(g, layer, y, x,
                            g.op(layer, "Mul", p.tensor(), expm1(g, layer, g.op(layer, "Div", x, p.tensor()))))
                    : celu(g, layer, y, x, p.value());
            case SWISH -> g.op(layer, "Mul", List.of(), y, x, g.op(layer, "Sigmoid",
                    g.op(layer, "Mul", x, p.isLearned() ? p.tensor() : g.constant(p.value()))));
            case SOFTMAX -> g.op(layer, "Softmax", List.of(Attribute.integer("axis", -1)), y, x);
            case GELU -> { // x Phi(x) = x (1 + erf(x / sqrt 2)) / 2: the Gelu operator is opset 20's
                String erf = g.op(layer, "Erf", g.op(layer, "Div", x, g.constant((float) Math.sqrt(2))));
                yield g.op(layer, "Mul", List.of(), y, g.op(layer, "Mul", x, g.constant(0.5f)),
                        g.op(layer, "Add", erf, g.constant(1)));
            }
            case SELU -> g.op(layer, "Selu", List.of(Attribute.real("alpha", (float) SELU_ALPHA),
                    Attribute.real("gamma", (float) SELU_SCALE)), y, x);
            case SILU -> g.op(layer, "Mul", List.of(), y, x, g.op(layer, "Sigmoid", x));
            case MISH -> // the Mish operator is opset 18's
                    g.op(layer, "Mul", List.of(), y, x, g.op(layer, "Tanh", g.op(layer, "Softplus", x)));
            case SOFTPLUS -> g.op(layer, "Softplus", List.of(), y, x);
            case RELU6 -> g.op(layer, "Clip", List.of(), y, x, g.constant(0), g.constant(6));
            case HARD_SIGMOID -> g.op(layer, "HardSigmoid", List.of(Attribute.real("alpha", 1f / 6),
                    Attribute.real("beta", 0.5f)), y, x);
            case HARD_SWISH -> g.op(layer, "HardSwish", List.of(), y, x); // alpha 1/6, beta 1/2: relu6(x + 3) / 6
            case LOG_SIGMOID -> g.op(layer, "Neg", List.of(), y, g.op(layer, "Softplus", g.op(layer, "Neg", x)));
        };
    }

    /** Celu with a fixed alpha; alpha 0, which the operator would divide by, is refused as the layers refuse it. */
    private static String celu(Graph g, String layer, String y, String x, float alpha) {
        if (alpha == 0) {
            throw new IllegalArgumentException("ONNX export: " + layer + " is celu with alpha 0, which divides by 0");
        }
        return g.op(layer, "Celu", List.of(Attribute.real("alpha", alpha)), y, x);
    }

    /** {@code e^v - 1}. */
    private static String expm1(Graph g, String layer, String v) {
        return g.op(layer, "Sub", g.op(layer, "Exp", v), g.constant(1));
    }

    /** {@code x if x > 0, else negative}: the ELU family's two pieces, for a learned (per-unit) alpha. */
    private static String negativePiece(Graph g, String layer, String y, String x, String negative) {
        return g.op(layer, "Where", List.of(), y, g.op(layer, "Greater", x, g.constant(0)), x, negative);
    }

    /** A float tensor {@code [batch, width]} as the graph's inputs and outputs declare it. */
    private static byte[] valueInfo(String name, int width) {
        byte[] batch = message(out -> out.writeString(2, BATCH));
        byte[] units = message(out -> out.writeInt64(1, width));
        byte[] shape = message(out -> {
            out.writeByteArray(1, batch);
            out.writeByteArray(1, units);
        });
        byte[] tensorType = message(out -> {
            out.writeInt32(1, TENSOR_FLOAT);
            out.writeByteArray(2, shape);
        });
        byte[] type = message(out -> out.writeByteArray(1, tensorType));
        return message(out -> {
            out.writeString(1, name);
            out.writeByteArray(2, type);
        });
    }

    private static String producerVersion() {
        return dev.gradscope.Version.text();
    }

    /** One attribute of a node: a float, an int or a list of ints. */
    private record Attribute(String name, int type, float f, long i, long[] ints) {
        static Attribute real(String name, float value) {
            return new Attribute(name, ATTRIBUTE_FLOAT, value, 0, null);
        }

        static Attribute integer(String name, long value) {
            return new Attribute(name, ATTRIBUTE_INT, 0, value, null);
        }

        static Attribute integers(String name, long... values) {
            return new Attribute(name, ATTRIBUTE_INTS, 0, 0, values);
        }

        byte[] encode() {
            return message(out -> {
                out.writeString(1, name);
                switch (type) {
                    case ATTRIBUTE_FLOAT -> out.writeFloat(2, f);
                    case ATTRIBUTE_INT -> out.writeInt64(3, i);
                    case ATTRIBUTE_INTS -> {
                        for (long v : ints) {
                            out.writeInt64(8, v);
                        }
                    }
                    default -> throw new IllegalStateException("attribute type " + type);
                }
                out.writeInt32(20, type);
            });
        }
    }

    /** The nodes and initializers of the graph being built, with unique names for its values and nodes. */
    private static final class Graph {
        final List<byte[]> nodes = new ArrayList<>();
        final List<byte[]> initializers = new ArrayList<>();
        private final Map<String, Integer> used = new HashMap<>();
        private final Map<Float, String> constants = new HashMap<>();
        private final Map<String, String> weights = new HashMap<>();

        Graph() {
            for (String name : List.of(INPUT, LOGITS, PROBABILITIES)) {
                used.put(name, 1); // the graph's own names: no other value may take them
            }
        }

        /** {@code base}, or {@code base_1}, {@code base_2}... when taken: names in a graph are unique. */
        String fresh(String base) {
            int n = used.merge(base, 1, Integer::sum);
            return n == 1 ? base : fresh(base + "_" + (n - 1));
        }

        /** A node of {@code layer} with no attributes, writing a new value; returns its name. */
        String op(String layer, String opType, String... inputs) {
            return op(layer, opType, List.of(), fresh(layer + "/" + opType), inputs);
        }

        /** A node of {@code layer} writing the value {@code output}; returns {@code output}. */
        String op(String layer, String opType, List<Attribute> attributes, String output, String... inputs) {
            String nodeName = fresh(layer + "/" + opType + "_node");
            nodes.add(message(out -> {
                for (String input : inputs) {
                    out.writeString(1, input);
                }
                out.writeString(2, output);
                out.writeString(3, nodeName);
                out.writeString(4, opType);
                for (Attribute a : attributes) {
                    out.writeByteArray(5, a.encode());
                }
            }));
            return output;
        }

        /** The model's tensor {@code name} as an initializer of the same name (added once); returns the name. */
        String weight(Map<String, SafeTensors.Entry> tensors, String name) {
            SafeTensors.Entry entry = tensors.get(name);
            if (entry == null) {
                throw new IllegalStateException("ONNX export: the model has no tensor " + name);
            }
            return weights.computeIfAbsent(name, n -> {
                long[] dims = new long[entry.shape().length];
                for (int d = 0; d < dims.length; d++) {
                    dims[d] = entry.shape()[d];
                }
                // the initializer's name is the graph's name of the tensor: whatever fresh gives, not n
                return floats(fresh(n), dims, entry.values());
            });
        }

        /** A float scalar initializer, one per value in the graph; returns its name. */
        String constant(float value) {
            return constants.computeIfAbsent(value, v -> floats(fresh("constant/" + v), new long[0],
                    new float[] {v}));
        }

        /** An int64 vector initializer (a shape); returns its name. */
        String int64s(String base, long... values) {
            String name = fresh(base);
            ByteBuffer raw = ByteBuffer.allocate(values.length * Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            for (long v : values) {
                raw.putLong(v);
            }
            initializers.add(tensor(name, new long[] {values.length}, TENSOR_INT64, raw.array()));
            return name;
        }

        private String floats(String name, long[] dims, float[] values) {
            ByteBuffer raw = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            raw.asFloatBuffer().put(values);
            initializers.add(tensor(name, dims, TENSOR_FLOAT, raw.array()));
            return name;
        }

        private static byte[] tensor(String name, long[] dims, int dataType, byte[] raw) {
            return message(out -> {
                for (long d : dims) {
                    out.writeInt64(1, d);
                }
                out.writeInt32(2, dataType);
                out.writeString(8, name);
                out.writeByteArray(9, raw);
            });
        }
    }

    /** What writes the fields of one message. */
    @FunctionalInterface
    private interface Fields {
        void writeTo(CodedOutputStream out) throws IOException;
    }

    /** One message's bytes, which its parent writes as a length-delimited field. */
    private static byte[] message(Fields fields) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        CodedOutputStream out = CodedOutputStream.newInstance(bytes);
        try {
            fields.writeTo(out);
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not throw
        }
        return bytes.toByteArray();
    }
}
