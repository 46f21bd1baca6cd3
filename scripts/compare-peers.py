#!/usr/bin/env python3
"""Times the chapter's MNIST MLP in PyTorch and JAX, for comparison with `gradscope bench`.

The same model, data, initialisation, batch size and optimizer as `gradscope bench`: a
784-512-256-128-64-10 MLP, ReLU hidden layers, softmax output with categorical cross-entropy, Adam
(lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7: Keras's defaults), batch 256, the 60000 MNIST
training images with pixels scaled by 1/255, glorot_uniform kernels and zero biases, the data on the
device before the first epoch and a fresh shuffle every epoch. Each variant trains one warm-up epoch
(which includes compilation or CUDA-graph capture) and then --epochs timed epochs, synchronising with
the device before and after each; it reports the median of the timed epochs.

Variants (--only picks some):
  pytorch-eager       PyTorch, one eager training step per batch, torch.optim.Adam (its default
                      implementation: foreach on CUDA).
  pytorch-cuda-graph  PyTorch, the whole training step (gather of the batch from a device-side
                      permutation, forward, loss, backward, capturable torch.optim.Adam step, loss
                      total) captured once as a CUDA graph and replayed per batch; the last, smaller
                      batch (60000 = 234 * 256 + 96) has a second graph. CUDA only.
  jax-jit-step        JAX, one jax.jit-compiled step per batch (a second compilation serves the last,
                      smaller batch).
  jax-scan-epoch      JAX, the whole epoch one jit-compiled function: jax.lax.scan over the full
                      batches, then the last, smaller batch as one more step inside the same function
                      (no padding, no masking: its shape is known when the function is traced).
JAX runs twice, with FP32 matmuls (precision HIGHEST, "precision": "fp32") and with JAX's default
("precision": "default", TF32 on Ampere and newer GPUs). PyTorch runs with TF32 off
(torch.backends.cuda.matmul.allow_tf32 False, "precision": "fp32"); --tf32 adds a run with it on.

Adam. GradScope (src/main/java/dev/gradscope/nn/Adam.java) and Keras update
    m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;
    p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
and the JAX variants do exactly that, written out in jax.numpy. torch.optim.Adam adds epsilon to the
bias-corrected sqrt(v) / sqrt(1 - b2^t) instead, which equals the formula above with epsilon scaled
by sqrt(1 - b2^t) (0.03 eps at step 1, 0.47 eps after one epoch, -> eps). The PyTorch variants use
torch.optim.Adam as a PyTorch user would (its foreach and capturable paths are what is being timed),
with epsilon 1e-7; the JSON says so in "optimizer": {"update": "torch.optim.Adam"}. The difference
shows in the losses, slightly, and not in the time: on 2000 images after 3 epochs (CPU), final_loss
was 0.3840 with torch.optim.Adam, 0.3861 with the Keras update written out in PyTorch, 0.3858 in JAX.

The initial weights come from NumPy (seed --seed), or with --initial-weights FILE from GradScope's own
draw (`gradscope bench --save-initial-weights FILE`, a safetensors file read here with NumPy alone); each
epoch's shuffle comes from a NumPy generator with the seed, uploaded to the device at the start of the
epoch as GradScope does. So every variant starts from the same weights, GradScope's too with FILE, and
sees the same batches (GradScope's shuffles differ: its generator is another). The loss is summed on the device and read once per epoch; "final_loss" is the last
epoch's mean loss over its examples, as in `gradscope bench`.

Processes: when both frameworks are asked for, each runs in a child process of this script (PyTorch and
JAX load their own, possibly different, CUDA libraries and keep GPU memory; a crash in one costs only
its own figures). --torch-python and --jax-python run a framework's child with another Python, such as
a virtual environment's.

Output: one JSON object per variant, with the field names of `gradscope bench --out` (backend is the
variant's name) plus "precision", "framework" and "notes"; a variant that cannot run here is
{"backend": ..., "precision": ..., "skipped": "reason"}, one that failed {"backend": ..., "failed":
"error"}. The JSON array goes to stdout (and --out FILE), then an aligned table. Progress and
skip reasons go to stderr.

Exit status: 0 when at least one variant ran and none failed; 1 when a variant failed or the data
cannot be read; 2 for usage errors; 3 when every requested variant was skipped (nothing measured).

Needs Python 3.9+ and NumPy; PyTorch and JAX are used when installed (either may be absent).
Usage: scripts/compare-peers.py [--data-dir data/mnist] [--epochs 5] [--only NAME,...] [--seed 42]
                                [--initial-weights FILE] [--device cuda|cpu] [--train-limit N]
                                [--batch-size 256] [--tf32]
                                [--torch-python PY] [--jax-python PY] [--out FILE.json]
"""

import argparse
import gc
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

