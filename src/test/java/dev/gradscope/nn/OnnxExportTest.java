package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.onnxruntime.OrtException;
import com.google.protobuf.CodedInputStream;
import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link OnnxExport} against ONNX Runtime: every activation kind, maxout, PReLU, learned parameters, batch
 * normalization and dropout, in small 784-16-8-10 models with random weights, give in ONNX Runtime the logits and
 * probabilities that {@link Sequential#predictLogits} and {@link Sequential#predict} give, on inputs whose
 * pre-activations cover every region of every activation (checked, not assumed).
 */
class OnnxExportTest {
    private static final int INPUTS = 784;
    private static final int[] HIDDEN = {16, 8};
    private static final int CLASSES = 10;

    /** Input rows: random signs and magnitudes, from 0 up to 40 times a unit scale. */
    private static final float[][] X = inputs(7);

    private static final Backend CPU = new CpuBackend();

    @TempDir
    Path tmp;

    @AfterAll
    static void closeBackend() {
        CPU.close();
    }

    /** Rows of uniform values in [-s, s] for scales s from 0 (an all-zero row) to 40. */
    private static float[][] inputs(long seed) {
        double[] scales = {0, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 4, 8, 16, 40};
        SplittableRandom random = new SplittableRandom(seed);
        List<float[]> rows = new ArrayList<>();
        for (double scale : scales) {
            for (int copy = 0; copy < 3; copy++) {
                float[] row = new float[INPUTS];
                for (int i = 0; i < INPUTS; i++) {
                    row[i] = (float) (scale * random.nextDouble(-1, 1));
                }
                rows.add(row);
            }
        }
        return rows.toArray(float[][]::new);
    }

    /**
     * Every parameter and moving statistic drawn at random, so that no value is its initial one (biases 0, PReLU
     * slopes 0.25, gamma 1, moving variance 1) and a tensor wired to the wrong input shows: biases in [-0.5, 0.5],
     * activation alphas in [0.05, 1.2] (one per unit where the layer has one per unit), swish betas in [0.3, 2.5],
     * gamma in [0.5, 2], moving means in [-0.5, 0.5] and variances in [0.3, 3]; kernels keep their glorot draw.
     */
    private static Sequential randomized(Sequential model, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] parameters = model.parameters().toFloatArray();
        for (Sequential.ParameterGroup g : model.parameterGroups()) {
            boolean norm = g.layer() instanceof BatchNormalization;
            for (int i = g.offset(); i < g.offset() + g.slot().size(); i++) {
                parameters[i] = (float) switch (g.slot().name()) {
                    case "kernel" -> parameters[i];
                    case "bias" -> random.nextDouble(-0.5, 0.5);
                    case "alpha" -> random.nextDouble(0.05, 1.2);
                    case "beta" -> norm ? random.nextDouble(-0.5, 0.5) : random.nextDouble(0.3, 2.5);
                    case "gamma" -> random.nextDouble(0.5, 2);
                    default -> throw new IllegalStateException("no random values for " + g.slot().name());
                };
            }
        }
        model.backend().copyFromHost(parameters, model.parameters());
        if (model.state() != null) {
            float[] state = model.state().toFloatArray();
            for (Sequential.StateGroup g : model.stateGroups()) {
                for (int i = g.offset(); i < g.offset() + g.slot().size(); i++) {
                    state[i] = (float) (g.slot().name().equals("moving_mean") ? random.nextDouble(-0.5, 0.5)
                            : random.nextDouble(0.3, 3));
                }
            }
            model.backend().copyFromHost(state, model.state());
        }
        return model;
    }

    /** A non-default fixed parameter for the kinds that have one, so that the export cannot fall back on a default. */
    private static double fixedParameter(ActivationKind kind) {
        return switch (kind) {
            case LEAKY_RELU -> 0.2;
            case ELU -> 0.7;
            case CELU -> 1.6;
            case SWISH -> 1.7;
            case PRELU -> 0.3; // the starting value: PReLU learns its slopes, which randomized() then draws
            default -> Double.NaN;
        };
    }

    private static Sequential mlp(Mlp.HiddenUnits units, double dropout, boolean batchNorm, long seed) {
        return randomized(Mlp.build(CPU, seed, INPUTS, HIDDEN, CLASSES, units, Initializer.glorotUniform(), dropout,
                batchNorm), seed + 100);
    }

    /** 784-16-8-10 with {@code kind} in both hidden layers; softmax, not element-wise, as hidden Dense layers. */
    private static Sequential modelOf(ActivationKind kind, long seed) {
        if (kind == ActivationKind.SOFTMAX) {
            Sequential model = new Sequential(CPU, seed).input(INPUTS);
            for (int width : HIDDEN) {
                model.add(new Dense(width, ActivationKind.SOFTMAX));
            }
            model.add(new Dense(CLASSES, ActivationKind.SOFTMAX));
            return randomized(model.build(INPUTS), seed + 100);
        }
        return mlp(new Mlp.HiddenUnits(kind.id(), fixedParameter(kind), false, 2), 0, false, seed);
    }

    @ParameterizedTest
    @EnumSource(ActivationKind.class)
    void everyActivationKindRunsInOnnxRuntimeAsInGradScope(ActivationKind kind) throws Exception {
        try (Sequential model = modelOf(kind, 11 + kind.ordinal())) {
            assertSameOutputs(model, kind.id());
        }
    }

    /** Learned parameters, one shared value or one per unit, are initializers holding the trained values. */
    @ParameterizedTest
    @EnumSource(value = ActivationKind.class, names = {"LEAKY_RELU", "ELU", "PRELU", "SWISH", "CELU"})
    void learnedParametersExportTheirValuesSharedOrPerUnit(ActivationKind kind) throws Exception {
        for (boolean perUnit : new boolean[] {false, true}) {
            Sequential model = new Sequential(CPU, 5).input(INPUTS);
            for (int width : HIDDEN) {
                model.add(new Dense(width));
                model.add(new ActivationLayer(kind, kind.defaultParameter(), true, perUnit));
            }
            model.add(new Dense(CLASSES, ActivationKind.SOFTMAX));
            try (Sequential built = randomized(model.build(INPUTS), 6)) {
                assertSameOutputs(built, kind.id() + (perUnit ? ", learned per unit" : ", learned, shared"));
                assertTrue(initializerNames(OnnxExport.encode(built)).contains("activation." + kind.parameterName()));
            }
        }
    }

    @Test
    void maxoutTakesTheLargestOfEachUnitsPieces() throws Exception {
        for (int pieces : new int[] {1, 3}) {
            try (Sequential model = mlp(new Mlp.HiddenUnits(Mlp.MAXOUT, Double.NaN, false, pieces), 0, false, 21)) {
                assertSameOutputs(model, "maxout, pieces " + pieces);
            }
        }
    }

    @Test
    void prelusLearnedSlopesAreExported() throws Exception {
        try (Sequential model = mlp(Mlp.HiddenUnits.of("prelu"), 0, false, 22)) {
            float[] slopes = WeightsFile.entries(model).stream().filter(e -> e.name().equals("p_re_lu.alpha"))
                    .findFirst().orElseThrow().values();
            assertEquals(HIDDEN[0], slopes.length);
            assertNotEquals(0.25f, slopes[0]); // randomized, per unit
            assertSameOutputs(model, "prelu");
        }
    }

    @Test
    void batchNormalizationUsesTheMovingStatisticsAndEpsilon() throws Exception {
        for (String activation : List.of("tanh", "prelu", "swish")) {
            try (Sequential model = mlp(new Mlp.HiddenUnits(activation, Double.NaN, activation.equals("swish"), 2),
                    0, true, 23)) {
                assertSameOutputs(model, activation + " with batch normalization");
            }
        }
    }

    /** A model trained (not drawn) with batch normalization and PReLU: the moving statistics a fit leaves. */
    @Test
    void aTrainedModelWithBatchNormalizationAndPreluExportsWhatItLearned() throws Exception {
        var mnist = dev.gradscope.data.MnistSubset.load();
        try (Sequential model = Mlp.build(CPU, 24, INPUTS, HIDDEN, CLASSES, Mlp.HiddenUnits.of("prelu"),
                Initializer.glorotUniform(), 0.2, true)) {
            model.compile(new Sgd(0.1, 0.9, false, 0), Loss.CATEGORICAL_CROSSENTROPY);
            float[] movingVariance = before(model, "batch_normalization.moving_variance");
            model.fit(mnist.train().take(512), 64, 1, null);
            assertNotEquals(movingVariance[0], before(model, "batch_normalization.moving_variance")[0]);
            assertNotEquals(0.25f, before(model, "p_re_lu.alpha")[0]);
            float[] images = mnist.test().take(100).scaledFeatures();
            float[][] rows = new float[100][];
            for (int r = 0; r < rows.length; r++) {
                rows[r] = Arrays.copyOfRange(images, r * INPUTS, (r + 1) * INPUTS);
            }
            assertSameOutputs(model, rows, "trained prelu with batch normalization and dropout", false);
        }
    }

    private static float[] before(Sequential model, String tensor) {
        return WeightsFile.entries(model).stream().filter(e -> e.name().equals(tensor)).findFirst().orElseThrow()
                .values();
    }

    @Test
    void dropoutIsTheIdentityInTheExportedGraph() throws Exception {
        try (Sequential model = mlp(Mlp.HiddenUnits.of("relu"), 0.5, false, 25)) {
            assertSameOutputs(model, "relu with dropout 0.5");
            assertEquals(List.of("Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"), opTypes(OnnxExport.encode(model)));
        }
    }

    @Test
    void theGraphHasNamedInputsOutputsAndInitializersAndASymbolicBatch() throws Exception {
        try (Sequential model = mlp(Mlp.HiddenUnits.of("prelu"), 0, true, 26)) {
            byte[] bytes = OnnxExport.encode(model);
            List<String> expected = WeightsFile.entries(model).stream().map(SafeTensors.Entry::name).toList();
            assertEquals(expected.stream().sorted().toList(), initializerNames(bytes).stream().sorted().toList());
            try (OnnxRuntimeModel onnx = OnnxRuntimeModel.of(bytes)) {
                assertEquals(List.of(OnnxExport.INPUT), List.copyOf(onnx.session().getInputNames()));
                assertEquals(List.of(OnnxExport.LOGITS, OnnxExport.PROBABILITIES),
                        List.copyOf(onnx.session().getOutputNames()));
                String input = onnx.session().getInputInfo().get(OnnxExport.INPUT).getInfo().toString();
                assertTrue(input.contains("shape=[-1, 784]"), input);
                assertTrue(input.contains("dimNames=[batch,\"\"]"), input);
                for (String output : List.of(OnnxExport.LOGITS, OnnxExport.PROBABILITIES)) {
                    String info = onnx.session().getOutputInfo().get(output).getInfo().toString();
                    assertTrue(info.contains("shape=[-1, 10]") && info.contains("dimNames=[batch,\"\"]"), info);
                }
                assertEquals(OnnxExport.PRODUCER, onnx.session().getMetadata().getProducerName());
                // any batch: one row, and more rows than the model was ever run with
                assertEquals(1, onnx.run(new float[][] {X[20]}).logits().length);
                assertEquals(X.length, onnx.run(X).probabilities().length);
            }
        }
    }

    @Test
    void writeReplacesTheFileAtomicallyAndReportsItsSize() throws IOException {
        try (Sequential model = mlp(Mlp.HiddenUnits.of("relu"), 0, false, 27)) {
            Path file = tmp.resolve("deeper/model.onnx");
            OnnxExport.Written written = OnnxExport.write(model, file);
            assertEquals(Files.size(file), written.bytes());
            assertEquals(INPUTS, written.inputs());
            assertEquals(CLASSES, written.outputs());
            assertTrue(Arrays.equals(OnnxExport.encode(model), Files.readAllBytes(file)));
            try (var listing = Files.list(file.getParent())) {
                assertEquals(List.of(file), listing.toList()); // no temporary file left
            }
        }
    }

    @Test
    void refusesModelsItCannotExportByName() {
        try (Sequential unbuilt = new Sequential(CPU, 1).add(new Dense(10, ActivationKind.SOFTMAX))) {
            assertTrue(assertThrows(IllegalStateException.class, () -> OnnxExport.encode(unbuilt)).getMessage()
                    .contains("not built"));
        }
        try (Sequential reluOutput = new Sequential(CPU, 1).add(new Dense(16)).add(new Dense(10, "relu"))
                .build(INPUTS)) {
            String message = assertThrows(IllegalArgumentException.class, () -> OnnxExport.encode(reluOutput))
                    .getMessage();
            assertTrue(message.contains("dense_1") && message.contains("softmax"), message);
        }
        try (Sequential model = mlp(Mlp.HiddenUnits.of("relu"), 0, false, 28)) {
            float[] parameters = model.parameters().toFloatArray();
            parameters[parameters.length - 1] = Float.NaN; // the output layer's last bias
            CPU.copyFromHost(parameters, model.parameters());
            String message = assertThrows(IllegalStateException.class, () -> OnnxExport.write(model,
                    tmp.resolve("nan.onnx"))).getMessage();
            assertTrue(message.contains("dense_2.bias[9] = NaN"), message);
            assertTrue(Files.notExists(tmp.resolve("nan.onnx")));
        }
    }

    /** {@link #assertSameOutputs(Sequential, float[][], String, boolean)} on {@link #X}, checking its coverage. */
    private static void assertSameOutputs(Sequential model, String what) throws OrtException {
        assertSameOutputs(model, X, what, true);
    }

    /**
     * Runs {@code model}'s export in ONNX Runtime on {@code x} and compares both outputs with the model's own,
     * element by element: logits within {@link Tolerances#ONNX_LOGITS_REL} of the row's largest |logit| (plus
     * {@link Tolerances#ONNX_LOGITS_ABS}), probabilities within {@link Tolerances#ONNX_PROBABILITY_ABS}. With
     * {@code checkCoverage}, first checks that the first layer's pre-activations reach every region of every
     * activation: below -10, [-10, -3), [-3, -1), [-1, -0.05), near 0, and the same above 0.
     */
    private static void assertSameOutputs(Sequential model, float[][] x, String what, boolean checkCoverage)
            throws OrtException {
        if (checkCoverage) {
            assertCoversEveryRegion(model, x, what);
        }
        float[][] logits = model.predictLogits(x, 16);
        float[][] probabilities = model.predict(x, 16);
        OnnxRuntimeModel.Outputs onnx;
        try (OnnxRuntimeModel runtime = OnnxRuntimeModel.of(OnnxExport.encode(model))) {
            onnx = runtime.run(x);
        }
        double worstLogit = 0;
        double worstProbability = 0;
        for (int r = 0; r < x.length; r++) {
            double rowScale = 0;
            for (float v : logits[r]) {
                rowScale = Math.max(rowScale, Math.abs(v));
            }
            for (int c = 0; c < CLASSES; c++) {
                double logitError = Math.abs(onnx.logits()[r][c] - logits[r][c]);
                double logitBound = Tolerances.ONNX_LOGITS_ABS + Tolerances.ONNX_LOGITS_REL * rowScale;
                worstLogit = Math.max(worstLogit, logitError / logitBound);
                double probabilityError = Math.abs(onnx.probabilities()[r][c] - probabilities[r][c]);
                worstProbability = Math.max(worstProbability, probabilityError / Tolerances.ONNX_PROBABILITY_ABS);
                if (!(logitError <= logitBound) || !(probabilityError <= Tolerances.ONNX_PROBABILITY_ABS)) {
                    fail(String.format("%s: row %d, class %d: logit %s in ONNX Runtime, %s in GradScope; probability"
                                    + " %s and %s", what, r, c, onnx.logits()[r][c], logits[r][c],
                            onnx.probabilities()[r][c], probabilities[r][c]));
                }
            }
        }
        if (System.getenv("GRADSCOPE_ONNX_REPORT") != null) {
            System.out.printf("%-50s worst logit error %.3f of the bound, probability %.3f%n", what, worstLogit,
                    worstProbability);
        }
    }

    private static final double[] REGION_EDGES = {-10, -3, -1, -0.05, 0.05, 1, 3, 6, 10};

    private static void assertCoversEveryRegion(Sequential model, float[][] x, String what) {
        Layer first = model.layers().get(0);
        Map<String, float[]> tensors = WeightsFile.entries(model).stream()
                .collect(Collectors.toMap(SafeTensors.Entry::name, SafeTensors.Entry::values));
        float[] kernel = tensors.get(first.name() + ".kernel");
        float[] bias = tensors.get(first.name() + ".bias");
        int width = bias.length;
        int[] counts = new int[REGION_EDGES.length + 1];
        for (float[] row : x) {
            for (int u = 0; u < width; u++) {
                double z = bias[u];
                for (int i = 0; i < INPUTS; i++) {
                    z += (double) row[i] * kernel[i * width + u];
                }
                int region = 0;
                while (region < REGION_EDGES.length && z >= REGION_EDGES[region]) {
                    region++;
                }
                counts[region]++;
            }
        }
        for (int region = 0; region < counts.length; region++) {
            assertTrue(counts[region] > 0, what + ": no pre-activation of " + first.name() + " in region " + region
                    + " of " + Arrays.toString(REGION_EDGES) + ": " + Arrays.toString(counts));
        }
    }

    // ---- reading the encoded ModelProto back (field numbers as OnnxExport documents them) -------------------

    /** The names of the graph's initializers: ModelProto.graph (7), GraphProto.initializer (5), TensorProto.name (8). */
    private static List<String> initializerNames(byte[] model) throws IOException {
        return graphFields(model, 5, tensor -> stringField(tensor, 8));
    }

    /** The op types of the graph's nodes, in order: GraphProto.node (1), NodeProto.op_type (4). */
    private static List<String> opTypes(byte[] model) throws IOException {
        return graphFields(model, 1, node -> stringField(node, 4));
    }

    private static List<String> graphFields(byte[] model, int field, Function<byte[], String> read)
            throws IOException {
        List<String> found = new ArrayList<>();
        for (byte[] graph : messages(model, 7)) {
            for (byte[] message : messages(graph, field)) {
                found.add(read.apply(message));
            }
        }
        return found;
    }

    private static List<byte[]> messages(byte[] message, int field) throws IOException {
        List<byte[]> found = new ArrayList<>();
        CodedInputStream in = CodedInputStream.newInstance(message);
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            if (tag >>> 3 == field) {
                found.add(in.readByteArray());
            } else {
                in.skipField(tag);
            }
        }
        return found;
    }

    private static String stringField(byte[] message, int field) {
        try {
            List<byte[]> values = messages(message, field);
            assertEquals(1, values.size());
            return new String(values.get(0), java.nio.charset.StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
