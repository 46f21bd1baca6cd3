package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import dev.gradscope.report.HistoryJson;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The command line's contract: exit 0 on success, 2 on usage errors, 1 on other failures. */
class GradScopeCliTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        return GradScope.run(new PrintWriter(err, true), args);
    }


    @Test
    void trainWritesHistoryJsonWithEveryKerasKeyAndTheConfig() {
        Path out = tmp.resolve("run");
        int status = run("train", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--epochs", "2",
                "--train-limit", "512", "--activation", "elu", "--activation-parameter", "0.5", "--seed", "3",
                "--out", out.toString(), "--quiet");
        assertEquals(0, status, err.toString());
        Map<String, Object> history = HistoryJson.read(out.resolve("history.json"));
        for (String key : List.of("loss", "accuracy", "val_loss", "val_accuracy")) {
            assertEquals(2, ((List<?>) history.get(key)).size(), key + " has one value per epoch");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> config = (Map<String, Object>) history.get("config");
        assertEquals("elu", config.get("activation"));
        assertEquals(0.5, config.get("activation_parameter"));
        assertEquals(3, ((Number) config.get("seed")).intValue());
        assertEquals(512, config.get("train_examples"));
        assertEquals("categorical_crossentropy", config.get("loss"));
        assertEquals("cpu", config.get("backend"));
    }

    /**
     * The chapter's network with Keras's MNIST example's dropout, 0.2 after each hidden layer, learns on the committed
     * subset (4000 training images, 1000 test images) in 3 epochs: a threshold a few points below what it reaches
     * (0.766, 0.849, 0.876), so it catches dropout that breaks learning (a wrong scale, a mask in validation) without
     * flaking.
     */
    @Test
    void theChapterNetworkWithDropoutLearns() {
        Path out = tmp.resolve("dropout");
        assertEquals(0, run("train", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--epochs", "3",
                "--dropout", "0.2", "--out", out.toString(), "--quiet"), err.toString());
        Map<String, Object> history = HistoryJson.read(out.resolve("history.json"));
        @SuppressWarnings("unchecked")
        List<Number> valAccuracy = (List<Number>) history.get("val_accuracy");
        @SuppressWarnings("unchecked")
        List<Number> loss = (List<Number>) history.get("loss");
        assertTrue(valAccuracy.get(2).doubleValue() >= 0.84, "val_accuracy " + valAccuracy);
        assertTrue(loss.get(2).doubleValue() < loss.get(0).doubleValue() / 2, "loss falls: " + loss);
        assertEquals(0.2, ((Map<?, ?>) history.get("config")).get("dropout"));
    }

    /**
     * The chapter's network with batch normalization before every hidden ReLU learns on the committed subset
     * (4000 training images, 1000 test images) in 3 epochs of 128: validation uses the moving statistics, which
     * after those 96 steps have moved 1 - 0.99^96 = 62% of the way from their start, so it lags the training
     * accuracy; the threshold is below what it reaches (0.736, 0.876, 0.896), and the loss must halve.
     */
    @Test
    void theChapterNetworkWithBatchNormLearns() {
        Path out = tmp.resolve("batch-norm");
        assertEquals(0, run("train", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--epochs", "3",
                "--batch-norm", "--out", out.toString(), "--quiet"), err.toString());
        Map<String, Object> history = HistoryJson.read(out.resolve("history.json"));
        @SuppressWarnings("unchecked")
        List<Number> valAccuracy = (List<Number>) history.get("val_accuracy");
        @SuppressWarnings("unchecked")
        List<Number> loss = (List<Number>) history.get("loss");
        assertTrue(valAccuracy.get(2).doubleValue() >= 0.80, "val_accuracy " + valAccuracy);
        assertTrue(loss.get(2).doubleValue() < loss.get(0).doubleValue() / 2, "loss falls: " + loss);
        assertEquals(true, ((Map<?, ?>) history.get("config")).get("batch_norm"));
    }

    /** The CPU has no device graphs: bench says so, and that it cannot count kernels there. */
    @Test
    void benchJsonSaysWhetherStepsRanAsGraphsAndHowManyKernelsAStepHas() {
        for (boolean noGraph : new boolean[] {false, true}) {
            Path out = tmp.resolve("bench-" + noGraph + ".json");
            List<String> args = new java.util.ArrayList<>(List.of("bench", "--device", "cpu", "--data-dir",
                    MnistSubset.dir().toString(), "--train-limit", "300", "--hidden", "16", "--epochs", "2", "--out",
                    out.toString()));
            if (noGraph) {
                args.add("--no-graph");
            }
            assertEquals(0, run(args.toArray(String[]::new)), err.toString());
            Map<String, Object> result = HistoryJson.read(out);
            assertEquals(false, result.get("graph"));
            assertTrue(result.containsKey("kernels_per_step") && result.get("kernels_per_step") == null,
                    result.toString());
            assertTrue(result.containsKey("steps_per_graph") && result.get("steps_per_graph") == null,
                    "no graphs, no steps per graph: " + result);
        }
    }

    /**
     * What the launcher (scripts/gradscope) relies on to fetch no data for a help or version request, and to fetch
     * the data for every command line that reads it: for every command, -h, --help, -V and --version are help or
     * version requests in an option's place, and given as the value of any option that takes one (--out -h,
     * --out=-V), each is refused as a usage error. A cluster of short flags (-qh, -Vq; the only short options are -h,
     * -q and -V) is a help request where the launcher's rule says so, its letters up to the first h or V being the
     * command's short flags, which the launcher lists per command (-q for train's and experiment's); a cluster the
     * rule calls help is refused as an option's value; and one it does not (-qh for evaluate, which has no -q) is
     * taken as the value, as the launcher takes it, fetching the data the command then reads.
     */
    @Test
    void helpAndVersionFlagsAreNeverAnOptionsValue() throws java.io.IOException {
        String launcher = Files.readString(Path.of("scripts/gradscope"));
        java.util.regex.Matcher quiet = java.util.regex.Pattern.compile("(?m)^\\s*([a-z |]+)\\) short_flags=hqV ;;$")
                .matcher(launcher);
        assertTrue(quiet.find(), "the launcher lists the commands that have -q");
        List<String> withQuiet = java.util.Arrays.stream(quiet.group(1).split("\\|")).map(String::trim).toList();
        assertTrue(launcher.contains("*) short_flags=hV ;;"), "the other commands' short flags are -h and -V");
        java.util.regex.Matcher rule = java.util.regex.Pattern.compile("\\[\\[ \"\\$arg\" =~ (\\S+) \\]\\]")
                .matcher(launcher);
        assertTrue(rule.find(), "the launcher's rule for a cluster");
        List<String> flags = List.of("-h", "--help", "-V", "--version");
        List<String> clusters = List.of("-qh", "-hq", "-qV", "-Vq");
        List<String> checked = new ArrayList<>();
        List<String> takenAsValues = new ArrayList<>();
        for (CommandLine command : allCommands(new CommandLine(new GradScope()))) {
            List<String> path = new ArrayList<>(List.of(command.getCommandSpec().qualifiedName(" ").split(" ")));
            path.remove(0); // "gradscope"
            // the launcher's rule, with the short flags it gives the command (bash's =~ and Java read it alike)
            java.util.regex.Pattern launcherHelp = java.util.regex.Pattern.compile(rule.group(1).replace(
                    "$short_flags", !path.isEmpty() && withQuiet.contains(path.get(0)) ? "hqV" : "hV"));
            for (CommandLine.Model.OptionSpec option : command.getCommandSpec().options()) {
                for (String name : option.names()) {
                    if (name.matches("-[^-].*")) {
                        assertTrue(List.of("-h", "-q", "-V").contains(name), path + " has the short option " + name
                                + ", which the launcher's clusters (-[hqV]...) do not know");
                    }
                }
                if (option.arity().max() == 0) {
                    continue;
                }
                for (String flag : flags) {
                    for (List<String> value : List.of(List.of(option.longestName(), flag),
                            List.of(option.longestName() + "=" + flag))) {
                        List<String> args = new ArrayList<>(path);
                        args.addAll(value);
                        assertRefusedAsTheValue(option, flag, args);
                    }
                }
                for (String cluster : clusters) {
                    List<String> args = new ArrayList<>(path);
                    args.addAll(required(command, option)); // so that the line is whole
                    args.addAll(List.of(option.longestName(), cluster));
                    if (launcherHelp.matcher(cluster).matches()) {
                        assertRefusedAsTheValue(option, cluster, args); // the launcher fetches nothing: nor is it read
                        continue;
                    }
                    try {
                        CommandLine.ParseResult result = deepest(new CommandLine(new GradScope())
                                .parseArgs(args.toArray(String[]::new)));
                        assertTrue(!result.isUsageHelpRequested() && !result.isVersionHelpRequested(), args.toString());
                        assertEquals(List.of(cluster), result.matchedOption(option.longestName())
                                .originalStringValues(), args + ": the launcher takes " + cluster + " as the value");
                        takenAsValues.add(String.join(" ", path) + " " + option.longestName() + " " + cluster);
                    } catch (CommandLine.ParameterException refused) {
                        // not a value this option takes (a number): a usage error, which reads no data either
                        assertTrue(refused.getMessage().startsWith("Invalid value for option '" + option.longestName()
                                + "'"), args + ": " + refused.getMessage());
                    }
                }
                checked.add(String.join(" ", path) + " " + option.longestName());
            }
            for (String flag : List.of("-h", "--help")) {
                List<String> args = new ArrayList<>(path);
                args.add(flag);
                CommandLine.ParseResult result = deepest(new CommandLine(new GradScope())
                        .parseArgs(args.toArray(String[]::new)));
                assertTrue(result.isUsageHelpRequested(), args.toString());
            }
            for (String cluster : path.equals(List.of("help")) ? List.<String>of() : clusters) { // help: no -V, no data
                List<String> args = new ArrayList<>(path);
                args.addAll(required(command, null));
                args.add(cluster);
                boolean help;
                try {
                    CommandLine.ParseResult result = deepest(new CommandLine(new GradScope())
                            .parseArgs(args.toArray(String[]::new)));
                    help = result.isUsageHelpRequested() || result.isVersionHelpRequested();
                } catch (CommandLine.UnmatchedArgumentException refused) {
                    continue; // an unknown option (-qh without -q): a usage error, which reads no data either way
                }
                assertEquals(help, launcherHelp.matcher(cluster).matches(), args + ": the CLI reads it as "
                        + (help ? "" : "no ") + "help request, the launcher as " + (help ? "none" : "one"));
            }
        }
        assertTrue(checked.contains("train --out") && checked.contains("compare --names")
                && checked.contains("predict --test-index") && checked.contains("experiment losses --epochs"),
                "every command's options were tried: " + checked);
        assertTrue(takenAsValues.contains("evaluate --out -qh") && takenAsValues.contains("predict --out -qV"),
                "a cluster taken as a value was tried: " + takenAsValues);
    }

    /** Checks that {@code args}, which give {@code flag} as {@code option}'s value, are refused as a usage error. */
    private static void assertRefusedAsTheValue(CommandLine.Model.OptionSpec option, String flag, List<String> args) {
        CommandLine.ParameterException refused = org.junit.jupiter.api.Assertions.assertThrows(
                CommandLine.ParameterException.class,
                () -> new CommandLine(new GradScope()).parseArgs(args.toArray(String[]::new)),
                String.join(" ", args) + " is not refused");
        assertTrue(refused.getMessage().contains("Expected parameter for option '" + option.longestName()
                + "' but found '" + flag + "'"), String.join(" ", args) + ": " + refused.getMessage());
    }

    /** A value for each required parameter and option of {@code command} but {@code except}. */
    private static List<String> required(CommandLine command, CommandLine.Model.OptionSpec except) {
        List<String> args = new ArrayList<>();
        for (CommandLine.Model.PositionalParamSpec positional : command.getCommandSpec().positionalParameters()) {
            for (int i = 0; i < positional.arity().min(); i++) {
                args.add("1");
            }
        }
        for (CommandLine.Model.OptionSpec option : command.getCommandSpec().requiredArgs().stream()
                .filter(arg -> arg instanceof CommandLine.Model.OptionSpec).map(arg -> (CommandLine.Model.OptionSpec) arg)
                .filter(option -> option != except).toList()) {
            args.addAll(List.of(option.longestName(), "1"));
        }
        return args;
    }

    /** The parse result of the last subcommand of {@code result}. */
    private static CommandLine.ParseResult deepest(CommandLine.ParseResult result) {
        while (result.hasSubcommand()) {
            result = result.subcommand();
        }
        return result;
    }

    /** --data-dir's help names the files each command reads: evaluate and predict read only the test files. */
    @Test
    void dataDirsHelpNamesTheFilesTheCommandReads() {
        List<String> described = new ArrayList<>();
        for (CommandLine command : allCommands(new CommandLine(new GradScope()))) {
            CommandLine.Model.OptionSpec dataDir = command.getCommandSpec().findOption("--data-dir");
            if (dataDir == null) {
                continue;
            }
            String name = command.getCommandSpec().qualifiedName(" ");
            String help = String.join(" ", dataDir.description());
            boolean testFilesOnly = name.equals("gradscope evaluate") || name.equals("gradscope predict");
            assertEquals(testFilesOnly, help.contains("two test files"), name + ": " + help);
            assertEquals(!testFilesOnly, help.contains("four IDX files"), name + ": " + help);
            assertTrue(command.getUsageMessage().contains(testFilesOnly ? "t10k-labels-idx1-ubyte" : "four IDX"),
                    name + "'s usage shows it");
            described.add(name);
        }
        assertTrue(described.containsAll(List.of("gradscope train", "gradscope evaluate", "gradscope predict",
                "gradscope bench", "gradscope info", "gradscope experiment losses")), described.toString());
    }

    /** {@code root} and every command under it. */
    private static List<CommandLine> allCommands(CommandLine root) {
        List<CommandLine> all = new ArrayList<>(List.of(root));
        for (CommandLine sub : root.getSubcommands().values()) {
            if (!all.contains(sub)) {
                all.addAll(allCommands(sub));
            }
        }
        return all;
    }

    @Test
    void everyCommandPrintsTheVersion() {
        List<List<String>> commands = List.of(List.of(), List.of("train"), List.of("evaluate"), List.of("predict"),
                List.of("compare"), List.of("experiment"), List.of("experiment", "losses"), List.of("bench"),
                List.of("bench", "kernels"), List.of("info"));
        for (List<String> command : commands) {
            java.io.PrintStream saved = System.out;
            java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
            System.setOut(new java.io.PrintStream(printed, true, java.nio.charset.StandardCharsets.UTF_8));
            List<String> args = new java.util.ArrayList<>(command);
            args.add("-V");
            try {
                assertEquals(0, run(args.toArray(String[]::new)), command + ": " + err);
            } finally {
                System.setOut(saved);
            }
            assertTrue(printed.toString(java.nio.charset.StandardCharsets.UTF_8).startsWith("gradscope "),
                    command + " -V printed '" + printed + "'");
        }
    }

    @Test
    void unknownChoicesAreUsageErrorsThatListTheValidOnes() {
        assertEquals(2, run("train", "--activation", "sigmod"));
        assertTrue(err.toString().contains("sigmod") && err.toString().contains("sigmoid")
                && err.toString().contains("maxout"), err.toString());
        assertEquals(2, run("train", "--loss", "hinge"));
        assertTrue(err.toString().contains("mse"), err.toString());
        assertEquals(2, run("train", "--device", "tpu"));
        assertTrue(err.toString().contains("auto, cpu, cuda"), err.toString());
        assertEquals(2, run("train", "--epochs", "many"));
        assertEquals(2, run("train", "--init", "orthogonl"));
        assertTrue(err.toString().contains("he_normal") && err.toString().contains("orthogonal"), err.toString());
        assertEquals(2, run("frobnicate"));
        assertEquals(2, run("train", "--activation", "elu", "--activation-parameter", "NaN"));
        assertTrue(err.toString().contains("--activation-parameter"), err.toString());
        assertEquals(2, run("train", "--learning-rate", "NaN"));
    }

    /** --label-smoothing takes [0, 1) as a float, and goes with categorical_crossentropy only: usage errors. */
    @Test
    void labelSmoothingOutsideItsRangeOrWithMseIsAUsageError() {
        for (String bad : List.of("1", "-0.1", "NaN")) {
            err.getBuffer().setLength(0);
            assertEquals(2, run("train", "--label-smoothing", bad), bad);
            assertTrue(err.toString().contains("--label-smoothing: label smoothing must be in [0, 1), got "),
                    err.toString());
        }
        err.getBuffer().setLength(0);
        assertEquals(2, run("train", "--label-smoothing", "0.99999999"));
        assertTrue(err.toString().contains("must be in [0, 1) as a float, and 0.99999999 is 1 as a float"),
                err.toString());
        err.getBuffer().setLength(0);
        assertEquals(2, run("train", "--loss", "mse", "--label-smoothing", "0.1"));
        assertTrue(err.toString().contains("--label-smoothing: label smoothing 0.1 applies to --loss"
                + " categorical_crossentropy only, not mse"), err.toString());
        err.getBuffer().setLength(0);
        assertEquals(2, run("train", "--label-smoothing", "some"));
        assertTrue(err.toString().contains("'some' is not a double"), err.toString());
    }

    /** --steps-per-graph belongs to every command that trains; 1 unless given. */
    @Test
    void stepsPerGraphIsParsedByEveryCommandThatTrains() {
        for (List<String> command : List.of(List.of("train"), List.of("bench"), List.of("experiment", "losses"))) {
            assertEquals(1, runOptions(command).stepsPerGraph, command + " without it");
            List<String> args = new ArrayList<>(command);
            args.addAll(List.of("--steps-per-graph", "8"));
            assertEquals(8, runOptions(args).stepsPerGraph, String.join(" ", args));
        }
    }

    /** The RunOptions that picocli fills for {@code args}, as GradScope's command line parses them. */
    private static RunOptions runOptions(List<String> args) {
        CommandLine.ParseResult parsed = new CommandLine(new GradScope()).parseArgs(args.toArray(String[]::new));
        while (parsed.hasSubcommand()) {
            parsed = parsed.subcommand();
        }
        return (RunOptions) parsed.commandSpec().mixins().get("run").userObject();
    }

    @Test
    void stepsPerGraphBelowOneIsAUsageErrorNamingTheOptionAndTheValue() {
        for (String value : List.of("0", "-2")) {
            for (List<String> command : List.of(List.of("train"), List.of("bench"), List.of("experiment", "init"))) {
                List<String> args = new ArrayList<>(command);
                args.addAll(List.of("--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--steps-per-graph",
                        value));
                err.getBuffer().setLength(0);
                assertEquals(2, run(args.toArray(String[]::new)), String.join(" ", args));
                assertTrue(err.toString().contains("--steps-per-graph must be >= 1, got " + value), err.toString());
            }
        }
        assertEquals(2, run("train", "--steps-per-graph", "many"));
        assertTrue(err.toString().contains("--steps-per-graph"), err.toString());
    }

    @Test
    void missingDataFailsWithTheFileAndTheFixAndKeepsTheOldHistory() throws Exception {
        Path out = Files.createDirectories(tmp.resolve("kept"));
        Path saved = out.resolve("history.json");
        Files.writeString(saved, "{\"loss\": [1.0]}");
        Path missing = tmp.resolve("no-mnist-here");
        assertEquals(1, run("train", "--device", "cpu", "--data-dir", missing.toString(), "--out", out.toString()));
        assertTrue(err.toString().contains(missing.toString()) && err.toString().contains("fetch-mnist.sh"),
                err.toString());
        assertEquals("{\"loss\": [1.0]}", Files.readString(saved), "a failed run leaves saved results alone");
    }

    @Test
    void corruptDataFailsWithExitStatusOne() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("corrupt"));
        for (String name : List.of("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")) {
            Files.write(dir.resolve(name), new byte[] {0, 0, 8, 3, 0, 0});
        }
        assertEquals(1, run("train", "--device", "cpu", "--data-dir", dir.toString()));
        assertTrue(err.toString().contains("train-images-idx3-ubyte"), err.toString());
    }

    /** The CPU has no TF32 math: --tf32 trains in FP32, says so in one line, and the config records it. */
    @Test
    void tf32IsIgnoredWithANoteOnTheCpuAndRecorded() {
        Path out = tmp.resolve("tf32");
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        java.io.PrintStream original = System.err;
        int status;
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            status = run("train", "--device", "cpu", "--tf32", "--data-dir", MnistSubset.dir().toString(), "--epochs", "1",
                    "--train-limit", "256", "--out", out.toString(), "--quiet", "--no-profile");
        } finally {
            System.setErr(original);
        }
        assertEquals(0, status, err.toString());
        String stderr = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(1, stderr.lines().filter(l -> l.contains("--tf32 ignored")).count(), stderr);
        assertTrue(stderr.contains("the cpu backend has no TF32 math; its GEMMs stay FP32"), stderr);
        @SuppressWarnings("unchecked")
        Map<String, Object> config = (Map<String, Object>) HistoryJson.read(out.resolve("history.json")).get("config");
        assertEquals(false, config.get("tf32"));
        assertEquals(false, config.get("graph"), "the CPU runs its steps eagerly");
        assertTrue(config.containsKey("steps_per_graph") && config.get("steps_per_graph") == null, config.toString());
    }

    @Test
    void infoSucceedsAndCudaFailsLoudlyWithoutAGpu() {
        assertEquals(0, run("info", "--data-dir", MnistSubset.dir().toString()));
        org.junit.jupiter.api.Assumptions.assumeFalse(dev.gradscope.backend.Devices.cudaUnavailableReason() == null,
                "a CUDA device is present: --device cuda would train");
        assertEquals(1, run("train", "--device", "cuda", "--data-dir", MnistSubset.dir().toString(), "--epochs", "1"));
        assertTrue(err.toString().toLowerCase().contains("cuda"), err.toString());
    }
}