VARIANTS = ("pytorch-eager", "pytorch-cuda-graph", "jax-jit-step", "jax-scan-epoch")
HIDDEN = (512, 256, 128, 64)
INPUTS = 28 * 28
CLASSES = 10
LEARNING_RATE = 0.001
BETA_1 = 0.9
BETA_2 = 0.999
EPSILON = 1e-7
# Eager steps on the capture stream before a CUDA graph is captured, so that cuBLAS handles, workspaces
# and the optimizer's state exist before capture (none may be created inside it). The weights and
# optimizer state are restored afterwards, so training still starts from the initial weights.
GRAPH_WARMUP_STEPS = 3

EXIT_OK, EXIT_FAILED, EXIT_NOTHING_RAN = 0, 1, 3  # and 2, usage errors, from argparse


class DataError(Exception):
    """MNIST is missing or malformed; the message names the file."""


class Skip(Exception):
    """The variant cannot run here; the message says why."""


def log(message):
    print("compare-peers: " + message, file=sys.stderr, flush=True)


# --- Data ---------------------------------------------------------------------------------------

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


def read_idx(data_dir, name, magic):
    """The IDX file NAME (or NAME.gz) in DATA_DIR as a uint8 array shaped as its header says."""
    plain = os.path.join(data_dir, name)
    packed = plain + ".gz"
    if os.path.isfile(plain):
        path = plain
        with open(path, "rb") as f:
            data = f.read()
    elif os.path.isfile(packed):
        path = packed
        try:
            with gzip.open(path, "rb") as f:
                data = f.read()
        except (OSError, EOFError) as e:  # BadGzipFile is an OSError; a cut-off stream is an EOFError
            raise DataError("%s: not a readable gzip file (%s); fetch it again (scripts/fetch-mnist.sh)" % (path, e))
    else:
        raise DataError("neither %s nor %s.gz exists; run scripts/fetch-mnist.sh or pass --data-dir" % (plain, name))
    if len(data) < 4:
        raise DataError("%s: %d bytes, too short for an IDX header" % (path, len(data)))
    found = int.from_bytes(data[0:4], "big")
    if found != magic:
        kinds = {IMAGES_MAGIC: "an images file", LABELS_MAGIC: "a labels file"}
        raise DataError("%s: IDX magic number 0x%08x, expected 0x%08x (%s); %s" % (
            path, found, magic, kinds[magic],
            "it is " + kinds[found] + ": are the files swapped?" if found in kinds else "not an MNIST IDX file"))
    rank = magic & 0xFF
    header = 4 + 4 * rank
    if len(data) < header:
        raise DataError("%s: %d bytes, too short for its %d-dimensional IDX header" % (path, len(data), rank))
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank))
    expected = header + math.prod(shape)
    if len(data) != expected:
        raise DataError("%s: the header says %s, %d bytes in all, but it holds %d bytes (%s)" % (
            path, "x".join(map(str, shape)), expected, len(data),
            "truncated" if len(data) < expected else "trailing bytes"))
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape), path


