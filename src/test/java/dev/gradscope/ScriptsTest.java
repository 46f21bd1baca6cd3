package dev.gradscope;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.cli.GradScope;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.SafeTensors;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shell scripts around the data sets: the launcher's and the subset script's copies of {@link DatasetKind}'s
 * table, fetch-fashion-mnist.sh's checks, run without the network ({@code apt-get} and {@code dpkg-deb} are
 * stand-ins on the PATH, or the .deb is unpacked with {@code ar} and {@code tar} from a PATH without
 * {@code dpkg-deb}), and which data set the launcher fetches into which folder, from a copy of it in a
 * repository root of its own (see {@link #launch}).
 */
class ScriptsTest {
    private static final String FETCH = "scripts/fetch-fashion-mnist.sh";
    private static final String TEST_LABELS_MD5 = "15d484375f8d13e6eb1aabb0c3f46965";
    private static final String TRAIN_IMAGES_MD5 = "f4a8712d7a061bf5bd6d2ca38dc4d50a";

    @TempDir
    Path tmp;

    private Path bin;

    /** What a script run printed and its exit status. */
    private record Result(int status, String stdout, String stderr) {
    }

    @BeforeEach
    void standIns() throws IOException {
        assumeTrue(Files.isExecutable(Path.of("/bin/bash")) || Files.isExecutable(Path.of("/usr/bin/bash")),
                "no bash here to run the scripts with");
        bin = Files.createDirectories(tmp.resolve("bin"));
        // apt that cannot reach Debian, as on a machine without the network.
        standIn("apt-get", "echo 'E: Failed to fetch http://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist:"
                + " Temporary failure resolving deb.debian.org' >&2\nexit 100");
        // dpkg-deb -x DEB DIR: unpacks, as Debian's package lays them out, the four gzip files of the test subset.
        standIn("dpkg-deb", "[ \"$1\" = -x ] || exit 2\nmkdir -p \"$3/usr/share/datasets/fashion-mnist\"\n"
                + "cp '" + MnistSubset.fashionDir() + "'/*.gz \"$3/usr/share/datasets/fashion-mnist/\"");
    }

    private void standIn(String name, String body) throws IOException {
        Path file = bin.resolve(name);
        Files.writeString(file, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    private Result fetch(Map<String, String> env, String... args) throws IOException, InterruptedException {
        return fetch(bin + ":" + System.getenv("PATH"), env, args);
    }

    /** Runs fetch-fashion-mnist.sh with the given PATH and environment. */
    private Result fetch(String path, Map<String, String> env, String... args) throws IOException,
            InterruptedException {
        List<String> command = new ArrayList<>(List.of(bash(), FETCH));
        command.addAll(List.of(args));
        Map<String, String> environment = new LinkedHashMap<>(env);
        environment.put("PATH", path);
        environment.putIfAbsent("FASHION_MNIST_DEB", null);
        return run(command, environment);
    }

    /** Runs {@code command}; {@code environment} overrides the inherited variables, removing those mapped to null. */
    private Result run(List<String> command, Map<String, String> environment) throws IOException,
            InterruptedException {
        return run(command, environment, null);
    }

    /** {@link #run(List, Map)} in the working directory {@code cwd} (null: this JVM's). */
    private Result run(List<String> command, Map<String, String> environment, Path cwd) throws IOException,
            InterruptedException {
        ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(tmp.resolve("stdout").toFile())
                .redirectError(tmp.resolve("stderr").toFile()).directory(cwd == null ? null : cwd.toFile());
        builder.environment().remove("GRADSCOPE_JAVA_OPTS");
        environment.forEach((name, value) -> {
            if (value == null) {
                builder.environment().remove(name);
            } else {
                builder.environment().put(name, value);
            }
        });
        Process process = builder.start();
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the script finished");
        return new Result(process.exitValue(), Files.readString(tmp.resolve("stdout")),
                Files.readString(tmp.resolve("stderr")));
    }

    private static String bash() {
        return Files.isExecutable(Path.of("/bin/bash")) ? "/bin/bash" : "/usr/bin/bash";
    }

    /** The names in {@code dir}, hidden ones too, sorted. */
    private static List<String> list(Path dir) throws IOException {
        try (var files = Files.list(dir)) {
            return files.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }

    private static String md5(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void theLauncherAndTheSubsetScriptKnowEveryDatasetOfTheTable() throws IOException {
        String launcher = Files.readString(Path.of("scripts/gradscope"));
        String subset = Files.readString(Path.of("scripts/make-mnist-subset.sh"));
        for (DatasetKind kind : DatasetKind.values()) {
            assertTrue(launcher.contains(kind.id() + ") echo " + kind.defaultDir() + " ;;"), "launcher: " + kind);
            assertTrue(launcher.contains(kind.id() + ") echo " + kind.fetchScript() + " ;;"), "launcher: " + kind);
            assertTrue(subset.contains(kind.id() + ") title=" + kind.title() + " "), "subset script: " + kind);
            assertTrue(subset.contains(Path.of(kind.fetchScript()).getFileName().toString()), "subset script: " + kind);
        }
    }

    @Test
    void aDamagedFileIsReportedAndAnUnreachableDebianIsExplained() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("fashion"));
        for (String name : List.of("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte")) {
            Files.writeString(dir.resolve(name), "not " + name);
        }
        byte[] damaged = "a damaged label file".getBytes(StandardCharsets.US_ASCII);
        Files.write(dir.resolve("t10k-labels-idx1-ubyte"), damaged);

        Result result = fetch(Map.of(), dir.toString());
        assertEquals(1, result.status(), result.stderr());
        assertTrue(result.stderr().contains("fetch-fashion-mnist: " + dir.resolve("t10k-labels-idx1-ubyte")
                + " has MD5 " + md5(damaged) + ", expected " + TEST_LABELS_MD5 + "; fetching it again"),
                result.stderr());
        assertTrue(result.stderr().contains("Temporary failure resolving deb.debian.org"), "apt's own words");
        assertTrue(result.stderr().contains("apt-get download dataset-fashion-mnist=0.0~git20200523.55506a9-1"
                + " failed (output above): apt could not reach Debian"), result.stderr());
        assertEquals("a damaged label file", Files.readString(dir.resolve("t10k-labels-idx1-ubyte")),
                "nothing in DIR changed");
        assertEquals(List.of("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte"), list(dir), "the staging folder in DIR is gone");
    }

    @Test
    void aPackageWhoseFilesHaveOtherSumsIsNotInstalled() throws Exception {
        Path deb = Files.writeString(tmp.resolve("other.deb"), "stands in for a package");
        Path dir = tmp.resolve("fashion");

        Result result = fetch(Map.of("FASHION_MNIST_DEB", deb.toString()), dir.toString());
        assertEquals(1, result.status(), result.stderr());
        // The subset's training images are the first 2000 of the real ones, not the 60000 the sum is of.
        assertTrue(result.stderr().contains("fetch-fashion-mnist: train-images-idx3-ubyte from " + deb + " has MD5 "),
                result.stderr());
        assertTrue(result.stderr().contains(", expected " + TRAIN_IMAGES_MD5 + "; not installing it"),
                result.stderr());
        assertFalse(Files.exists(dir), "only verified files reach DIR");

        Result missing = fetch(Map.of("FASHION_MNIST_DEB", tmp.resolve("absent.deb").toString()), dir.toString());
        assertEquals(1, missing.status());
        assertTrue(missing.stderr().contains("FASHION_MNIST_DEB=" + tmp.resolve("absent.deb") + ": no such file"),
                missing.stderr());
    }

    @Test
    void theFilesAreStagedInDirAndTheStagingIsRemoved() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("fashion"));
        Files.writeString(dir.resolve("train-labels-idx1-ubyte"), "damaged");
        Path listing = tmp.resolve("listing");
        // The stand-in dpkg-deb also lists DIR while the script runs: installing must be a rename within DIR's
        // filesystem, so the files are staged in DIR itself.
        standIn("dpkg-deb", "[ \"$1\" = -x ] || exit 2\nmkdir -p \"$3/usr/share/datasets/fashion-mnist\"\n"
                + "cp '" + MnistSubset.fashionDir() + "'/*.gz \"$3/usr/share/datasets/fashion-mnist/\"\n"
                + "ls -A '" + dir + "' >'" + listing + "'");
        Path deb = Files.writeString(tmp.resolve("other.deb"), "stands in for a package");

        Result result = fetch(Map.of("FASHION_MNIST_DEB", deb.toString()), dir.toString());
        assertEquals(1, result.status(), result.stderr());
        List<String> during = Files.readAllLines(listing);
        assertEquals(2, during.size(), during.toString());
        assertTrue(during.get(0).startsWith(".staging."), during.toString());
        assertEquals(List.of("train-labels-idx1-ubyte"), list(dir), "the staging folder is gone, DIR is as it was");
    }

    @Test
    void intactFilesAreKeptWithoutAsking() throws Exception {
        Path fetched = Path.of(DatasetKind.FASHION_MNIST.defaultDir());
        assumeTrue(Files.isDirectory(fetched),
                "full Fashion-MNIST not fetched: run scripts/fetch-fashion-mnist.sh to test the kept copy");
        Result result = fetch(Map.of(), fetched.toString());
        assertEquals(0, result.status(), result.stderr());
        assertEquals("Fashion-MNIST already in " + fetched + " (MD5 verified)\n", result.stdout());
    }

    // fetch-fashion-mnist.sh where dpkg-deb is missing (macOS, Fedora): ar and tar unpack the .deb.

    /** The commands fetch-fashion-mnist.sh runs besides the unpacker, and those of the unpacker ar. */
    private static final List<String> FETCH_TOOLS = List.of("dirname", "mktemp", "rm", "rmdir", "mkdir", "find",
            "head", "gzip", "cp", "cut", "mv", "cat", "grep", "tr", "md5sum");

    /**
     * A folder for the PATH holding {@code tools}, each a script that runs this machine's, and nothing else: no
     * dpkg-deb, no bsdtar. Skips the test where one of them is not installed.
     */
    private Path pathWith(List<String> tools) throws IOException {
        Path dir = Files.createTempDirectory(tmp, "path");
        for (String tool : tools) {
            Path found = null;
            for (String entry : System.getenv("PATH").split(":")) {
                Path candidate = Path.of(entry.isEmpty() ? "." : entry, tool);
                if (Files.isExecutable(candidate)) {
                    found = candidate;
                    break;
                }
            }
            assumeTrue(found != null, tool + " is not installed here");
            script(dir.resolve(tool), "exec '" + found.toAbsolutePath() + "' \"$@\"");
        }
        return dir;
    }

    /**
     * A Debian package, laid out as dpkg-deb builds one (an ar archive of debian-binary, control.tar.xz and
     * the files in data.tar.COMPRESSION), holding the Fashion-MNIST subset's gzip files where Debian's package
     * has them.
     */
    private Path subsetDeb(String compression) throws IOException, InterruptedException {
        Path top = tmp.resolve("deb-tree-" + compression);
        Path tree = Files.createDirectories(top.resolve("usr/share/datasets/fashion-mnist"));
        for (String name : List.of("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")) {
            Files.copy(MnistSubset.fashionDir().resolve(name + ".gz"), tree.resolve(name + ".gz"));
        }
        String member = "data.tar." + compression;
        Path data = tmp.resolve(member);
        Result tar = run(List.of("tar", compression.equals("xz") ? "-cJf" : "-czf", data.toString(), "-C",
                top.toString(), "./usr"), Map.of());
        assertEquals(0, tar.status(), tar.stderr());

        ByteArrayOutputStream ar = new ByteArrayOutputStream();
        ar.writeBytes("!<arch>\n".getBytes(StandardCharsets.US_ASCII));
        Map<String, byte[]> members = new LinkedHashMap<>();
        members.put("debian-binary", "2.0\n".getBytes(StandardCharsets.US_ASCII));
        members.put("control.tar.xz", "not read by the script".getBytes(StandardCharsets.US_ASCII));
        members.put(member, Files.readAllBytes(data));
        members.forEach((name, bytes) -> {
            String header = String.format("%-16s%-12s%-6s%-6s%-8s%-10s`\n", name, "1591347949", "0", "0", "100644",
                    bytes.length);
            ar.writeBytes(header.getBytes(StandardCharsets.US_ASCII));
            ar.writeBytes(bytes);
            if (bytes.length % 2 == 1) {
                ar.write('\n');
            }
        });
        return Files.write(tmp.resolve("dataset-fashion-mnist_" + compression + ".deb"), ar.toByteArray());
    }

    @Test
    void withoutDpkgDebArAndTarUnpackThePackage() throws Exception {
        byte[] trainImages;
        try (var in = new GZIPInputStream(Files.newInputStream(
                MnistSubset.fashionDir().resolve("train-images-idx3-ubyte.gz")))) {
            trainImages = in.readAllBytes();
        }
        for (String compression : List.of("xz", "gz")) {
            List<String> tools = new ArrayList<>(FETCH_TOOLS);
            tools.addAll(List.of("ar", "tar", compression.equals("xz") ? "xz" : "gzip"));
            Path path = pathWith(tools.stream().distinct().toList());
            Path deb = subsetDeb(compression);
            Path dir = tmp.resolve("fashion-" + compression);

            Result result = fetch(path.toString(), Map.of("FASHION_MNIST_DEB", deb.toString()), dir.toString());
            assertEquals(1, result.status(), result.stderr());
            // The sum is that of the subset's training images, uncompressed: ar and tar found them in the package.
            assertTrue(result.stderr().contains("fetch-fashion-mnist: train-images-idx3-ubyte from " + deb
                    + " has MD5 " + md5(trainImages) + ", expected " + TRAIN_IMAGES_MD5 + "; not installing it"),
                    compression + ": " + result.stderr());
            assertFalse(Files.exists(dir), "only verified files reach DIR");
        }
    }

    @Test
    void withoutAnyUnpackerTheToolsAreNamed() throws Exception {
        Path path = pathWith(FETCH_TOOLS);
        Path deb = Files.writeString(tmp.resolve("some.deb"), "stands in for a package");
        Path dir = tmp.resolve("fashion");

        Result result = fetch(path.toString(), Map.of("FASHION_MNIST_DEB", deb.toString()), dir.toString());
        assertEquals(1, result.status(), result.stderr());
        assertTrue(result.stderr().contains("fetch-fashion-mnist: none of dpkg-deb, bsdtar, or ar with tar is"
                + " installed; one is needed to unpack dataset-fashion-mnist"), result.stderr());
        assertFalse(Files.exists(dir), "nothing made in DIR");

        // ar is there but not the package's compression.
        Path withAr = pathWith(List.of("dirname", "mktemp", "rm", "rmdir", "mkdir", "find", "head", "cat", "grep",
                "tr", "ar", "tar"));
        Result noXz = fetch(withAr.toString(), Map.of("FASHION_MNIST_DEB", subsetDeb("xz").toString()),
                dir.toString());
        assertEquals(1, noXz.status(), noXz.stderr());
        assertTrue(noXz.stderr().contains("fetch-fashion-mnist: xz is not installed; it is needed to unpack"
                + " data.tar.xz of "), noXz.stderr());
        assertFalse(Files.exists(dir), "nothing left in DIR");
    }

    // The launcher: which data set it fetches, into which folder, for which command line.

    /** The launcher's copy in {@link #launch}'s repository root. */
    private Path root;

    /**
     * A repository root of the launcher's own under tmp: a copy of scripts/gradscope; a target/gradscope.jar
     * with no pom.xml or sources to be older than, so it builds nothing (an mvn on the PATH fails the run if it
     * tries); in place of each fetch script, one that appends its name and arguments to fetches.log; and a java
     * on the PATH that writes its folder and arguments to java.log.
     */
    private void launcherRoot() throws IOException {
        root = Files.createDirectories(tmp.resolve("root")).toRealPath();
        Files.createDirectories(root.resolve("scripts"));
        Files.copy(Path.of("scripts/gradscope"), root.resolve("scripts/gradscope"));
        Files.createDirectories(root.resolve("target"));
        Files.writeString(root.resolve("target/gradscope.jar"), "stands in for the jar");
        for (DatasetKind kind : DatasetKind.values()) {
            script(root.resolve(kind.fetchScript()),
                    "echo \"$(basename \"$0\") $*\" >>'" + root.resolve("fetches.log") + "'");
        }
        standIn("java", "{ pwd; printf '%s\\n' \"$@\"; } >'" + root.resolve("java.log") + "'");
        standIn("mvn", "echo 'the launcher ran mvn' >&2\nexit 1");
    }

    private static void script(Path file, String body) throws IOException {
        Files.writeString(file, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /**
     * Runs the launcher's copy with {@code args}; returns the fetch scripts it ran with their arguments (one line
     * each), after checking that it ran java on the jar, in the root, with {@code args}.
     */
    private List<String> launch(String... args) throws IOException, InterruptedException {
        return launchIn(null, args);
    }

    /** {@link #launch} started in the working directory {@code cwd} (null: this JVM's). */
    private List<String> launchIn(Path cwd, String... args) throws IOException, InterruptedException {
        if (root == null) {
            launcherRoot();
        }
        Files.deleteIfExists(root.resolve("fetches.log"));
        Files.deleteIfExists(root.resolve("java.log"));
        List<String> command = new ArrayList<>(List.of(bash(), root.resolve("scripts/gradscope").toString()));
        command.addAll(List.of(args));
        Result result = run(command, Map.of("PATH", bin + ":" + System.getenv("PATH")), cwd);
        assertEquals(0, result.status(), String.join(" ", args) + ": " + result.stderr());
        List<String> java = new ArrayList<>(List.of(root.toString(), "-jar", root.resolve("target/gradscope.jar")
                .toString()));
        java.addAll(List.of(args));
        assertEquals(java, Files.readAllLines(root.resolve("java.log")), String.join(" ", args));
        Path fetches = root.resolve("fetches.log");
        return Files.exists(fetches) ? Files.readAllLines(fetches) : List.of();
    }

    private List<String> fetchesOf(DatasetKind kind) {
        return List.of(Path.of(kind.fetchScript()).getFileName() + " " + root.resolve(kind.defaultDir()));
    }

    @Test
    void theLauncherFetchesTheDataSetOfTheCommandLine() throws Exception {
        launcherRoot();
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("train", "--device", "cpu"));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("train", "--dataset", "fashion_mnist"));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("train", "--dataset=fashion_mnist", "--epochs", "1"));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("bench", "--dataset", "fashion_mnist"));
        // Folders the user names are not the launcher's to fill; bench kernels and compare read no data.
        assertEquals(List.of(), launch("train", "--dataset", "fashion_mnist", "--data-dir", "elsewhere"));
        assertEquals(List.of(), launch("train", "--data-dir=elsewhere"));
        assertEquals(List.of(), launch("bench", "kernels"));
        assertEquals(List.of(), launch("compare", "out/a", "out/b"));
        // An unknown data set is left to the CLI's usage error.
        assertEquals(List.of(), launch("train", "--dataset", "cifar10"));
    }

    /**
     * Review "testdata": evaluate and predict have no -q, so picocli takes -qh as --out's value (no help); the
     * launcher takes it for a help request and does not fetch the test files the command then reads. A cluster that
     * starts with one of the command's flags (-Vq) is refused as --out's value, and read as a help request elsewhere
     * (GradScopeCliTest): no data either way.
     */
    @Test
    void aClusterThatTheCommandTakesAsAValueIsNoHelpRequest() throws Exception {
        launcherRoot();
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("evaluate", "--out", "-qh", "w.safetensors"));
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("predict", "w.safetensors", "--test-index", "0", "--out",
                "-qV"));
        assertEquals(List.of(), launch("predict", "w.safetensors", "--test-index", "0", "--out", "-Vq"));
        assertEquals(List.of(), launch("train", "--out", "-qh"), "train has -q: refused as --out's value");
    }

    /**
     * The CLI runs in the root, so it reads a relative weights file or run folder from there, whatever the user's
     * working directory: the launcher looks up the data set in the same file, not in one of the same name where it
     * was started.
     */
    @Test
    void aRelativeWeightsFileOrRunIsTheOneInTheRoot() throws Exception {
        launcherRoot();
        Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
        weightsOf(DatasetKind.FASHION_MNIST, root.resolve("model.safetensors"));
        weightsOf(DatasetKind.MNIST, elsewhere.resolve("model.safetensors"));
        savedRunIn(Files.createDirectories(root.resolve("runs/a")), DatasetKind.FASHION_MNIST,
                DatasetKind.FASHION_MNIST.defaultDir());
        savedRunIn(Files.createDirectories(elsewhere.resolve("runs/a")), DatasetKind.MNIST,
                DatasetKind.MNIST.defaultDir());
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launchIn(elsewhere, "evaluate", "model.safetensors"));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launchIn(elsewhere, "predict", "model.safetensors",
                "--test-index", "0"));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launchIn(elsewhere, "train", "--resume", "runs/a"));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launchIn(elsewhere, "train", "--resume=runs/a"));
        assertEquals(fetchesOf(DatasetKind.MNIST), launchIn(root, "evaluate",
                elsewhere.resolve("model.safetensors").toString()), "an absolute path is the file it names");
    }

    /** A weights file in {@code file} whose config records a train run on {@code kind}. */
    private static void weightsOf(DatasetKind kind, Path file) throws IOException {
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("command", "train");
        config.put("dataset", kind.id());
        SafeTensors.write(file, Map.of("config", new ObjectMapper().writeValueAsString(config)),
                List.of(new SafeTensors.Entry("w", new int[] {1}, new float[] {1})));
    }

    @Test
    void helpAndVersionFetchNothing() throws Exception {
        launcherRoot();
        assertEquals(List.of(), launch("evaluate", "-h"));
        assertEquals(List.of(), launch("train", "--help"));
        assertEquals(List.of(), launch("train", "--dataset", "fashion_mnist", "-h"));
        assertEquals(List.of(), launch("bench", "-V"));
        assertEquals(List.of(), launch("experiment", "losses", "--version"));
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("experiment", "losses"), "without -h it does fetch");
        // as the CLI reads them: within a cluster of short flags too
        assertEquals(List.of(), launch("train", "-qh"));
        assertEquals(List.of(), launch("evaluate", "weights.safetensors", "-Vq"));
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("train", "-q"));
        // as an option's value, the CLI refuses one (a usage error, GradScopeCliTest): no data for that either
        assertEquals(List.of(), launch("train", "--out", "-h"));
        assertEquals(List.of(), launch("compare", "a", "b", "--names", "-V"));
        // after "--", a file's name: here the weights file's, whose data set is fetched
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("evaluate", "--", "-h"));
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("predict", "--test-index", "0", "--", "--version"));
    }

    @Test
    void evaluateAndPredictNeedOnlyTheTestFiles() throws Exception {
        launcherRoot();
        Path mnist = Files.createDirectories(root.resolve(DatasetKind.MNIST.defaultDir()));
        Files.writeString(mnist.resolve("t10k-images-idx3-ubyte.gz"), "images");
        Files.writeString(mnist.resolve("t10k-labels-idx1-ubyte"), "labels");
        // a weights file that records no data set is MNIST's
        Path weights = tmp.resolve("plain.safetensors");
        SafeTensors.write(weights, Map.of(), List.of(new SafeTensors.Entry("w", new int[] {1}, new float[] {1})));
        assertEquals(List.of(), launch("evaluate", weights.toString()), "the test files are there");
        assertEquals(List.of(), launch("predict", weights.toString(), "--test-index", "0"));
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("train"), "train reads the training files too");
        Files.delete(mnist.resolve("t10k-labels-idx1-ubyte"));
        Files.writeString(mnist.resolve("train-images-idx3-ubyte"), "images");
        Files.writeString(mnist.resolve("train-labels-idx1-ubyte"), "labels");
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("evaluate", weights.toString()), "a test file is missing");
    }

    @Test
    void theLauncherFetchesUnlessAllFourFilesAreThere() throws Exception {
        launcherRoot();
        Path mnist = Files.createDirectories(root.resolve(DatasetKind.MNIST.defaultDir()));
        // What an interrupted fetch can leave: some of the files.
        Files.writeString(mnist.resolve("train-images-idx3-ubyte"), "images");
        Files.writeString(mnist.resolve("train-labels-idx1-ubyte.gz"), "labels");
        Files.writeString(mnist.resolve("t10k-images-idx3-ubyte"), "images");
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("train"));
        Files.writeString(mnist.resolve("t10k-labels-idx1-ubyte.gz"), "labels");
        assertEquals(List.of(), launch("train"), "all four there, plain or gzip");
        // Fashion-MNIST's folder is empty still.
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("train", "--dataset", "fashion_mnist"));
    }

    @Test
    void evaluateAndResumeFetchTheDataSetTheRunRecorded() throws Exception {
        // A real run on the Fashion-MNIST subset: its weights and training state record the data set and folder.
        Path run = tmp.resolve("fashion-run");
        StringWriter err = new StringWriter();
        assertEquals(0, GradScope.run(new PrintWriter(err, true), "train", "--dataset", "fashion_mnist",
                "--data-dir", MnistSubset.fashionDir().toString(), "--epochs", "1", "--out", run.toString(),
                "--device", "cpu", "--hidden", "32,16", "--train-limit", "300", "--quiet"), err.toString());
        Path weights = run.resolve("model.safetensors");
        assertTrue(Files.exists(weights) && Files.exists(run.resolve("training-state.safetensors")));

        launcherRoot();
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("evaluate", weights.toString()));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("evaluate", "--device", "cpu", "--batch-size",
                "100", weights.toString(), "--out", "result.json"));
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("evaluate", weights.toString(), "--dataset", "mnist"),
                "--dataset overrides the file's");
        assertEquals(List.of(), launch("evaluate", weights.toString(), "--data-dir", "elsewhere"));
        // predict reads the data set only for --test-index: image files need none.
        assertEquals(List.of(), launch("predict", weights.toString(), "digit.png", "--top", "5"));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("predict", "--top", "5", weights.toString(),
                "--test-index", "0,1"));
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("predict", weights.toString(), "--test-index=3"));
        // the values of predict's options are not taken for the weights file (the CLI then refuses --frame here)
        assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("predict", "--frame", "digit", "--invert", "no",
                "--top", "2", weights.toString(), "--test-index", "0"));
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("predict", weights.toString(), "--test-index", "3",
                "--dataset", "mnist"));
        // A weights file that records no data set is MNIST's, as the CLI reads it.
        Path plain = tmp.resolve("plain.safetensors");
        SafeTensors.write(plain, Map.of(), List.of(new SafeTensors.Entry("w", new int[] {1}, new float[] {1})));
        assertEquals(fetchesOf(DatasetKind.MNIST), launch("evaluate", plain.toString()));

        // The run trained from a folder of its own, which the launcher does not fill.
        assertEquals(List.of(), launch("train", "--resume", run.toString(), "--epochs", "2"));
        // One saved as train writes it when it read the data set's own folder: the folder as given, relative, which
        // the CLI started in the root reads from there, or the absolute folder, as a version recorded it for a while.
        for (String dataDir : List.of(root.resolve(DatasetKind.FASHION_MNIST.defaultDir()).toString(),
                DatasetKind.FASHION_MNIST.defaultDir())) {
            Path defaultRun = savedRun(DatasetKind.FASHION_MNIST, dataDir);
            assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("train", "--resume", defaultRun.toString(),
                    "--epochs", "2"), dataDir);
            assertEquals(fetchesOf(DatasetKind.FASHION_MNIST), launch("train", "--resume=" + defaultRun, "--epochs",
                    "2"), dataDir);
        }
        assertEquals(List.of(), launch("train", "--resume", savedRun(DatasetKind.FASHION_MNIST,
                tmp.resolve("own").toString()).toString()), "another absolute folder is the user's");
        assertEquals(List.of(), launch("train", "--resume", savedRun(DatasetKind.FASHION_MNIST, "own").toString()),
                "another relative folder is the user's");
    }

    /** A folder with a training state whose config records a train run on {@code kind} read from {@code dataDir}. */
    private Path savedRun(DatasetKind kind, String dataDir) throws IOException {
        return savedRunIn(Files.createTempDirectory(tmp, "saved-run"), kind, dataDir);
    }

    /** {@link #savedRun} in the folder {@code dir}. */
    private static Path savedRunIn(Path dir, DatasetKind kind, String dataDir) throws IOException {
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("command", "train");
        config.put("dataset", kind.id());
        config.put("data_dir", dataDir);
        SafeTensors.write(dir.resolve("training-state.safetensors"),
                Map.of("config", new ObjectMapper().writeValueAsString(config)),
                List.of(new SafeTensors.Entry("w", new int[] {1}, new float[] {1})));
        return dir;
    }
}
