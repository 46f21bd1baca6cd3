package dev.gradscope.cli;

import dev.gradscope.data.Dataset;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.Mnist;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.function.Function;
import picocli.CommandLine.Option;

/**
 * Which data set a command reads and from where: {@code --dataset} and {@code --data-dir}, the options of every
 * command that reads images ({@link DeviceOptions} carries them for the commands that train or evaluate). Its two
 * forms differ only in what {@code --data-dir}'s help says the folder must hold: {@link AllFiles} for the commands
 * that read the whole data set, {@link TestFiles} for those that read only its test split (evaluate, predict).
 */
abstract sealed class DataOptions permits DataOptions.AllFiles, DataOptions.TestFiles {
    /**
     * Null when not given: evaluate and predict then take the weights file's own, the others
     * {@link DatasetKind#DEFAULT}.
     */
    @Option(names = "--dataset", paramLabel = "NAME", completionCandidates = Ids.class,
            description = "The images: ${COMPLETION-CANDIDATES} (default: mnist; for evaluate and predict, the one the"
                    + " weights were trained on).")
    String dataset;

    /** {@code --data-dir}; null when not given: the data set's own folder. */
    Path dataDir;

    /** The default's part of {@code --data-dir}'s help. */
    static final String DEFAULT_DIR_HELP = " (default: its own folder, data/mnist or data/fashion-mnist).";

    /** {@code --data-dir} for the commands that read all four files of the data set (train, bench, experiment, info). */
    static final class AllFiles extends DataOptions {
        @Option(names = "--data-dir", paramLabel = "DIR",
                description = "Folder with the data set's four IDX files, plain or .gz" + DEFAULT_DIR_HELP)
        void dataDir(Path dir) {
            dataDir = dir;
        }
    }

    /** {@code --data-dir} for the commands that read only the test split (evaluate, predict --test-index). */
    static final class TestFiles extends DataOptions {
        @Option(names = "--data-dir", paramLabel = "DIR",
                description = "Folder with the data set's two test files, t10k-images-idx3-ubyte and"
                        + " t10k-labels-idx1-ubyte, plain or .gz; the training files need not be there"
                        + DEFAULT_DIR_HELP)
        void dataDir(Path dir) {
            dataDir = dir;
        }
    }

    /** Checks {@code --dataset}; an unknown one becomes {@code usage}'s exception, listing the valid ones. */
    void validate(Function<String, RuntimeException> usage) {
        if (dataset != null) {
            try {
                DatasetKind.fromId(dataset);
            } catch (IllegalArgumentException e) {
                throw usage.apply("--dataset: " + e.getMessage());
            }
        }
    }

    /** The data set {@code --dataset} names, {@link DatasetKind#DEFAULT} when not given. */
    DatasetKind dataset() {
        return dataset == null ? DatasetKind.DEFAULT : DatasetKind.fromId(dataset);
    }

    /** {@code --data-dir}, or the data set's own folder when not given. */
    Path dataDir() {
        return dataDir != null ? dataDir : Path.of(dataset().defaultDir());
    }

    /**
     * What a run's config records as {@code data_dir}, once the images were read from {@link #dataDir()}: without
     * {@code --data-dir}, the data set's own folder as it is named, relative (the CLI reads it from its working
     * directory, which the launcher makes the repository root), so that a checkout moved or copied as a whole
     * resumes its runs and the launcher still knows the folder for its own; a folder the user gave, its real path
     * (absolute, links and {@code ..} resolved as the file system did when it read it), so that the run resumes
     * from any working directory.
     */
    String recordedDataDir() {
        if (dataDir == null) {
            return dataset().defaultDir();
        }
        try {
            return dataDir.toRealPath().toString();
        } catch (IOException e) {
            throw new InvalidDataException(dataDir + ": the data folder the run read cannot be found again: " + e, e);
        }
    }

    /** The four files of the data set, from {@link #dataDir()}. */
    Mnist load() {
        return Mnist.load(dataset(), dataDir());
    }

    /** Only the test split of the data set, from {@link #dataDir()}: the training files need not be there. */
    Dataset loadTest() {
        return Mnist.loadTest(dataset(), dataDir());
    }

    /** The data sets' ids, for the help's {@code ${COMPLETION-CANDIDATES}}: the list is {@link DatasetKind}'s. */
    static final class Ids implements Iterable<String> {
        @Override
        public Iterator<String> iterator() {
            return Arrays.stream(DatasetKind.values()).map(DatasetKind::id).iterator();
        }
    }
}