def load_mnist(data_dir, limit):
    """MNIST's training set: float32 pixels in [0, 1] shaped (n, 784) and int64 labels, the first LIMIT."""
    images, images_path = read_idx(data_dir, "train-images-idx3-ubyte", IMAGES_MAGIC)
    labels, labels_path = read_idx(data_dir, "train-labels-idx1-ubyte", LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError("%s: images of %dx%d, expected 28x28" % (images_path, images.shape[1], images.shape[2]))
    if images.shape[0] != labels.shape[0]:
        raise DataError("%s holds %d images but %s holds %d labels" % (
            images_path, images.shape[0], labels_path, labels.shape[0]))
    if labels.size and labels.max() >= CLASSES:
        raise DataError("%s: label %d found; MNIST labels are 0 to 9" % (labels_path, labels.max()))
    n = images.shape[0] if limit is None else min(limit, images.shape[0])
    pixels = images[:n].reshape(n, INPUTS).astype(np.float32) * np.float32(1.0 / 255.0)
    return pixels, labels[:n].astype(np.int64)


# --- What every variant shares -------------------------------------------------------------------

def glorot_uniform(seed):
    """[(kernel (fan_in, fan_out), bias (fan_out,))] per layer, float32: U(+-sqrt(6/(in+out))), zero biases."""
    rng = np.random.default_rng(seed)
    sizes = (INPUTS,) + HIDDEN + (CLASSES,)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
        layers.append((kernel, np.zeros(fan_out, dtype=np.float32)))
    return layers


def read_safetensors(path):
    """{name: float32 array} of a safetensors file of F32 tensors, checked as GradScope's reader checks it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError("%s: cannot read: %s" % (path, e))
    if len(data) < 8:
        raise DataError("%s: not a safetensors file: %d bytes, the header length alone needs 8" % (path, len(data)))
    length = int.from_bytes(data[:8], "little")
    if length < 2 or length > len(data) - 8:
        raise DataError("%s: not a safetensors file: its first 8 bytes give a header of %d bytes, the file has %d "
                        "bytes after them" % (path, length, len(data) - 8))
    try:
        header = json.loads(data[8:8 + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DataError("%s: the safetensors header is not valid JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise DataError("%s: the safetensors header is not a JSON object" % path)
    header.pop("__metadata__", None)
    start = 8 + length

    def count(value):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    for name, info in header.items():
        if not (isinstance(info, dict) and isinstance(info.get("shape"), list) and all(map(count, info["shape"]))
                and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
                and all(map(count, info["data_offsets"]))):
            raise DataError("%s: tensor '%s' is not described by a dtype, a shape of counts and data_offsets "
                            "[begin, end]: %r" % (path, name, info))
        if info.get("dtype") != "F32":
            raise DataError("%s: tensor '%s' is %s; F32 expected" % (path, name, info.get("dtype")))
    tensors, covered = {}, 0
    for name, info in sorted(header.items(), key=lambda item: tuple(item[1]["data_offsets"])):
        shape, (begin, end) = tuple(info["shape"]), info["data_offsets"]
        if begin != covered or end - begin != 4 * math.prod(shape):
            raise DataError("%s: tensor '%s' has data_offsets [%s, %s], which do not follow the tensor before it "
                            "or fit its shape %s" % (path, name, begin, end, list(shape)))
        covered = end
        tensors[name] = np.frombuffer(data, dtype="<f4", count=math.prod(shape), offset=start + begin).reshape(shape)
    if start + covered != len(data):
        raise DataError("%s: the tensors cover %d data bytes, the file has %d after its header" % (
            path, covered, len(data) - start))
    return tensors


def gradscope_initial_weights(path):
    """[(kernel, bias)] per layer from a weights file GradScope wrote for this network (dense ... dense_4)."""
    tensors = read_safetensors(path)
    sizes = (INPUTS,) + HIDDEN + (CLASSES,)
    names = ["dense"] + ["dense_%d" % i for i in range(1, len(sizes) - 1)]
    expected = {}
    for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
        expected[name + ".kernel"] = (fan_in, fan_out)
        expected[name + ".bias"] = (fan_out,)
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    if found != expected:
        raise DataError("%s: holds %s; the chapter's ReLU MLP needs %s" % (
            path, ", ".join("%s %s" % (n, list(s)) for n, s in found.items()),
            ", ".join("%s %s" % (n, list(s)) for n, s in expected.items())))
    for name, t in tensors.items():
        if not np.all(np.isfinite(t)):
            raise DataError("%s: tensor '%s' holds a NaN or an infinity" % (path, name))
    return [(tensors[n + ".kernel"].copy(), tensors[n + ".bias"].copy()) for n in names]


def epoch_orders(seed, n):
    """An endless series of shuffles of range(n), the same for every variant given the same seed."""
    # A stream apart from the weights' (seed + 1), so that changing the model would not change the shuffles.
    rng = np.random.default_rng(seed + 1)
    while True:
        yield rng.permutation(n).astype(np.int64)


def time_epochs(run_epoch, epochs):
    """run_epoch() trains one epoch and returns once the device is idle, with the mean loss.

    Returns (warm-up seconds, [timed seconds], last loss).
    """
    start = time.perf_counter()
    loss = run_epoch()
    warmup = time.perf_counter() - start
    timed = []
    for _ in range(epochs):
        start = time.perf_counter()
        loss = run_epoch()
        timed.append(time.perf_counter() - start)
    return warmup, timed, loss


def result_record(ctx, backend, precision, device, framework, update, notes, warmup, timed, loss, extra=None):
    """The same fields as `gradscope bench --out`, plus precision, framework and notes."""
    record = {
        "backend": backend,
        "device": device,
        "activation": "relu",
        "activation_parameter": None,
        "learn_parameter": False,
        "hidden": list(HIDDEN),
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "learning_rate": LEARNING_RATE, "beta_1": BETA_1, "beta_2": BETA_2,
                      "epsilon": EPSILON, "update": update},
        "init": "glorot_uniform" if ctx.initial_weights is None else "from initial_weights",
        "initial_weights": ctx.initial_weights,
        "batch_size": ctx.batch_size,
        "profile": False,
        "train_examples": ctx.n,
        "warmup_epoch_seconds": warmup,
        "epoch_seconds": timed,
        "median_epoch_seconds": statistics.median(timed),
        "final_loss": loss,
        "precision": precision,
    }
    record.update(extra or {})
    record["framework"] = framework
    record["notes"] = notes
    return record


class Context:
    """The inputs every variant shares: data on the host, initial weights, sizes, options."""

    def __init__(self, args, pixels, labels, initial=None):
        self.pixels = pixels
        self.labels = labels
        self.n = pixels.shape[0]
        self.batch_size = min(args.batch_size, self.n)
        self.full_batches, self.tail = divmod(self.n, self.batch_size)
        self.epochs = args.epochs
        self.seed = args.seed
        self.device = args.device
        self.initial_weights = args.initial_weights
        self.initial = initial if initial is not None else glorot_uniform(args.seed)


def import_failure(framework, module, error):
    """The skip reason for a framework whose import raised ERROR."""
    missing = isinstance(error, ModuleNotFoundError) and error.name == module
    return "%s %s here (import %s: %s: %s)" % (framework, "is not installed" if missing else "does not import",
                                               module, type(error).__name__, error)


# --- PyTorch -------------------------------------------------------------------------------------

def import_torch():
    try:
        import torch
    except Exception as e:  # not installed, or a broken install failing while it loads
        raise Skip(import_failure("PyTorch", "torch", e))
    return torch


def torch_has_cuda():
    try:
        torch = import_torch()
    except Skip:
        return False
    return torch.cuda.is_available()


def set_torch_tf32(torch, enabled):
    """Switches TF32 for float32 matmuls; returns what torch now reports, for the JSON."""
    matmul = torch.backends.cuda.matmul
    try:
        matmul.fp32_precision  # noqa: B018 (only whether it exists)
        new_setting = True
    except (AttributeError, AssertionError):  # older PyTorch answers an unknown name with an AssertionError
        new_setting = False
    if new_setting:
        # PyTorch 2.9+: the new setting; mixing it with the old allow_tf32 flag is an error there.
        matmul.fp32_precision = "tf32" if enabled else "ieee"
        return {"allow_tf32": matmul.fp32_precision == "tf32", "fp32_precision": matmul.fp32_precision}
    matmul.allow_tf32 = enabled
    return {"allow_tf32": bool(matmul.allow_tf32)}


class TorchSetup:
    """Data on the device and a model with the shared initial weights, for one PyTorch variant."""

    def __init__(self, ctx, precision):
        torch = self.torch = import_torch()
        if ctx.device == "cuda":
            if not torch.cuda.is_available():
                raise Skip("this PyTorch (%s) sees no CUDA device (torch.cuda.is_available() is False); "
                           "--device cpu runs it on the CPU" % torch.__version__)
            self.device = torch.device("cuda")
            self.device_name = torch.cuda.get_device_name(self.device)
            self.flags = set_torch_tf32(torch, precision == "tf32")
        else:
            if precision == "tf32":
                raise Skip("TF32 is a CUDA matmul mode; nothing to compare on the CPU")
            self.device = torch.device("cpu")
            self.device_name = "cpu"
            self.flags = {"allow_tf32": False}
        self.framework = "torch " + torch.__version__
        self.images = torch.from_numpy(ctx.pixels).to(self.device)
        self.labels = torch.from_numpy(ctx.labels).to(self.device)
        layers = []
        for kernel, bias in ctx.initial:
            linear = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(kernel.T))  # torch keeps (out, in)
                linear.bias.copy_(torch.from_numpy(bias))
            layers += [linear, torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1]).to(self.device)  # no ReLU after the output layer

    def synchronize(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def step(self, optimizer, index, loss_total):
        """One training step on the rows INDEX of the data: forward, loss, backward, update, loss total."""
        F = self.torch.nn.functional
        x = self.images.index_select(0, index)
        y = self.labels.index_select(0, index)
        loss = F.cross_entropy(self.model(x), y)  # log-softmax + categorical cross-entropy, batch mean
        loss.backward()
        optimizer.step()
        loss_total.add_(loss.detach() * index.numel())


def run_pytorch_eager(ctx, precision):
    setup = TorchSetup(ctx, precision)
    torch = setup.torch
    optimizer = torch.optim.Adam(setup.model.parameters(), lr=LEARNING_RATE, betas=(BETA_1, BETA_2), eps=EPSILON)
    loss_total = torch.zeros((), device=setup.device)
    orders = epoch_orders(ctx.seed, ctx.n)

    def run_epoch():
        order = torch.from_numpy(next(orders)).to(setup.device)
        loss_total.zero_()
        for first in range(0, ctx.n, ctx.batch_size):
            optimizer.zero_grad(set_to_none=True)
            setup.step(optimizer, order[first:first + ctx.batch_size], loss_total)
        mean = loss_total.item() / ctx.n  # waits for the device
        setup.synchronize()
        return mean

    setup.synchronize()
    warmup, timed, loss = time_epochs(run_epoch, ctx.epochs)
    return result_record(ctx, "pytorch-eager", precision, setup.device_name, setup.framework, "torch.optim.Adam",
                         "one eager step per batch: index_select gather, forward, F.cross_entropy, backward, "
                         "torch.optim.Adam (default implementation)", warmup, timed, loss, setup.flags)


def capture_graph(torch, stream, step):
    """STEP captured on STREAM as a CUDA graph (capture runs nothing); graph.replay() runs it."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        step()
    return graph


def run_pytorch_cuda_graph(ctx, precision):
    if ctx.device != "cuda":
        raise Skip("CUDA graphs need a CUDA device, and this run is on the CPU (--device cuda picks the GPU)")
    setup = TorchSetup(ctx, precision)
    torch = setup.torch
    device, batch = setup.device, ctx.batch_size
    optimizer = torch.optim.Adam(setup.model.parameters(), lr=LEARNING_RATE, betas=(BETA_1, BETA_2), eps=EPSILON,
                                 capturable=True)
    # Static buffers the graphs read and write at fixed addresses: the epoch's order, which full batch
    # comes next (advanced inside the graph, so a replay needs no host input), and the loss total.
    order = torch.arange(ctx.n, dtype=torch.int64, device=device)  # valid indices for the warm-up steps
    next_batch = torch.zeros(1, dtype=torch.int64, device=device)
    loss_total = torch.zeros((), device=device)
    full_batch_rows = order[:ctx.full_batches * batch].view(ctx.full_batches, batch)
    tail_rows = order[ctx.full_batches * batch:]

    def full_step():
        setup.step(optimizer, full_batch_rows.index_select(0, next_batch).view(-1), loss_total)
        next_batch.add_(1)

    def tail_step():
        setup.step(optimizer, tail_rows, loss_total)

    steps = ([full_step] if ctx.full_batches else []) + ([tail_step] if ctx.tail else [])
    graphs = []

    def capture():
        initial = [p.detach().clone() for p in setup.model.parameters()]
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for step in steps:
                for _ in range(GRAPH_WARMUP_STEPS):
                    next_batch.zero_()
                    optimizer.zero_grad(set_to_none=True)
                    step()
        torch.cuda.current_stream(device).wait_stream(stream)
        with torch.no_grad():  # back to the initial weights and a fresh optimizer
            for p, p0 in zip(setup.model.parameters(), initial):
                p.copy_(p0)
            for state in optimizer.state.values():
                for value in state.values():
                    if torch.is_tensor(value):
                        value.zero_()  # exp_avg, exp_avg_sq and the device-side step count
        for step in steps:
            # No gradients before capture: the captured backward allocates them in the graph's pool and
            # every replay overwrites them, so nothing needs zeroing between steps.
            optimizer.zero_grad(set_to_none=True)
            graphs.append(capture_graph(torch, stream, step))  # the warm-up stream: its cuBLAS workspace exists

    orders = epoch_orders(ctx.seed, ctx.n)

    def run_epoch():
        if not graphs:
            capture()  # part of the warm-up epoch, as compilation is for JAX
        order.copy_(torch.from_numpy(next(orders)))
        next_batch.zero_()
        loss_total.zero_()
        if ctx.full_batches:
            for _ in range(ctx.full_batches):
                graphs[0].replay()
        if ctx.tail:
            graphs[-1].replay()
        mean = loss_total.item() / ctx.n
        setup.synchronize()
        return mean

    setup.synchronize()
    warmup, timed, loss = time_epochs(run_epoch, ctx.epochs)
    graph_note = "one graph for the %d-row batches" % batch if ctx.full_batches else ""
    if ctx.tail:
        graph_note += (" and one" if graph_note else "one graph") + " for the last %d-row batch" % ctx.tail
    return result_record(ctx, "pytorch-cuda-graph", precision, setup.device_name, setup.framework,
                         "torch.optim.Adam", "whole training step (gather from a device-side order, forward, "
                         "loss, backward, capturable torch.optim.Adam) as CUDA graphs, %s; the warm-up epoch "
                         "includes %d eager warm-up steps per graph and the capture" % (graph_note,
                                                                                      GRAPH_WARMUP_STEPS),
                         warmup, timed, loss, setup.flags)


# --- JAX -----------------------------------------------------------------------------------------

def import_jax():
    # JAX reserves 75% of GPU memory when it starts unless told not to; PyTorch shares the GPU here.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        import jax
        import jax.numpy  # noqa: F401 (jax.numpy is used through the jax module)
    except Exception as e:  # not installed, or a broken install (a missing CUDA plugin library, say)
        raise Skip(import_failure("JAX", "jax", e))
    return jax


def jax_device(jax, device):
    try:
        return jax.devices("gpu" if device == "cuda" else "cpu")[0]
    except RuntimeError as e:
        raise Skip("JAX %s has no %s backend (%s)" % (jax.__version__, "GPU" if device == "cuda" else "CPU",
                                                      str(e).splitlines()[0]))


def jax_has_gpu():
    try:
        jax = import_jax()
        jax_device(jax, "cuda")
    except Skip:
        return False
    return True


class JaxSetup:
    """Data and initial state on one JAX device, and the training step, for one JAX variant."""

    def __init__(self, ctx, precision):
        jax = self.jax = import_jax()
        self.device = jax_device(jax, ctx.device)
        self.device_name = self.device.device_kind if self.device.platform != "cpu" else "cpu"
        self.framework = "jax %s (%s)" % (jax.__version__, self.device.platform)
        self.precision = jax.lax.Precision.HIGHEST if precision == "fp32" else None
        self.images = jax.device_put(ctx.pixels, self.device)
        self.labels = jax.device_put(ctx.labels.astype(np.int32), self.device)
        self.ctx = ctx

    def initial_state(self):
        """(params, first moments, second moments, step count, loss total), all on the device."""
        jax, ctx = self.jax, self.ctx
        params = [(kernel, bias) for kernel, bias in ctx.initial]
        first = [(np.zeros_like(kernel), np.zeros_like(bias)) for kernel, bias in ctx.initial]
        second = [(np.zeros_like(kernel), np.zeros_like(bias)) for kernel, bias in ctx.initial]
        return jax.device_put((params, first, second, np.float32(0), np.float32(0)), self.device)

    def train_step(self, state, images, labels, index):
        """One step on the rows INDEX: forward, loss, gradients, Keras's Adam update, loss total."""
        jax = self.jax
        jnp = jax.numpy
        precision = self.precision

        def mean_loss(params, x, y):
            for kernel, bias in params[:-1]:
                x = jax.nn.relu(jnp.dot(x, kernel, precision=precision) + bias)
            kernel, bias = params[-1]
            log_probabilities = jax.nn.log_softmax(jnp.dot(x, kernel, precision=precision) + bias)
            return -jnp.mean(jnp.take_along_axis(log_probabilities, y[:, None], axis=1))

        params, m, v, t, loss_total = state
        x = jnp.take(images, index, axis=0)
        y = jnp.take(labels, index, axis=0)
        loss, grads = jax.value_and_grad(mean_loss)(params, x, y)
        t = t + 1
        step_size = LEARNING_RATE * jnp.sqrt(1 - BETA_2 ** t) / (1 - BETA_1 ** t)
        tree_map = jax.tree_util.tree_map
        m = tree_map(lambda m_, g: BETA_1 * m_ + (1 - BETA_1) * g, m, grads)
        v = tree_map(lambda v_, g: BETA_2 * v_ + (1 - BETA_2) * g * g, v, grads)
        params = tree_map(lambda p, m_, v_: p - step_size * m_ / (jnp.sqrt(v_) + EPSILON), params, m, v)
        return params, m, v, t, loss_total + loss * index.shape[0]

    def timed_run(self, run_epoch_on_device):
        """Times epochs of run_epoch_on_device(state, order on the device) -> state; returns time_epochs's."""
        jax, ctx = self.jax, self.ctx
        orders = epoch_orders(ctx.seed, ctx.n)
        state = [self.initial_state()]

        def run_epoch():
            order = jax.device_put(next(orders).astype(np.int32), self.device)
            params, m, v, t, _ = state[0]
            state[0] = run_epoch_on_device((params, m, v, t, jax.device_put(np.float32(0), self.device)), order)
            self.wait(state[0])
            return float(state[0][4]) / ctx.n

        self.wait(state[0])
        return time_epochs(run_epoch, ctx.epochs)

    def wait(self, tree):
        """Returns once every array in TREE is computed (JAX dispatches asynchronously)."""
        for leaf in self.jax.tree_util.tree_leaves(tree):
            leaf.block_until_ready()


def run_jax_jit_step(ctx, precision):
    setup = JaxSetup(ctx, precision)
    jax = setup.jax

    def batch_step(state, images, labels, order, first, rows):
        return setup.train_step(state, images, labels, jax.lax.dynamic_slice_in_dim(order, first, rows))

    # rows is static: one compilation for the full batches, one for the last, smaller one. The state is
    # donated, so the update reuses its buffers instead of allocating new ones every step.
    step = jax.jit(batch_step, static_argnums=(5,), donate_argnums=(0,))

    def run_epoch_on_device(state, order):
        for first in range(0, ctx.n, ctx.batch_size):
            state = step(state, setup.images, setup.labels, order, np.int32(first),
                         min(ctx.batch_size, ctx.n - first))
        return state

    warmup, timed, loss = setup.timed_run(run_epoch_on_device)
    return result_record(ctx, "jax-jit-step", precision, setup.device_name, setup.framework, "keras",
                         "one jax.jit step per batch (gather, forward, loss, grad, Adam in jax.numpy), the "
                         "state donated; a second compilation for the last, smaller batch; the warm-up "
                         "epoch includes compilation", warmup, timed, loss)


def run_jax_scan_epoch(ctx, precision):
    setup = JaxSetup(ctx, precision)
    jax = setup.jax
    batch, full_batches = ctx.batch_size, ctx.full_batches

    def epoch(state, images, labels, order):
        if full_batches:
            def body(carry, index):
                return setup.train_step(carry, images, labels, index), None

            state, _ = jax.lax.scan(body, state, order[:full_batches * batch].reshape(full_batches, batch))
        if ctx.tail:  # the last, smaller batch: one more step with its own (static) shape
            state = setup.train_step(state, images, labels, order[full_batches * batch:])
        return state

    compiled = jax.jit(epoch, donate_argnums=(0,))
    warmup, timed, loss = setup.timed_run(lambda state, order: compiled(state, setup.images, setup.labels, order))
    tail_note = "; then the last %d-row batch as one more step inside the same function (no padding)" % ctx.tail \
        if ctx.tail else ""
    return result_record(ctx, "jax-scan-epoch", precision, setup.device_name, setup.framework, "keras",
                         "the whole epoch one jax.jit function: jax.lax.scan over the %d full batches%s; "
                         "the warm-up epoch includes compilation" % (full_batches, tail_note),
                         warmup, timed, loss)


RUNNERS = {
    "pytorch-eager": run_pytorch_eager,
    "pytorch-cuda-graph": run_pytorch_cuda_graph,
    "jax-jit-step": run_jax_jit_step,
    "jax-scan-epoch": run_jax_scan_epoch,
}


# --- Command line --------------------------------------------------------------------------------

def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % value)
    return value


