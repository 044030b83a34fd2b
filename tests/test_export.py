"""``striate.tools.export``: ONNX graphs that onnxruntime runs to striate's outputs, PyTorch-ready safetensors, the CLI.

Parity is measured as ``max |onnxruntime − striate| / max |striate|`` on a batch whose size differs
from both trace batches (so the dynamic batch dimension is exercised), float32, ≤ 1e-5.
"""
import collections
import json
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export tests need the onnx package (pip install 'striate[export]')")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests run the graphs with onnxruntime")

import striate as st  # noqa: E402
import striate.nn.functional as F  # noqa: E402
from striate import models, nn  # noqa: E402
from striate.nn import init  # noqa: E402
from striate.tools.export import to_onnx, to_safetensors  # noqa: E402

TOLERANCE = 1e-5


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


def striate_outputs(model, x):
    with st.no_grad():
        out = model.eval()(st.tensor(x))
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]


def relative_error(actual, expected):
    return float(np.abs(actual.astype(np.float64) - expected).max()) / max(float(np.abs(expected).max()), 1e-30)


def assert_parity(model, size, tmp_path, batch=5, seed=0, **kwargs):
    """Export ``model``, run the file with onnxruntime on a fresh batch, compare with striate."""
    path = tmp_path / "model.onnx"
    to_onnx(model, size, path, **{"verify": False, **kwargs})     # the comparison below is the check
    x = np.random.default_rng(seed).standard_normal((batch,) + tuple(size)).astype(np.float32)
    got, expected = run_onnx(path, x), striate_outputs(model, x)
    assert len(got) == len(expected)
    for actual, wanted in zip(got, expected):
        assert actual.shape == wanted.shape
        assert relative_error(actual, wanted) <= TOLERANCE
    return onnx.load(str(path))


def randomise(model, seed=0):
    """He-scaled random weights and random batch-norm statistics (not the defaults 1, 0, 0, 1)."""
    rng = np.random.default_rng(seed)
    for name, tensor in model.state_dict(keep_vars=True).items():
        leaf, shape = name.rsplit(".", 1)[-1], tensor.shape
        if leaf == "num_batches_tracked":
            continue
        if leaf == "running_var":
            value = rng.random(shape, dtype=np.float32) + 0.5
        elif leaf == "weight" and len(shape) == 1:
            value = rng.random(shape, dtype=np.float32) + 0.5
        elif leaf in ("bias", "running_mean"):
            value = 0.1 * rng.standard_normal(shape, dtype=np.float32)
        else:
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
        tensor.data[...] = value
    return model


@pytest.fixture
def fast_init(monkeypatch):
    """Skip the initialisers' random draws: ``randomise`` overwrites every weight anyway."""
    monkeypatch.setattr(init, "uniform_", lambda tensor, *args, **kwargs: init.zeros_(tensor))
    monkeypatch.setattr(init, "normal_", lambda tensor, *args, **kwargs: init.zeros_(tensor))


# ----- the model zoo -------------------------------------------------------------------------------------

SIZES = {"lenet5": (1, 28, 28), "mlp": (784,), "cnn1d": (1, 64), "cnn3d": (1, 8, 8, 8), "alexnet": (3, 63, 63)}
# VGG's classifier (512·7·7 → 4096 → 4096, with dropout) holds 120 M of its weights and is the same in every
# variant: the variants, which differ in their features, get a small head here (writing and loading 0.5 GB
# takes 15 s); AlexNet's classifier, the same three Linear layers with dropout, is exported at full size.


