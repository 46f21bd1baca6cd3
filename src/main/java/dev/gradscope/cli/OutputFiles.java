package dev.gradscope.cli;

import dev.gradscope.report.RunReport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine;

/**
 * The check every command that writes one {@code --out} file makes before it reads anything (evaluate, predict,
 * export): the file must not be one it reads, nor one of a train run's files, which it would replace.
 */
final class OutputFiles {
    /** What a {@code train --out} folder holds, by name. */
    static final List<String> RUN_FILES = List.of(RunReport.HISTORY_FILE, SavedWeights.FILE, ResumedRun.FILE,
            RunReport.GRADIENTS_FILE, RunReport.LAYERS_FILE, RunReport.DIAGNOSIS_FILE, RunReport.CLASSES_FILE,
            RunReport.CONFUSION_FILE, RunReport.REPORT_FILE);

    private OutputFiles() {
    }

    /**
     * Refuses (a usage error) an {@code out} that is a folder, the same file as one of {@code inputs}, or one of
     * {@link #RUN_FILES} in a folder that holds a train run.
     */
    static void requireFreeOutput(CommandLine cli, Path out, List<Path> inputs) {
        if (Files.isDirectory(out)) {
            throw new CommandLine.ParameterException(cli, "--out " + out + " is a folder; give the file to write");
        }
        for (Path input : inputs) {
            if (sameFile(out, input)) {
                throw new CommandLine.ParameterException(cli, "--out " + out + " is " + input + ", which this command"
                        + " reads and would replace");
            }
        }
        Path folder = out.toAbsolutePath().getParent();
        boolean runFolder = folder != null && (Files.exists(folder.resolve(RunReport.HISTORY_FILE))
                || Files.exists(folder.resolve(ResumedRun.FILE)));
        if (runFolder && RUN_FILES.contains(String.valueOf(out.getFileName()))) {
            throw new CommandLine.ParameterException(cli, "--out " + out + " would replace the file of that name of"
                    + " the train run in " + folder + "; give another name");
        }
    }

    private static boolean sameFile(Path a, Path b) {
        try {
            return Files.exists(a) && Files.exists(b) && Files.isSameFile(a, b);
        } catch (IOException e) {
            return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
        }
    }
}
