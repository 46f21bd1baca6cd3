package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import dev.gradscope.report.HistoryJson;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code --optimizer adam|sgd|rmsprop} and the options of each ({@code --momentum}, {@code --nesterov},
 * {@code --rho}, {@code --centered}, {@code --weight-decay}): what they build, the usage errors for an option
 * that does not apply or a value out of range, and a short RMSprop run on the committed MNIST subset.
 */
class OptimizerOptionsTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private int run(List<String> args) {
        err.getBuffer().setLength(0);
        return GradScope.run(new PrintWriter(err, true), args.toArray(String[]::new));
    }

    /** The optimizer config that {@code command}'s model options resolve to, as picocli parses {@code options}. */
    private static Map<String, Object> optimizerConfig(String command, String... options) {
        List<String> args = new ArrayList<>(List.of(command));
        args.addAll(List.of(options));
        CommandLine.ParseResult parsed = new CommandLine(new GradScope()).parseArgs(args.toArray(String[]::new));
        while (parsed.hasSubcommand()) {
            parsed = parsed.subcommand();
        }
        ModelOptions model = (ModelOptions) parsed.commandSpec().mixins().get("model").userObject();
        return model.resolve(IllegalArgumentException::new).newOptimizer().config();
    }

    private static Map<String, Object> config(Object... keysAndValues) {
        Map<String, Object> c = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            c.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return c;
    }

    @Test
    void eachOptimizerTakesItsOwnOptionsWithKerasDefaults() {
        for (String command : List.of("train", "bench")) {
            assertEquals(config("name", "rmsprop", "learning_rate", 1e-3, "rho", 0.9, "momentum", 0.0, "epsilon", 1e-7,
                    "centered", false, "weight_decay", 0.0), optimizerConfig(command, "--optimizer", "rmsprop"));
            assertEquals(config("name", "rmsprop", "learning_rate", 0.01, "rho", 0.95, "momentum", 0.5, "epsilon",
                    1e-7, "centered", true, "weight_decay", 0.004), optimizerConfig(command, "--optimizer", "RMSprop",
                    "--learning-rate", "0.01", "--rho", "0.95", "--momentum", "0.5", "--centered", "--weight-decay",
                    "0.004"));
            assertEquals(config("name", "adam", "learning_rate", 1e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon", 1e-7,
                    "amsgrad", false, "weight_decay", 0.004), optimizerConfig(command, "--weight-decay", "0.004"));
            assertEquals(config("name", "adam", "learning_rate", 1e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon", 1e-7,
                    "amsgrad", true, "weight_decay", 0.0), optimizerConfig(command, "--amsgrad"));
            // adamw: Keras's AdamW, whose weight decay defaults to 0.004; recorded as adamw.
            assertEquals(config("name", "adamw", "learning_rate", 1e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon",
                    1e-7, "amsgrad", false, "weight_decay", 0.004), optimizerConfig(command, "--optimizer", "adamw"));
            assertEquals(config("name", "adamw", "learning_rate", 1e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon",
                    1e-7, "amsgrad", true, "weight_decay", 0.0), optimizerConfig(command, "--optimizer", "AdamW",
                    "--weight-decay", "0", "--amsgrad"));
            assertEquals(config("name", "nadam", "learning_rate", 1e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon",
                    1e-7, "weight_decay", 0.0), optimizerConfig(command, "--optimizer", "nadam"));
            assertEquals(config("name", "adamax", "learning_rate", 2e-3, "beta_1", 0.9, "beta_2", 0.999, "epsilon",
                    1e-7, "weight_decay", 0.01), optimizerConfig(command, "--optimizer", "adamax", "--learning-rate",
                    "0.002", "--weight-decay", "0.01"));
            assertEquals(config("name", "adagrad", "learning_rate", 1e-3, "initial_accumulator_value", 0.1,
                    "epsilon", 1e-7, "weight_decay", 0.0), optimizerConfig(command, "--optimizer", "adagrad"));
            assertEquals(config("name", "adagrad", "learning_rate", 1e-3, "initial_accumulator_value", 0.0,
                    "epsilon", 1e-7, "weight_decay", 0.0), optimizerConfig(command, "--optimizer", "adagrad",
                    "--initial-accumulator", "0"));
            assertEquals(config("name", "sgd", "learning_rate", 0.01, "momentum", 0.9, "nesterov", true,
                    "weight_decay", 0.5), optimizerConfig(command, "--optimizer", "sgd", "--momentum", "0.9",
                    "--nesterov", "--weight-decay", "0.5"));
        }
    }

    @Test
    void anOptionThatDoesNotApplyOrAValueOutOfRangeIsAUsageError() {
        Map<List<String>, String> refusals = new LinkedHashMap<>();
        refusals.put(List.of("--optimizer", "adadelta"), "unknown optimizer 'adadelta'; valid: adam, adamw, sgd,"
                + " rmsprop, nadam, adamax, adagrad");
        refusals.put(List.of("--momentum", "0.9"), "--momentum does not apply to --optimizer adam");
        refusals.put(List.of("--nesterov", "--rho", "0.9"), "--nesterov, --rho do not apply to --optimizer adam");
        refusals.put(List.of("--optimizer", "sgd", "--centered"), "--centered does not apply to --optimizer sgd");
        refusals.put(List.of("--optimizer", "rmsprop", "--nesterov"), "--nesterov does not apply to --optimizer"
                + " rmsprop (--momentum is for sgd and rmsprop, --nesterov for sgd, --rho and --centered for rmsprop,"
                + " --amsgrad for adam and adamw, --initial-accumulator for adagrad)");
        refusals.put(List.of("--optimizer", "nadam", "--amsgrad"), "--amsgrad does not apply to --optimizer nadam");
        refusals.put(List.of("--optimizer", "sgd", "--amsgrad"), "--amsgrad does not apply to --optimizer sgd");
        refusals.put(List.of("--optimizer", "adamax", "--momentum", "0.5"),
                "--momentum does not apply to --optimizer adamax");
        refusals.put(List.of("--optimizer", "adagrad", "--rho", "0.9"), "--rho does not apply to --optimizer adagrad");
        refusals.put(List.of("--optimizer", "adamw", "--initial-accumulator", "0.1"),
                "--initial-accumulator does not apply to --optimizer adamw");
        for (String accumulator : List.of("-0.1", "NaN", "1e39")) {
            refusals.put(List.of("--optimizer", "adagrad", "--initial-accumulator", accumulator),
                    "--initial-accumulator must be a number >= 0 that a float can hold, got "
                            + Double.parseDouble(accumulator));
        }
        // 0.99999999 is below 1 as a double but is the float 1, which the kernels use: refused too.
        for (String rho : List.of("1", "-0.1", "NaN", "0.99999999")) {
            refusals.put(List.of("--optimizer", "rmsprop", "--rho", rho),
                    "--rho must be in [0, 1) as a float (0.99999999 is 1), got " + Double.parseDouble(rho));
        }
        for (String momentum : List.of("1", "0.99999999")) {
            refusals.put(List.of("--optimizer", "rmsprop", "--momentum", momentum),
                    "--momentum must be in [0, 1) as a float (0.99999999 is 1), got " + Double.parseDouble(momentum));
        }
        // 1e39 is a finite double but an infinite float.
        for (String decay : List.of("-0.001", "NaN", "Infinity", "1e39")) {
            refusals.put(List.of("--optimizer", "sgd", "--weight-decay", decay),
                    "--weight-decay must be a number >= 0 that a float can hold, got " + Double.parseDouble(decay));
        }
        for (String rate : List.of("1e39", "1e-50")) {
            refusals.put(List.of("--learning-rate", rate),
                    "--learning-rate must be a positive number that a float can hold, got " + Double.parseDouble(rate));
        }
        for (String command : List.of("train", "bench")) {
            refusals.forEach((options, message) -> {
                List<String> args = new ArrayList<>(List.of(command, "--device", "cpu", "--data-dir",
                        MnistSubset.dir().toString()));
                args.addAll(options);
                assertEquals(2, run(args), String.join(" ", args) + ": " + err);
                assertTrue(err.toString().contains(message), () -> "expected '" + message + "' in: " + err);
            });
        }
    }

    /**
     * RMSprop learns the subset's digits (chance is 0.1), its settings are in history.json's config, and the
     * saved weights evaluate to the run's last validation numbers.
     */
    @Test
    @SuppressWarnings("unchecked")
    void rmsPropLearnsTheSubsetAndRecordsItsSettings() {
        Path out = tmp.resolve("rmsprop");
        assertEquals(0, run(List.of("train", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(),
                "--hidden", "64,32", "--epochs", "2", "--optimizer", "rmsprop", "--momentum", "0.5", "--centered",
                "--weight-decay", "0.004", "--out", out.toString(), "--quiet")), err.toString());
        Map<String, Object> history = HistoryJson.read(out.resolve("history.json"));
        List<Double> loss = (List<Double>) history.get("loss");
        List<Double> accuracy = (List<Double>) history.get("val_accuracy");
        assertTrue(loss.get(1) < loss.get(0), "the loss falls: " + loss);
        assertTrue(accuracy.get(1) > 0.8, "RMSprop learns the digits: " + accuracy);
        Map<String, Object> config = (Map<String, Object>) history.get("config");
        assertEquals(config("name", "rmsprop", "learning_rate", 1e-3, "rho", 0.9, "momentum", 0.5, "epsilon", 1e-7,
                "centered", true, "weight_decay", 0.004), config.get("optimizer"));
        Path evaluation = tmp.resolve("evaluation.json");
        assertEquals(0, run(List.of("evaluate", out.resolve("model.safetensors").toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", evaluation.toString())), err.toString());
        assertEquals(accuracy.get(1), HistoryJson.read(evaluation).get("accuracy"), "evaluate gives the run's own");
    }

    /**
     * Keras's other optimizers learn the subset's digits (chance is 0.1; above 0.5 after two epochs), record their
     * settings in history.json's config, and their saved weights evaluate to the run's last validation accuracy.
     * Adagrad at Keras's rate (1e-3, from an accumulator of 0.1) and Adamax at 1e-3 learn too slowly for two
     * epochs of the subset: they run at 5e-2 and 2e-3 (PyTorch's Adamax default).
     */
    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"nadam", "adamax --learning-rate 0.002",
        "adagrad --learning-rate 0.05", "adamw --amsgrad"})
    @SuppressWarnings("unchecked")
    void kerasOptimizersLearnTheSubsetAndEvaluate(String options) {
        Path out = tmp.resolve("run");
        List<String> args = new ArrayList<>(List.of("train", "--device", "cpu", "--data-dir",
                MnistSubset.dir().toString(), "--hidden", "64,32", "--epochs", "2", "--out", out.toString(),
                "--quiet", "--optimizer"));
        args.addAll(List.of(options.split(" ")));
        assertEquals(0, run(args), err.toString());
        Map<String, Object> history = HistoryJson.read(out.resolve("history.json"));
        List<Double> loss = (List<Double>) history.get("loss");
        List<Double> accuracy = (List<Double>) history.get("val_accuracy");
        assertTrue(loss.get(1) < loss.get(0), "the loss falls: " + loss);
        assertTrue(accuracy.get(1) > 0.5, options + " learns the digits: " + accuracy);
        Map<String, Object> optimizer = (Map<String, Object>) ((Map<String, Object>) history.get("config"))
                .get("optimizer");
        assertEquals(options.split(" ")[0], optimizer.get("name"));
        Path evaluation = tmp.resolve("evaluation.json");
        assertEquals(0, run(List.of("evaluate", out.resolve("model.safetensors").toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", evaluation.toString())), err.toString());
        assertEquals(accuracy.get(1), HistoryJson.read(evaluation).get("accuracy"), "evaluate gives the run's own");
    }
}