@pytest.mark.parametrize("name", models.list_models())
def test_zoo_model_runs_the_same_in_onnxruntime(name, tmp_path, fast_init):
    model = models.get_model(name, num_classes=10)
    if name.startswith("vgg"):
        model.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 10))
    randomise(model)
    proto = assert_parity(model, SIZES.get(name, (3, 32, 32)), tmp_path, batch=3)
    # Weights are initializers under their state-dict names; the batch dimension is symbolic.
    initializers = {i.name for i in proto.graph.initializer}
    assert {k for k, _ in model.named_parameters()} <= initializers
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_lenet_nodes_are_the_layers(tmp_path):
    proto = assert_parity(models.lenet5(), (1, 28, 28), tmp_path)
    kinds = [node.op_type for node in proto.graph.node]
    assert kinds == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Reshape",
                     "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Identity"]
    assert proto.graph.node[0].name.startswith("features.c1/")


def test_cifar_option_a_shortcut_and_restored_training_mode(tmp_path):
    model = randomise(models.resnet20()).train()
    model.layer2.eval()
    to_onnx(model, (3, 32, 32), tmp_path / "m.onnx")
    assert [m.training for m in model.modules()] == [not name.startswith("layer2") for name, _ in model.named_modules()]
    assert_parity(model, (3, 32, 32), tmp_path)          # in eval mode: batch norm uses the running statistics


# ----- random Sequential CNNs of every rank ------------------------------------------------------------------

def _layer(rng, n, channels, size):
    """A random layer for an input with ``channels`` and spatial ``size`` (it may turn out not to fit)."""
    kind = rng.choice(["conv", "conv", "conv", "max", "min", "avg", "adaptive_avg", "adaptive_max", "bn", "act"])
    k = [int(rng.integers(1, 4)) for _ in range(n)]
    if kind == "conv":
        groups = int(rng.choice([g for g in (1, 2, 3) if channels % g == 0]))
        out = groups * int(rng.integers(1, 4))
        padding = rng.choice(["int", "tuple", "same", "full", "valid"])
        pad = {"int": int(rng.integers(0, 3)), "tuple": tuple(int(rng.integers(0, 3)) for _ in range(n))}.get(
            padding, str(padding))
        mode = str(rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"])) if padding == "int" else "zeros"
        stride = tuple(int(rng.integers(1, 3)) for _ in range(n)) if padding != "same" else int(rng.integers(1, 3))
        conv = getattr(nn, f"Conv{n}d")
        return conv(channels, out, k, stride=stride, padding=pad, dilation=int(rng.integers(1, 3)), groups=groups,
                    bias=bool(rng.integers(0, 2)), padding_mode=mode, flip=bool(rng.integers(0, 2)))
    if kind in ("max", "min"):
        pool = getattr(nn, f"{kind.title()}Pool{n}d")
        return pool(k, stride=int(rng.integers(1, 3)), padding=min(k) // 2 * int(rng.integers(0, 2)),
                    dilation=int(rng.integers(1, 3)), ceil_mode=bool(rng.integers(0, 2)))
    if kind == "avg":
        return getattr(nn, f"AvgPool{n}d")(k, stride=int(rng.integers(1, 3)), padding=min(k) // 2,
                                           ceil_mode=bool(rng.integers(0, 2)),
                                           count_include_pad=bool(rng.integers(0, 2)))
    if kind.startswith("adaptive"):
        out = tuple(int(rng.integers(1, d + 3)) for d in size)        # larger than the input: overlapping bins
        return getattr(nn, f"{'AdaptiveAvg' if kind == 'adaptive_avg' else 'AdaptiveMax'}Pool{n}d")(out)
    if kind == "bn":
        return getattr(nn, f"BatchNorm{n}d")(channels)
    return rng.choice([nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(0.7), nn.GELU(), nn.GELU("tanh"), nn.Sigmoid(),
                       nn.Tanh(), nn.Softplus(beta=2.0, threshold=3.0), nn.Identity(), nn.Dropout(0.3)])


def random_cnn(seed, n):
    """A random Sequential CNN over ``n`` spatial dimensions and its input size."""
    rng = np.random.default_rng(seed)
    size = tuple(int(rng.integers(5, 12 if n < 3 else 8)) for _ in range(n))
    channels = int(rng.choice([1, 2, 3, 6]))
    x = st.zeros(1, channels, *size)
    layers = []
    while len(layers) < 6:
        layer = _layer(rng, n, x.shape[1], x.shape[2:])
        try:
            with st.no_grad():
                y = layer.eval()(x)
        except ValueError:               # the drawn window does not fit this input: draw again
            continue
        layers.append(layer)
        x = y
    features = x.shape[1] * int(np.prod(x.shape[2:]))
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(features, 4), nn.LogSoftmax(dim=1))
    return randomise(model, seed), (channels,) + size


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_random_sequential_cnn(n, seed, tmp_path):
    model, size = random_cnn(100 * n + seed, n)
    assert_parity(model, size, tmp_path, seed=seed)


