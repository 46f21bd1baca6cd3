package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.nn.Initializer;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code --init} of {@code train}, {@code bench} and {@code experiment gradients}: every kind is taken and recorded
 * as given, identity (which no MLP from 784 inputs to 10 classes can start from) and bad specs are usage errors
 * that say why.
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

    @Test
    void identityIsAUsageErrorNamingTheLayerThatIsNotSquare() {
        assertEquals(2, run("train", "--init", "identity"));
        assertTrue(err.toString().contains("--init identity: identity needs square kernels, and hidden layer 1's is"
                + " [784, 512]"), err.toString());
        assertEquals(2, run("train", "--init", "identity", "--hidden", "784,100"));
        assertTrue(err.toString().contains("hidden layer 2's is [784, 100]"), err.toString());
        assertEquals(2, run("train", "--init", "identity:2", "--activation", "maxout", "--hidden", "784"));
        assertTrue(err.toString().contains("hidden layer 1's is [784, 1568]"), err.toString());
        assertEquals(2, run("train", "--init", "identity", "--hidden", "784,784"));
        assertTrue(err.toString().contains("the output layer's is [784, 10]"), err.toString());
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
        CommandLine.ParameterException identity = assertThrows(CommandLine.ParameterException.class,
                () -> gradientsPlan("--init", "identity"));
        assertTrue(identity.getMessage().contains("[784, 512]"), identity.getMessage());
    }
}