def variant_list(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError("unknown variant %s; the variants are %s" % (
            ", ".join(repr(name) for name in unknown) or "list ''", ", ".join(VARIANTS)))
    return names


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="compare-peers.py",
        description="Time training epochs of the chapter's MNIST MLP (784-512-256-128-64-10, ReLU, softmax "
                    "+ cross-entropy, Adam, batch 256, glorot_uniform) in PyTorch and JAX, with the field "
                    "names of `gradscope bench --out`, for comparison with GradScope.",
        epilog="Variants: " + ", ".join(VARIANTS) + ". JAX variants run with precision fp32 and default "
               "(TF32 on Ampere+ GPUs). Exit status: 0 ran, 1 a variant failed or the data is bad, 2 usage, "
               "3 every variant skipped.")
    parser.add_argument("--data-dir", default="data/mnist",
                        help="folder with train-images-idx3-ubyte and train-labels-idx1-ubyte, plain or .gz "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=5,
                        help="timed epochs after the one warm-up epoch (default: %(default)s; note that "
                             "`gradscope bench --epochs` counts the warm-up)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="(default: %(default)s)")
    parser.add_argument("--only", type=variant_list, metavar="NAME[,NAME]",
                        help="run only these variants (default: all)")
    parser.add_argument("--device", choices=("cuda", "cpu"),
                        help="default: cuda when PyTorch or JAX (whichever is asked for) sees a GPU, else cpu")
    parser.add_argument("--train-limit", type=positive_int, metavar="N", help="use the first N training images")
    parser.add_argument("--seed", type=int, default=42, help="initial weights and shuffles (default: %(default)s)")
    parser.add_argument("--initial-weights", metavar="FILE",
                        help="start every variant from these weights (`gradscope bench --save-initial-weights "
                             "FILE`) instead of NumPy's glorot_uniform draw")
    parser.add_argument("--tf32", action="store_true",
                        help="also run the PyTorch variants with TF32 matmuls (CUDA only)")
    parser.add_argument("--out", metavar="FILE.json", help="also write the JSON array here")
    parser.add_argument("--torch-python", metavar="PYTHON",
                        help="run the PyTorch variants with this Python (a virtual environment's, say) in a child "
                             "process; it needs NumPy too (default: the Python running this script)")
    parser.add_argument("--jax-python", metavar="PYTHON", help="the same for the JAX variants")
    # Internal: this process is the child that runs one framework's variants (see run_in_worker).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def planned_runs(args):
    """(variant, precision) pairs in the order they run: PyTorch first, JAX after it."""
    runs = []
    for name in (name for name in VARIANTS if not args.only or name in args.only):
        if name.startswith("jax-"):
            runs += [(name, "fp32"), (name, "default")]
        else:
            runs += [(name, "fp32")] + ([(name, "tf32")] if args.tf32 else [])
    return runs


def default_device(runs):
    frameworks = {name.split("-")[0] for name, _ in runs}
    if "pytorch" in frameworks and torch_has_cuda():
        return "cuda"
    if "jax" in frameworks and jax_has_gpu():
        return "cuda"
    return "cpu"


def table(results):
    header = ("backend", "precision", "device", "examples", "warm-up s", "median s", "final loss")
    rows = []
    for r in results:
        if "median_epoch_seconds" in r:
            rows.append((r["backend"], r["precision"], r["device"], str(r["train_examples"]),
                         "%.4f" % r["warmup_epoch_seconds"], "%.4f" % r["median_epoch_seconds"],
                         "%.4f" % r["final_loss"]))
        else:
            status = "skipped: " + r["skipped"] if "skipped" in r else "FAILED: " + r["failed"]
            rows.append((r["backend"], r.get("precision", ""), status))
    widths = [max(len(row[i]) for row in [header] + rows if i < len(row) and (len(row) == len(header) or i < 2))
              for i in range(len(header))]
    right = {3, 4, 5, 6}  # numbers

    def line(row):
        if len(row) < len(header):  # a skipped or failed run: the reason takes the rest of the line
            return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:2])) + "  " + row[2]
        return "  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                         for i, cell in enumerate(row)).rstrip()

    return "\n".join(line(row) for row in [header] + rows)