# ----- functional calls in forward, and every op mapping at several opsets ----------------------------------

class Functional(nn.Module):
    """A forward made of functional calls and tensor methods, touching every mapped op."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1, padding_mode="circular")
        self.weight = nn.Parameter(st.randn(6, 2, 3, 3))
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = F.elu(self.conv(x), 0.5)
        x = F.conv2d(x, self.weight, None, stride=2, padding="same", groups=3, flip=True)     # (N, 6, 5, 5)
        x = F.pad(x, (1, -1, 2, 0), mode="reflect")                                            # (N, 6, 7, 5)
        x = F.pad(x, (1, 1, -1, 1), value=0.5)                                                 # (N, 6, 7, 7)
        a = F.min_pool2d(x, 2, ceil_mode=True)                         # (N, 6, 4, 4): the last windows overhang
        b = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False) + F.avg_pool2d(x, 2, ceil_mode=True)
        c = F.avg_pool2d(x, 2, stride=2, dilation=2, divisor_override=3)                       # (N, 6, 3, 3)
        d = F.adaptive_max_pool2d(x, (4, 3))                                                   # (N, 6, 4, 3)
        e = F.adaptive_avg_pool2d(c, (4, 4))                                                   # (N, 6, 4, 4)
        y = F.gelu(a, approximate="tanh") + F.gelu(b) * e - F.softplus(a, beta=2, threshold=1)
        y = self.bn(y) / 2 + F.leaky_relu(-y, 0.1) ** 2 + y.clamp(-1, 1).abs().sqrt()
        y = st.cat([y, F.pad(d, (0, 1))], dim=1)                                               # (N, 12, 4, 4)
        y = y[:, ::-2, 1:, None, :3].squeeze(3).permute(0, 2, 3, 1)                            # (N, 3, 3, 6)
        z = F.tanh(F.sigmoid(F.relu(self.fc(y.exp().log() * 0.5 + 1))))                         # (N, 3, 3, 5)
        z = z.mean(dim=(1, 2)) + z.sum(dim=1).amax(dim=1) - z.amin(dim=(1, 2))                 # (N, 5)
        z = z @ st.ones(5, 5) + st.stack([z, z], dim=1).max(dim=1).values
        w = x.reshape(x.shape[0], -1)[:, :5].expand(2, x.shape[0], 5).transpose(0, 1).flatten(1)  # (N, 10)
        return F.softmax(z, dim=1), F.log_softmax(st.cat([z, w], dim=1), dim=-1)


@pytest.mark.parametrize("opset", [13, 17, 18, 20])
def test_functional_forward_every_op(opset, tmp_path):
    st.manual_seed(0)
    model = randomise(Functional(), seed=opset)
    proto = assert_parity(model, (3, 10, 10), tmp_path, opset=opset)
    assert proto.opset_import[0].version == opset
    assert len(proto.graph.output) == 2


def test_float64_model(tmp_path):
    """Exported in float64; onnxruntime runs a float64 MLP, and says it has no float64 convolution."""
    model = randomise(models.mlp()).double()
    path = tmp_path / "m.onnx"
    to_onnx(model, (784,), path)
    x = np.random.default_rng(0).standard_normal((2, 784))
    (got,) = run_onnx(path, x)
    assert got.dtype == np.float64
    assert relative_error(got, striate_outputs(model, x)[0]) <= 1e-12
    with pytest.raises(ValueError, match=r"onnxruntime cannot run the exported graph \(.*float32 only.*verify=False"):
        to_onnx(models.lenet5().double(), (1, 28, 28), path)
    to_onnx(models.lenet5().double(), (1, 28, 28), path, verify=False)
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_fixed_batch_allows_batch_mixing_reshape(tmp_path):
    class Mix(nn.Module):
        def forward(self, x):
            return x.reshape(-1)
    with pytest.raises(ValueError, match=r"reshape .* mixes the batch dimension.*batch_dynamic=False"):
        to_onnx(Mix(), (2, 3), tmp_path / "m.onnx")
    to_onnx(Mix(), (2, 3), tmp_path / "m.onnx", batch_dynamic=False)
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    assert np.array_equal(run_onnx(tmp_path / "m.onnx", x)[0], x.reshape(-1))


# ----- refusals: a clear error, never a silently wrong graph -------------------------------------------------

class Calls(nn.Module):
    def __init__(self, forward):
        super().__init__()
        self.inner = nn.Sequential(nn.Identity())
        self.fn = forward

    def forward(self, x):
        return self.fn(self.inner(x))


REFUSALS = [
    (lambda x: x.var(dim=1), r"op Var in module 'Calls'.*no ONNX mapping"),
    (lambda x: F.dropout(x, 0.5, training=True), r"op Dropout.*training=self.training"),
    (lambda x: x[:, [0, 2]], r"advanced indexing"),
    (lambda x: x[0], r"batch dimension"),
    (lambda x: st.cat([x, x], dim=0), r"concatenates along the batch dimension"),
    (lambda x: F.relu(st.tensor(x.numpy() * 2)) + x, r"not computed by striate ops"),
    (lambda x: x + st.zeros(x.shape[0], 1), r"not computed by striate ops"),
    (lambda x: F.relu(x) if float(x.numpy().max()) > 0 else F.tanh(x), r"different ops for different inputs"),
    (lambda x: st.tensor(x.numpy()), r"does not depend on its input"),
    (lambda x: x.numpy(), r"must return a Tensor"),
]


@pytest.mark.parametrize("forward, message", REFUSALS)
def test_refusals_name_the_op_and_the_rule(forward, message, tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises((ValueError, TypeError), match=message):
        to_onnx(Calls(forward), (3,), path)
    assert not path.exists()


def test_verify_catches_a_wrong_graph(monkeypatch, tmp_path):
    from striate.ops import activation
    from striate.tools import onnx_ops
    monkeypatch.setitem(onnx_ops.CONVERTERS, activation.ReLU, onnx_ops._unary("Sigmoid"))
    with pytest.raises(ValueError, match=r"output 0 differs from striate's by .*refusing to write a wrong graph"):
        to_onnx(randomise(models.lenet5()), (1, 28, 28), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_batch_norm_without_running_statistics_is_refused(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False))
    with pytest.raises(ValueError, match=r"BatchNorm in module '1'.*training mode.*track_running_stats=False"):
        to_onnx(model, (1, 5, 5), tmp_path / "m.onnx")


def test_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="to_onnx: model must be an nn.Module"):
        to_onnx(lambda x: x, (1,), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"to_onnx: input_size must be .* got \(1, 0\)"):
        to_onnx(models.mlp(), (1, 0), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"to_onnx: opset must be an int from 13 .* got 9"):
        to_onnx(models.mlp(), (784,), tmp_path / "m.onnx", opset=9)
    with pytest.raises(ValueError, match=r"to_onnx: running MLP on an input of shape \(2, 5\) failed"):
        to_onnx(models.mlp(), (5,), tmp_path / "m.onnx")


def test_missing_onnx_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'striate\[export\]'"):
        to_onnx(models.mlp(), (784,), tmp_path / "m.onnx")


# ----- safetensors for PyTorch ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, size", [("resnet20", (3, 32, 32)), ("cnn1d", (1, 64)), ("lenet5", (1, 28, 28))])
def test_safetensors_loads_into_the_torch_twin(name, size, tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from test_zoo import torch_reference
    model = randomise(models.get_model(name, num_classes=10))
    state = safetensors_torch.load_file(str(_saved(model, tmp_path)))
    if name == "lenet5":
        tnn = torch.nn
        reference = tnn.Sequential(collections.OrderedDict(
            features=tnn.Sequential(collections.OrderedDict(c1=tnn.Conv2d(1, 6, 5, padding=2), relu1=tnn.ReLU(),
                                                            s2=tnn.MaxPool2d(2), c3=tnn.Conv2d(6, 16, 5),
                                                            relu3=tnn.ReLU(), s4=tnn.MaxPool2d(2))),
            classifier=tnn.Sequential(collections.OrderedDict(flatten=tnn.Flatten(), f5=tnn.Linear(400, 120),
                                                              relu5=tnn.ReLU(), f6=tnn.Linear(120, 84),
                                                              relu6=tnn.ReLU(), output=tnn.Linear(84, 10)))))
    else:
        reference = torch_reference(name, num_classes=10).to_empty(device="cpu")
    reference.load_state_dict(state)                       # strict: every name and shape matches
    x = np.random.default_rng(0).standard_normal((3,) + size).astype(np.float32)
    with torch.no_grad():
        expected = reference.eval()(torch.from_numpy(x)).numpy()
    assert relative_error(striate_outputs(model, x)[0], expected) <= 1e-5


def _saved(model, tmp_path):
    path = tmp_path / "model.safetensors"
    to_safetensors(model, path)
    return path


# ----- the command line -------------------------------------------------------------------------------------

def test_cli_export_end_to_end(tmp_path, capsys, monkeypatch):
    pytest.importorskip("PIL.Image")
    from cli_run import assert_one_line_error, run_cli
    from test_cli import TINY
    from striate.tools.checkpoint import load_checkpoint
    run = tmp_path / "run"
    status, _, _ = run_cli(capsys, "train", *TINY, "--out", run)
    assert status == 0
    model = load_checkpoint(run).build_model()

    status, out, _ = run_cli(capsys, "export", run, "-o", tmp_path / "lenet.onnx")
    assert status == 0 and "input [N, 1, 28, 28] -> output [N, 10]" in out
    x = np.random.default_rng(0).standard_normal((7, 1, 28, 28)).astype(np.float32)
    (got,) = run_onnx(tmp_path / "lenet.onnx", x)
    assert relative_error(got, striate_outputs(model, x)[0]) <= TOLERANCE
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "lenet.onnx")).metadata_props}
    assert meta["model"] == "lenet5" and json.loads(meta["normalize"])["mean"] == [0.1307]

    status, out, _ = run_cli(capsys, "export", run, "-o", tmp_path / "lenet.safetensors")
    assert status == 0
    assert set(st.load(tmp_path / "lenet.safetensors")) == set(model.state_dict())

    status, _, err = run_cli(capsys, "export", run, "-o", tmp_path / "lenet.pt")
    assert_one_line_error(status, err, 1, "end it with .onnx")
    status, _, err = run_cli(capsys, "export", run, "-o", tmp_path / "x.onnx", "--opset", "9")
    assert_one_line_error(status, err, 1, "opset must be an int from 13")
    status, _, err = run_cli(capsys, "export", tmp_path / "missing", "-o", tmp_path / "x.onnx")
    assert status == 1 and len(err.strip().splitlines()) == 1
    monkeypatch.setitem(sys.modules, "onnx", None)
    status, _, err = run_cli(capsys, "export", run, "-o", tmp_path / "x.onnx")
    assert_one_line_error(status, err, 1, "pip install 'striate[export]'")
    assert not (tmp_path / "x.onnx").exists()

    status, out, _ = run_cli(capsys, "export", "--help")
    assert status == 0 and "striate export runs/" in out and ".safetensors" in out
