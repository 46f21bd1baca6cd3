package dev.gradscope.nn;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
import java.util.Map;

/**
 * An exported ONNX model run by ONNX Runtime (its Java API, on the CPU), as a user of the file would run it: the
 * independent implementation the export is checked against.
 */
public final class OnnxRuntimeModel implements AutoCloseable {
    /** What the graph computes for a batch: its two outputs, {@code [rows][classes]} each. */
    public record Outputs(float[][] logits, float[][] probabilities) {
    }

    private final OrtEnvironment environment = OrtEnvironment.getEnvironment();
    private final OrtSession session;

    private OnnxRuntimeModel(OrtSession session) {
        this.session = session;
    }

    /** Loads the model from the bytes of an ONNX file; ONNX Runtime checks it (and refuses a malformed one). */
    public static OnnxRuntimeModel of(byte[] model) throws OrtException {
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            return new OnnxRuntimeModel(OrtEnvironment.getEnvironment().createSession(model, options));
        }
    }

    /** Loads the model from an ONNX file. */
    public static OnnxRuntimeModel of(Path file) throws OrtException {
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            return new OnnxRuntimeModel(OrtEnvironment.getEnvironment().createSession(file.toString(), options));
        }
    }

    public OrtSession session() {
        return session;
    }

    /** Runs the graph on the rows of {@code x}, fed as its input {@value OnnxExport#INPUT}. */
    public Outputs run(float[][] x) throws OrtException {
        try (OnnxTensor input = OnnxTensor.createTensor(environment, x);
             OrtSession.Result result = session.run(Map.of(OnnxExport.INPUT, input))) {
            float[][] logits = (float[][]) result.get(OnnxExport.LOGITS).orElseThrow().getValue();
            float[][] probabilities = (float[][]) result.get(OnnxExport.PROBABILITIES).orElseThrow().getValue();
            return new Outputs(logits, probabilities);
        }
    }

    @Override
    public void close() throws OrtException {
        session.close();
    }
}