def run_here(ctx, runs):
    """Runs RUNS in this process; returns their records."""
    results = []
    for name, precision in runs:
        label = "%s (%s)" % (name, precision)
        try:
            record = RUNNERS[name](ctx, precision)
            log("%s on %s: warm-up %.3f s, epochs %s s, median %.4f s, final loss %.4f" % (
                label, record["device"], record["warmup_epoch_seconds"],
                " ".join("%.4f" % s for s in record["epoch_seconds"]), record["median_epoch_seconds"],
                record["final_loss"]))
        except Skip as e:
            record = {"backend": name, "precision": precision, "skipped": str(e)}
            log("%s: skipped: %s" % (label, e))
        except Exception as e:  # one broken variant must not hide the others' figures
            traceback.print_exc()
            record = {"backend": name, "precision": precision, "failed": "%s: %s" % (type(e).__name__, e)}
            log("%s: FAILED: %s" % (label, record["failed"]))
        results.append(record)
        gc.collect()  # drops the run's CUDA graphs and tensors, so that the next run has the memory
        if name.startswith("pytorch") and "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
            sys.modules["torch"].cuda.empty_cache()
    return results


def run_in_worker(args, framework, python, runs):
    """Runs RUNS (all of one framework) in a child process of this script under PYTHON; returns their records.

    PyTorch and JAX each load their own CUDA libraries (cuBLAS, cuDNN, possibly of different versions) and
    keep GPU memory; one process per framework keeps them apart, and a crash in one (a segfault in native
    code) costs only that framework's figures.
    """
    with tempfile.TemporaryDirectory(prefix="compare-peers-") as scratch:
        out = os.path.join(scratch, framework + ".json")
        command = [python, os.path.abspath(__file__), "--worker", "--out", out,
                   "--only", ",".join(dict.fromkeys(name for name, _ in runs)),
                   "--data-dir", args.data_dir, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--device", args.device, "--seed", str(args.seed)]
        command += ["--train-limit", str(args.train_limit)] if args.train_limit else []
        command += ["--tf32"] if args.tf32 else []
        command += ["--initial-weights", args.initial_weights] if args.initial_weights else []
        # Its stdout repeats what this process prints at the end; its stderr (progress, errors) passes through.
        try:
            rc = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
        except OSError as e:
            rc, why = None, "could not start (%s: %s)" % (python, e)
        if rc in (EXIT_OK, EXIT_FAILED, EXIT_NOTHING_RAN) and os.path.isfile(out):
            try:
                with open(out) as f:
                    return json.load(f)
            except (OSError, ValueError) as e:
                why = "wrote an unreadable %s (%s)" % (out, e)
        elif rc is not None:
            why = "was killed by signal %d" % -rc if rc < 0 else "exited with status %d and no results" % rc
    log("the %s worker process %s" % (framework, why))
    return [{"backend": name, "precision": precision, "failed": "the %s worker process %s" % (framework, why)}
            for name, precision in runs]


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runs = planned_runs(args)
    try:
        pixels, labels = load_mnist(args.data_dir, args.train_limit)
        initial = gradscope_initial_weights(args.initial_weights) if args.initial_weights else None
    except DataError as e:
        log("error: " + str(e))
        return EXIT_FAILED
    if args.device is None:
        args.device = default_device(runs)
    ctx = Context(args, pixels, labels, initial)
    if not args.worker:
        log("%d training images, batch %d (%d full batches + %d), %d timed epoch%s after one warm-up, device %s" % (
            ctx.n, ctx.batch_size, ctx.full_batches, ctx.tail, ctx.epochs, "" if ctx.epochs == 1 else "s",
            ctx.device))

    by_framework = {}
    for name, precision in runs:
        by_framework.setdefault(name.split("-")[0], []).append((name, precision))
    pythons = {"pytorch": args.torch_python or sys.executable, "jax": args.jax_python or sys.executable}
    if args.worker or (len(by_framework) == 1 and pythons[next(iter(by_framework))] == sys.executable):
        results = run_here(ctx, runs)
    else:
        del pixels, labels, ctx  # the workers load their own copy
        results = [r for framework, group in by_framework.items()
                   for r in run_in_worker(args, framework, pythons[framework], group)]

    text = json.dumps(results, indent=2)
    if args.out:
        try:
            with open(args.out, "w") as f:
                f.write(text + "\n")
        except OSError as e:
            log("error: cannot write %s: %s" % (args.out, e))
            return EXIT_FAILED
    print(text)
    print()
    print(table(results))
    if any("failed" in r for r in results):
        return EXIT_FAILED
    if not any("median_epoch_seconds" in r for r in results):
        if not args.worker:
            log("nothing ran: every requested variant was skipped")
        return EXIT_NOTHING_RAN
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
