package dev.gradscope.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code gradscope} command line. Exit status: 0 on success, 2 on a usage error (the message lists
 * the valid choices), 1 on any other failure (the message names what failed and where).
 */
@Command(name = "gradscope", mixinStandardHelpOptions = true, versionProvider = GradScope.Version.class,
        description = "Train neural networks on the JVM and watch their gradients.",
        subcommands = {TrainCommand.class, EvaluateCommand.class, PredictCommand.class, ExportCommand.class,
                CompareCommand.class, ExperimentCommand.class, BenchCommand.class, InfoCommand.class,
                CommandLine.HelpCommand.class})
public final class GradScope implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit status. */
    public static int run(String... args) {
        return run(new java.io.PrintWriter(System.err, true), args);
    }

    /** Runs the command line with errors going to {@code err}; returns the exit status (for tests). */
    public static int run(java.io.PrintWriter err, String... args) {
        CommandLine cli = new CommandLine(new GradScope());
        cli.setErr(err);
        // A usage error: the message (which lists the valid choices) and where to read more, not the whole
        // usage text, which would bury the message.
        cli.setParameterExceptionHandler((e, arguments) -> {
            CommandLine failed = e.getCommandLine();
            failed.getErr().println("gradscope: " + e.getMessage());
            failed.getErr().println("Try '" + failed.getCommandSpec().qualifiedName() + " --help' for the options.");
            return 2;
        });
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println("gradscope: error: " + describe(e));
            if (System.getenv("GRADSCOPE_DEBUG") != null) {
                e.printStackTrace(commandLine.getErr());
            }
            return 1;
        });
        return cli.execute(args);
    }

    private static String describe(Throwable e) {
        String message = e.getMessage();
        return message == null ? e.getClass().getSimpleName() : message;
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(),
                "missing command: train, evaluate, predict, export, compare, experiment, bench or info");
    }

    /** Reports the version written into the jar's manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"gradscope " + dev.gradscope.Version.text()};
        }
    }
}
