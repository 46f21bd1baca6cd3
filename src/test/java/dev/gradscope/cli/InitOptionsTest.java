package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.WeightsFile;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code --init} of {@code train}, {@code bench} and {@code experiment gradients}: every kind is taken and recorded
 * as given, identity starting each kernel at the eye of its shape; bad specs are usage errors that say why.
 */
class InitOptionsTest {
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        err.getBuffer().setLength(0);
        return GradScope.run(new PrintWriter(err, true), args);
    }

    /** What {@code command}'s model options resolve to, as picocli parses {@code options}. */
    private static ModelOptions.Resolved resolve(String command, String... options) {
        List<String> args = new ArrayList<>(List.of(command));
        args.addAll(List.of(options));
        CommandLine.ParseResult parsed = new CommandLine(new GradScope()).parseArgs(args.toArray(String[]::new));
        ModelOptions model = (ModelOptions) parsed.subcommand().commandSpec().mixins().get("model").userObject();
        return model.resolve(IllegalArgumentException::new);
    }

    @Test
    void trainAndBenchTakeEveryKindAndRecordItAsGiven() {
        for (String command : List.of("train", "bench")) {
            for (String spec : List.of("orthogonal", "orthogonal:1.5", "lecun_uniform", "truncated_normal",
                    "truncated_normal:0.1", "ones", "glorot_uniform")) {
                ModelOptions.Resolved resolved = resolve(command, "--init", spec);
                assertEquals(Initializer.parse(spec), resolved.initializer(), command + " --init " + spec);
                assertEquals(spec, resolved.config().get("init"), command + " --init " + spec);
            }
        }
    }

    /**
     * Review (inits): identity was refused for every MLP from 784 inputs to 10 classes; as Keras 3's Identity it
     * starts each kernel, square or not (maxout's [in, units * pieces] too), at the eye of its shape.
     */
    @Test
    void identityStartsEveryKernelOfTheMlpAtTheEyeOfItsShape() {
        for (String[] options : List.of(new String[] {"--init", "identity:0.5", "--hidden", "16,8"},
                new String[] {"--init", "identity:0.5", "--hidden", "6", "--activation", "maxout"})) {
            ModelOptions.Resolved resolved = resolve("train", options);
            assertEquals("identity:0.5", resolved.config().get("init"));
            int kernels = 0;
            try (CpuBackend cpu = new CpuBackend(); Sequential net = resolved.build(cpu, 1, 784, 10)) {
                for (Sequential.ParameterGroup g : net.parameterGroups()) {
                    if (!g.slot().name().equals("kernel")) {
                        continue;
                    }
                    kernels++;
                    int rows = g.slot().shape()[0];
                    int cols = g.slot().shape()[1];
                    float[] w = g.value().toFloatArray();
                    for (int i = 0; i < rows; i++) {
                        for (int j = 0; j < cols; j++) {
                            assertEquals(i == j ? 0.5f : 0f, w[i * cols + j], String.join(" ", options) + ": "
                                    + g.layer().name() + ".kernel[" + i + "][" + j + "]");
                        }
                    }
                }
            }
            assertEquals(resolved.hidden().length + 1, kernels, String.join(" ", options));
        }
    }

    /**
     * Review (inits): evaluate, predict and export build the run's network only to load its weights, which
     * overwrite every parameter; they build it with zero kernels (an orthogonal 2048 x 2048 kernel's QR costs
     * 15 s), and the config still names the run's initializer. The weights loaded into it are the file's.
     */
    @Test
    void theNetworkToLoadWeightsIntoStartsFromZeroKernelsAndKeepsTheRunsInit(@TempDir Path tmp) {
        ModelOptions.Resolved resolved = resolve("train", "--init", "orthogonal:1.1", "--hidden", "12,7",
                "--activation", "prelu");
        assertEquals("orthogonal:1.1", resolved.config().get("init"));
        Path file = tmp.resolve("model.safetensors");
        try (CpuBackend cpu = new CpuBackend();
             Sequential trained = resolved.build(cpu, 3, 20, 10);
             Sequential loading = resolved.buildToLoad(cpu, 20, 10)) {
            List<Sequential.ParameterGroup> drawn = trained.parameterGroups();
            List<Sequential.ParameterGroup> groups = loading.parameterGroups();
            assertEquals(drawn.size(), groups.size());
            for (int i = 0; i < groups.size(); i++) {
                float[] values = groups.get(i).value().toFloatArray();
                String name = WeightsFile.tensorName(groups.get(i));
                assertEquals(WeightsFile.tensorName(drawn.get(i)), name);
                if (groups.get(i).slot().name().equals("kernel")) {
                    assertArrayEquals(new float[values.length], values, name + " before loading");
                    assertFalse(Arrays.equals(values, drawn.get(i).value().toFloatArray()), name + " of build");
                } else {
                    assertArrayEquals(drawn.get(i).value().toFloatArray(), values, name + ": not a kernel");
                }
            }
            WeightsFile.save(trained, file, Map.of());
            WeightsFile.load(loading, file);
            assertArrayEquals(trained.parameters().toFloatArray(), loading.parameters().toFloatArray());
        }
    }

    @Test
    void badSpecsAreUsageErrorsThatSayWhy() {
        assertEquals(2, run("train", "--init", "orthogonal:wide"));
        assertTrue(err.toString().contains("--init: initializer 'orthogonal:wide': scale 'wide' is not a number"),
                err.toString());
        assertEquals(2, run("train", "--init", "orthogonal:-1"));
        assertTrue(err.toString().contains("scale must be finite and >= 0, got -1.0"), err.toString());
        assertEquals(2, run("train", "--init", "ones:3"));
        assertTrue(err.toString().contains("ones takes no scale"), err.toString());
        assertEquals(2, run("train", "--init", "xavier"));
        assertTrue(err.toString().contains("unknown initializer 'xavier'; valid: ") && err.toString().contains(
                "lecun_uniform") && err.toString().contains("truncated_normal"), err.toString());
    }

    @Test
    void helpListsTheKinds() {
        StringWriter out = new StringWriter();
        CommandLine train = new CommandLine(new GradScope()).getSubcommands().get("train");
        train.setOut(new PrintWriter(out, true));
        train.usage(new PrintWriter(out, true));
        String help = out.toString().replaceAll("\\s+", " ");
        assertTrue(help.contains(Initializer.validIds()), help);
    }

    /** The runs experiment gradients plans for {@code args}, without training any. */
    private static List<ExperimentCommand.RunSpec> gradientsPlan(String... args) {
        CommandLine command = new CommandLine(new ExperimentCommand.Gradients());
        command.parseArgs(args);
        return ((ExperimentCommand.Gradients) command.getCommand()).plan();
    }

    @Test
    void experimentGradientsDrawsEveryRunFromItsInit() {
        List<ExperimentCommand.RunSpec> plain = gradientsPlan("--activations", "tanh,linear");
        assertEquals(4, plain.size(), "two activations, chapter and deep");
        assertTrue(plain.stream().allMatch(s -> s.model().initializer().equals(Initializer.glorotUniform())));
        List<ExperimentCommand.RunSpec> orthogonal = gradientsPlan("--activations", "tanh,linear", "--init",
                "orthogonal:1.2");
        assertEquals(4, orthogonal.size());
        assertTrue(orthogonal.stream()
                .allMatch(s -> s.model().initializer().equals(Initializer.parse("orthogonal:1.2"))));
        for (int i = 0; i < plain.size(); i++) {
            assertEquals(plain.get(i).dirName(), orthogonal.get(i).dirName());
            assertEquals(plain.get(i).model().hidden().length, orthogonal.get(i).model().hidden().length);
        }
        CommandLine.ParameterException unknown = assertThrows(CommandLine.ParameterException.class,
                () -> gradientsPlan("--init", "orthogonl"));
        assertTrue(unknown.getMessage().contains("orthogonal"), unknown.getMessage());
        assertTrue(gradientsPlan("--activations", "tanh", "--init", "identity").stream()
                .allMatch(s -> s.model().initializer().equals(Initializer.parse("identity"))));
    }
}
