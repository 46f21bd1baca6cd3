package dev.gradscope.cli;

import dev.gradscope.data.MnistSubset;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;

/** Short, quiet {@code train} command lines on the committed MNIST subset, for CLI tests that need many runs. */
final class SubsetTrainRuns {
    private SubsetTrainRuns() {
    }

    /** {@code train} on 200 subset images, one hidden layer of 16, batches of 100, quiet; then {@code more}. */
    static List<String> train(String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--data-dir", MnistSubset.dir().toString(), "--device",
                "cpu", "--hidden", "16", "--train-limit", "200", "--batch-size", "100", "--quiet"));
        args.addAll(List.of(more));
        return args;
    }

    /** Runs the command line with its errors going to {@code err}; returns the exit status. */
    static int run(StringWriter err, List<String> args) {
        return GradScope.run(new PrintWriter(err, true), args.toArray(String[]::new));
    }
}
