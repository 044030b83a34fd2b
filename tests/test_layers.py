"""Every layer against its PyTorch twin with the same weights: forward, input and parameter
gradients, running statistics, reprs, constructor errors, and the default initialisation.

Weights always travel torch → striate through ``load_state_dict``, so these tests also
prove that a PyTorch state dict loads unchanged.
"""
import math

import numpy
import pytest
import scipy.stats

import striate as st
import striate.nn as nn
from oracle import assert_close, to_torch, torch

tnn = torch.nn
TF = torch.nn.functional
TOLERANCES = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-5)}


@pytest.fixture(autouse=True)
def seeded():
    """Both libraries' initialisations seeded per test, so any failure reproduces."""
    st.manual_seed(0)
    torch.manual_seed(0)


def check_layer(ours, theirs, x, dtype="float64", seed=0, grad_input=True, extra=()):
    """Load ``theirs``' weights into ``ours``; compare output, input gradient and every parameter gradient.

    ``extra`` are further (non-differentiated) inputs, e.g. a loss target. Returns the striate output.
    """
    rtol, atol = TOLERANCES[dtype]
    theirs.to(getattr(torch, dtype))
    ours.to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = numpy.asarray(x, dtype=dtype)
    xs, xt = st.tensor(x, requires_grad=grad_input), to_torch(x, requires_grad=grad_input)
    ys = ours(xs, *(st.tensor(e) for e in extra))
    yt = theirs(xt, *(to_torch(e) for e in extra))
    assert ys.dtype == numpy.dtype(dtype), "dtype must be preserved"
    assert_close(ys, yt, rtol, atol, "forward")
    if not (ys.requires_grad and yt.requires_grad):
        return ys
    upstream = numpy.random.default_rng(seed).standard_normal(ys.shape).astype(dtype)
    ys.backward(upstream)
    yt.backward(torch.from_numpy(upstream))
    if grad_input:
        assert_close(xs.grad, xt.grad, rtol, atol, "input gradient")
    ours_params, their_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert list(ours_params) == list(their_params)
    for name, p in ours_params.items():
        assert_close(p.grad, their_params[name].grad, rtol, atol, f"gradient of {name}")
    return ys


# ----- convolution --------------------------------------------------------------------------------
CONV = {1: (nn.Conv1d, tnn.Conv1d), 2: (nn.Conv2d, tnn.Conv2d), 3: (nn.Conv3d, tnn.Conv3d)}
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def random_conv(rng, n):
    """Constructor arguments and an input size for one random convolution PyTorch also accepts."""
    groups = int(rng.choice([1, 2]))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=n))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=n))
    stride = tuple(int(s) for s in rng.integers(1, 3, size=n))
    padding = [int(rng.integers(0, 3)), tuple(int(p) for p in rng.integers(0, 3, size=n)), "valid", "same"][
        int(rng.integers(0, 4))]
    if padding == "same":
        stride = (1,) * n                     # PyTorch refuses "same" with stride > 1
    size = tuple(int(s) for s in rng.integers(5, 9 if n < 3 else 7, size=n))   # > every pad (reflect needs it)
    kwargs = dict(in_channels=groups * int(rng.integers(1, 3)), out_channels=groups * int(rng.integers(1, 3)),
                  kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  bias=bool(rng.random() < 0.7), padding_mode=PADDING_MODES[int(rng.integers(0, 4))])
    return kwargs, (int(rng.integers(1, 3)), kwargs["in_channels"]) + size


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_matches_pytorch_on_random_configurations(n):
    rng = numpy.random.default_rng(n)
    ours_cls, their_cls = CONV[n]
    for _ in range(12):
        kwargs, shape = random_conv(rng, n)
        check_layer(ours_cls(**kwargs), their_cls(**kwargs), rng.standard_normal(shape))


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_conv2d_float32_every_padding_mode(padding_mode):
    rng = numpy.random.default_rng(5)
    kwargs = dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=(2, 1),
                  dilation=(1, 2), groups=2, padding_mode=padding_mode)
    check_layer(nn.Conv2d(**kwargs), tnn.Conv2d(**kwargs), rng.standard_normal((2, 4, 7, 9)), dtype="float32")
    # unbatched input (C, H, W) too
    check_layer(nn.Conv2d(**kwargs), tnn.Conv2d(**kwargs), rng.standard_normal((4, 7, 9)), dtype="float32")


def independent_same_pads(size, kernel, stride, dilation):
    """The "same" rule written out here, not taken from striate: ceil(d/s) outputs, odd pad on the high side."""
    pairs = []
    for d, k, s, dil in zip(size, kernel, stride, dilation):
        total = max((math.ceil(d / s) - 1) * s + (k - 1) * dil + 1 - d, 0)
        pairs.append((total // 2, total - total // 2))
    return pairs


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("padding", ["same", "full"])
def test_conv_string_padding_at_any_stride(padding, padding_mode):
    """Beyond PyTorch: "same" at stride 2 and "full", in every padding mode; torch pads explicitly."""
    kernel, stride, dilation, size = (3, 2), (2, 3), (2, 1), (9, 8)
    if padding == "same":
        pairs = independent_same_pads(size, kernel, stride, dilation)
    else:
        pairs = [(dil * (k - 1),) * 2 for k, dil in zip(kernel, dilation)]
    widths = [p for pair in reversed(pairs) for p in pair]
    theirs = tnn.Conv2d(2, 3, kernel, stride=stride, dilation=dilation)
    mode = "constant" if padding_mode == "zeros" else padding_mode

    class Reference(tnn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias = theirs.weight, theirs.bias

        def forward(self, x):
            return TF.conv2d(TF.pad(x, widths, mode=mode), self.weight, self.bias, stride, 0, dilation)

    ours = nn.Conv2d(2, 3, kernel, stride=stride, padding=padding, dilation=dilation, padding_mode=padding_mode)
    out = check_layer(ours, Reference(), numpy.random.default_rng(0).standard_normal((2, 2) + size))
    if padding == "same":
        assert out.shape[2:] == (5, 3)          # ceil(9 / 2), ceil(8 / 3)


# ----- pooling ------------------------------------------------------------------------------------
def random_window(rng, n, dilation=True):
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=n))
    config = dict(kernel_size=kernel if rng.random() < 0.7 else kernel[0],
                  stride=[None, tuple(int(s) for s in rng.integers(1, 3, size=n))][int(rng.integers(0, 2))],
                  padding=tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel),
                  ceil_mode=bool(rng.random() < 0.5))
    if isinstance(config["kernel_size"], int):
        config["padding"] = config["padding"][0]
    if dilation:
        config["dilation"] = tuple(int(d) for d in rng.integers(1, 3, size=n))
    size = tuple(int(s) for s in rng.integers(6, 10 if n < 3 else 8, size=n))
    return config, (int(rng.integers(1, 3)), 3) + size


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pool_matches_pytorch(n):
    rng = numpy.random.default_rng(10 + n)
    ours_cls, their_cls = getattr(nn, f"MaxPool{n}d"), getattr(tnn, f"MaxPool{n}d")
    for _ in range(8):
        config, shape = random_window(rng, n)
        check_layer(ours_cls(**config), their_cls(**config), rng.standard_normal(shape))
    config, shape = random_window(rng, n)
    x = rng.standard_normal(shape)
    values, indices = ours_cls(**config, return_indices=True)(st.tensor(x))
    their_values, their_indices = their_cls(**config, return_indices=True)(torch.from_numpy(x))
    assert_close(values, their_values)
    numpy.testing.assert_array_equal(indices.numpy(), their_indices.numpy())


@pytest.mark.parametrize("n", [1, 2, 3])
def test_min_pool_is_max_pool_of_the_negation(n):
    """MinPool has no PyTorch twin; the reference is −MaxPool(−x) in PyTorch."""
    rng = numpy.random.default_rng(20 + n)
    for _ in range(4):
        config, shape = random_window(rng, n)
        their_max = getattr(tnn, f"MaxPool{n}d")(**config)

        class TorchMinPool(tnn.Module):
            def forward(self, x):
                return -their_max(-x)

        check_layer(getattr(nn, f"MinPool{n}d")(**config), TorchMinPool(), rng.standard_normal(shape))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_avg_pool_matches_pytorch(n):
    rng = numpy.random.default_rng(30 + n)
    ours_cls, their_cls = getattr(nn, f"AvgPool{n}d"), getattr(tnn, f"AvgPool{n}d")
    for _ in range(8):
        config, shape = random_window(rng, n, dilation=False)
        config["count_include_pad"] = bool(rng.random() < 0.5)
        check_layer(ours_cls(**config), their_cls(**config), rng.standard_normal(shape))
    if n > 1:                                  # PyTorch's AvgPool1d has no divisor_override
        config, shape = random_window(rng, n, dilation=False)
        check_layer(ours_cls(**config, divisor_override=3), their_cls(**config, divisor_override=3),
                    rng.standard_normal(shape))


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("kind", ["Avg", "Max"])
def test_adaptive_pool_matches_pytorch(kind, n):
    rng = numpy.random.default_rng(40 + n)
    ours_cls, their_cls = getattr(nn, f"Adaptive{kind}Pool{n}d"), getattr(tnn, f"Adaptive{kind}Pool{n}d")
    size = (7, 6, 5)[:n]
    for output_size in [1, 3, (2, 4, 5)[:n], (None,) + (2, 3)[:n - 1], (7, 6, 5)[:n]]:
        if n == 1 and isinstance(output_size, tuple):
            output_size = output_size[0] or 4
        check_layer(ours_cls(output_size), their_cls(output_size), rng.standard_normal((2, 3) + size))


# ----- dense, shape and activation layers ---------------------------------------------------------
def test_linear_matches_pytorch():
    rng = numpy.random.default_rng(50)
    for bias, shape in [(True, (4, 7)), (False, (2, 3, 7)), (True, (7,))]:
        check_layer(nn.Linear(7, 5, bias=bias), tnn.Linear(7, 5, bias=bias), rng.standard_normal(shape))
    check_layer(nn.Linear(7, 5), tnn.Linear(7, 5), rng.standard_normal((4, 7)), dtype="float32")


@pytest.mark.parametrize("start_dim, end_dim", [(1, -1), (0, -1), (1, 2), (-2, -1), (2, 2)])
def test_flatten_and_identity(start_dim, end_dim):
    x = numpy.random.default_rng(0).standard_normal((2, 3, 4, 5))
    check_layer(nn.Flatten(start_dim, end_dim), tnn.Flatten(start_dim, end_dim), x)
    check_layer(nn.Identity(54, unused=True), tnn.Identity(54, unused=True), x)


ACTIVATIONS = [
    ("ReLU", (), {}), ("ReLU", (), {"inplace": True}), ("LeakyReLU", (0.2,), {}), ("ELU", (), {"alpha": 0.5}),
    ("GELU", (), {}), ("GELU", (), {"approximate": "tanh"}), ("Sigmoid", (), {}), ("Tanh", (), {}),
    ("Softplus", (), {}), ("Softplus", (), {"beta": 2.0, "threshold": 3.0}), ("Softmax", (), {"dim": 1}),
    ("Softmax", (), {"dim": -1}), ("LogSoftmax", (), {"dim": 0}), ("LogSoftmax", (), {"dim": 2}),
]


@pytest.mark.parametrize("name, args, kwargs", ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_activation_modules_match_pytorch(name, args, kwargs, dtype):
    x = 3 * numpy.random.default_rng(60).standard_normal((4, 5, 6))
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(tnn, name)(*args, **kwargs)
    if kwargs.get("inplace"):
        # Same values as PyTorch, but striate returns a new tensor (ours may run on a leaf that requires grad).
        ys = ours(st.tensor(x))
        assert_close(ys, theirs(torch.from_numpy(x.copy())))
        return
    check_layer(ours, theirs, x, dtype=dtype)


def test_dropout_train_and_eval():
    x = numpy.random.default_rng(70).standard_normal((200, 500)).astype("float32") + 5   # never 0 itself
    drop = nn.Dropout(0.25)
    drop.eval()
    xs = st.tensor(x, requires_grad=True)
    assert_close(drop(xs), x, 0, 0)
    drop.train()
    y = drop(xs)
    kept = y.numpy() != 0
    assert abs(1 - kept.mean() - 0.25) < 0.005                       # 100 000 draws: σ ≈ 0.0014
    assert_close(y.numpy()[kept], x[kept] / 0.75)                   # survivors scaled by 1 / (1 − p)
    y.backward(numpy.ones_like(x))
    assert_close(xs.grad, kept / 0.75)
    a = nn.Dropout(0.5, generator=numpy.random.default_rng(3))(st.tensor(x))
    b = nn.Dropout(0.5, generator=numpy.random.default_rng(3))(st.tensor(x))
    numpy.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not nn.Dropout(1.0)(st.tensor(x)).numpy().any()
    assert_close(nn.Dropout(0.0)(st.tensor(x)), x, 0, 0)


# ----- batch normalisation ------------------------------------------------------------------------
BATCHNORM = [(1, (6, 3)), (1, (4, 3, 5)), (2, (3, 3, 4, 5)), (3, (2, 3, 3, 4, 2))]
BATCHNORM_OPTIONS = [{}, {"momentum": None}, {"momentum": 0.3, "eps": 1e-3}, {"affine": False},
                     {"track_running_stats": False}, {"bias": False}]


@pytest.mark.parametrize("rank, shape", BATCHNORM)
@pytest.mark.parametrize("options", BATCHNORM_OPTIONS, ids=str)
def test_batchnorm_train_then_eval_matches_pytorch(rank, shape, options):
    rng = numpy.random.default_rng(80 + rank)
    ours, theirs = getattr(nn, f"BatchNorm{rank}d")(3, **options), getattr(tnn, f"BatchNorm{rank}d")(3, **options)
    if options.get("affine", True):
        with torch.no_grad():                                  # non-trivial affine parameters
            theirs.weight.uniform_(0.5, 1.5)
            if theirs.bias is not None:
                theirs.bias.uniform_(-1, 1)
    check_layer(ours, theirs, 2 * rng.standard_normal(shape) + 1)          # loads the initial buffers
    for step in range(3):                                               # running statistics evolve alike
        x = 2 * rng.standard_normal(shape) + step
        assert_close(ours(st.tensor(x)), theirs(torch.from_numpy(x)), 1e-10, 1e-12)
        for name, value in theirs.state_dict().items():
            assert_close(ours.state_dict()[name], value, 1e-10, 1e-12, name)
    ours.eval(), theirs.eval()
    check_layer(ours, theirs, rng.standard_normal(shape), seed=1)


def test_batchnorm_float32_keeps_dtypes_and_counts_batches():
    ours, theirs = nn.BatchNorm2d(4), tnn.BatchNorm2d(4)
    x = numpy.random.default_rng(90).standard_normal((5, 4, 3, 3))
    check_layer(ours, theirs, x, dtype="float32")
    assert ours.running_mean.dtype == numpy.float32 and ours.num_batches_tracked.dtype == numpy.int64
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 1
    assert_close(ours.running_var, theirs.running_var)


# ----- losses -------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"ignore_index": 1}, {"label_smoothing": 0.2}, {"weight": True}],
                         ids=str)
def test_cross_entropy_loss_matches_pytorch(reduction, options):
    rng = numpy.random.default_rng(100)
    options = dict(options)
    if options.pop("weight", False):
        weight = rng.uniform(0.5, 2, size=5)
        ours_weight, their_weight = st.tensor(weight), torch.from_numpy(weight)
    else:
        ours_weight = their_weight = None
    for shape, target_shape in [((6, 5), (6,)), ((3, 5, 4), (3, 4))]:
        target = rng.integers(0, 5, size=target_shape)
        ours = nn.CrossEntropyLoss(weight=ours_weight, reduction=reduction, **options)
        theirs = tnn.CrossEntropyLoss(weight=their_weight, reduction=reduction, **options)
        check_layer(ours, theirs, rng.standard_normal(shape), extra=(target,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_pytorch(reduction):
    rng = numpy.random.default_rng(110)
    target = rng.standard_normal((4, 3))
    check_layer(nn.MSELoss(reduction), tnn.MSELoss(reduction=reduction), rng.standard_normal((4, 3)),
                extra=(target,))


def test_cross_entropy_weight_is_a_buffer():
    loss = nn.CrossEntropyLoss(weight=st.tensor([1.0, 2.0]))
    assert list(loss.state_dict()) == list(tnn.CrossEntropyLoss(weight=torch.ones(2)).state_dict()) == ["weight"]


# ----- reprs --------------------------------------------------------------------------------------
REPRS = [
    ("Conv1d", (3, 4, 3), {}), ("Conv2d", (3, 4, (3, 5)), {"stride": 2, "padding": 1, "bias": False}),
    ("Conv2d", (4, 4, 3), {"padding": "same", "dilation": 2, "groups": 2, "padding_mode": "reflect"}),
    ("Conv3d", (2, 4, 3), {"padding": "valid", "padding_mode": "circular"}),
    ("MaxPool2d", (2,), {}), ("MaxPool1d", (3, 2, 1), {"ceil_mode": True}), ("MaxPool3d", ((2, 2, 1),), {}),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1}), ("AvgPool3d", (2,), {}),
    ("AdaptiveAvgPool2d", ((5, 7),), {}), ("AdaptiveAvgPool3d", (1,), {}), ("AdaptiveMaxPool1d", (4,), {}),
    ("Linear", (3, 4), {}), ("Linear", (3, 4), {"bias": False}), ("Flatten", (), {}), ("Identity", (), {}),
    ("Dropout", (), {}), ("Dropout", (0.1,), {}), ("ReLU", (), {}), ("ReLU", (True,), {}),
    ("LeakyReLU", (0.2, True), {}), ("ELU", (), {}), ("GELU", ("tanh",), {}), ("Sigmoid", (), {}),
    ("Tanh", (), {}), ("Softplus", (), {"beta": 2.0}), ("Softmax", (), {"dim": 1}), ("LogSoftmax", (-1,), {}),
    ("BatchNorm1d", (3,), {}), ("BatchNorm2d", (8,), {"momentum": None, "affine": False}),
    ("BatchNorm3d", (2,), {"eps": 1e-3, "track_running_stats": False}),
    ("CrossEntropyLoss", (), {}), ("MSELoss", (), {}),
]


@pytest.mark.parametrize("name, args, kwargs", REPRS, ids=lambda v: str(v))
def test_repr_matches_pytorch(name, args, kwargs):
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(tnn, name)(*args, **kwargs))


# ----- constructor and input errors ---------------------------------------------------------------
ERRORS = [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "Conv2d: in_channels must be divisible by groups. "
                                                       "Received: in_channels=3, groups=2"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "out_channels must be divisible by groups"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "in_channels must be a positive integer. Received: in_channels=0"),
    (lambda: nn.Conv1d(3.0, 4, 3), TypeError, "in_channels must be an int"),
    (lambda: nn.Conv2d(3, 4, 0), ValueError, "Conv2d: kernel_size must be positive"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), ValueError, "kernel_size must be an int or a tuple of 2 ints"),
    (lambda: nn.Conv3d(3, 4, 3, stride=(1, 0, 1)), ValueError, r"stride must be positive .* got \(1, 0, 1\)"),
    (lambda: nn.Conv2d(3, 4, 3, dilation=0), ValueError, "dilation must be positive"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, "padding must be non-negative"),
    (lambda: nn.Conv2d(3, 4, 3, padding="half"), ValueError, "Received: padding='half'"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), ValueError, "padding_mode must be one of"),
    (lambda: nn.Conv2d(3, 4, 3)(st.zeros(1, 1, 3, 5, 5)), ValueError, "conv2d: expected input of shape"),
    (lambda: nn.Conv2d(3, 4, 3)(st.zeros(1, 2, 5, 5)), ValueError, "input channels"),
    (lambda: nn.MaxPool2d(0), ValueError, "MaxPool2d: kernel_size must be positive"),
    (lambda: nn.MinPool1d(2, stride=0), ValueError, "MinPool1d: stride must be positive"),
    (lambda: nn.AvgPool3d(2, padding=-1), ValueError, "AvgPool3d: padding must be non-negative"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError, "divisor_override must be a positive integer"),
    (lambda: nn.AdaptiveAvgPool2d((2, 0)), ValueError, r"AdaptiveAvgPool2d: output_size must be .*=\(2, 0\)"),
    (lambda: nn.AdaptiveMaxPool3d((1, 2)), ValueError, "tuple of 3 positive ints"),
    (lambda: nn.Linear(0, 3), ValueError, "Linear: in_features must be a positive integer"),
    (lambda: nn.BatchNorm2d(0), ValueError, "num_features must be a positive integer"),
    (lambda: nn.BatchNorm1d(3, momentum=2), ValueError, r"momentum must be in \[0, 1\] or None"),
    (lambda: nn.BatchNorm2d(3)(st.zeros(3, 4, 4)), ValueError,
     r"BatchNorm2d: expected input of shape \(N, C, H, W\), got 3-D input of shape \(3, 4, 4\)"),
    (lambda: nn.BatchNorm1d(3)(st.zeros(2, 3, 4, 4)), ValueError, r"\(N, C\) or \(N, C, L\), got 4-D"),
    (lambda: nn.Dropout(1.5), ValueError, "Dropout: p must be a probability between 0 and 1. Received: p=1.5"),
    (lambda: nn.GELU("fast"), ValueError, "approximate must be 'none' or 'tanh'"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\]"),
    (lambda: nn.MSELoss(reduction="all"), ValueError, "MSELoss: reduction must be one of"),
]


@pytest.mark.parametrize("make, error, match", ERRORS)
def test_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ----- default initialisation ---------------------------------------------------------------------
def kaiming_uniform_bound(fan_in, a=math.sqrt(5)):
    """PyTorch's formula, written out: gain = √(2 / (1 + a²)), bound = gain · √(3 / fan_in)."""
    return math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan_in)


INIT_LAYERS = [
    ("Conv1d", (8, 64, 5), {}, 8 * 5), ("Conv2d", (64, 128, 3), {}, 64 * 9),
    ("Conv2d", (32, 64, (3, 2)), {"groups": 4}, 8 * 6), ("Conv3d", (8, 32, 3), {}, 8 * 27),
    ("Linear", (300, 400), {}, 300),
]


@pytest.mark.parametrize("name, args, kwargs, fan_in", INIT_LAYERS)
def test_default_init_has_pytorch_bounds(name, args, kwargs, fan_in):
    st.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(tnn, name)(*args, **kwargs)
    bound = kaiming_uniform_bound(fan_in)
    assert math.isclose(bound, 1 / math.sqrt(fan_in))                    # the a=√5 identity
    for layer in (ours, theirs):
        weight, bias = (numpy.asarray(p.detach().numpy() if hasattr(p, "detach") else p.data)
                        for p in (layer.weight, layer.bias))
        assert weight.shape == tuple(theirs.weight.shape) and weight.dtype == numpy.float32
        assert numpy.abs(weight).max() <= bound and numpy.abs(bias).max() <= bound
        assert numpy.abs(weight).max() > 0.98 * bound                     # the range is used, not narrower
    weight = ours.weight.numpy().ravel().astype("float64")
    # U(−b, b): std b/√3; with ≥ 10⁴ samples the sample std is within ~1 % (and the mean near 0).
    assert abs(weight.std() / (bound / math.sqrt(3)) - 1) < 0.03
    assert abs(weight.mean()) < 4 * bound / math.sqrt(3 * weight.size)
    assert scipy.stats.kstest(weight, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-3


def test_default_bias_distribution():
    st.manual_seed(1)
    bias = nn.Linear(50, 40000).bias.numpy().astype("float64")
    bound = 1 / math.sqrt(50)
    assert numpy.abs(bias).max() <= bound
    assert scipy.stats.kstest(bias, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-3


def test_batchnorm_init_matches_pytorch():
    ours, theirs = nn.BatchNorm2d(5), tnn.BatchNorm2d(5)
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        numpy.testing.assert_array_equal(state[name], value.numpy(), err_msg=name)
        assert state[name].dtype == value.numpy().dtype, name
    assert nn.BatchNorm1d(2, affine=False).weight is None
    assert list(nn.BatchNorm1d(2, track_running_stats=False).state_dict()) == ["weight", "bias"]


def test_manual_seed_makes_models_reproducible():
    st.manual_seed(42)
    a = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(4, 2))
    st.manual_seed(42)
    b = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(4, 2))
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        numpy.testing.assert_array_equal(x, y, err_msg=name)


# ----- nn.init ------------------------------------------------------------------------------------
@pytest.mark.parametrize("nonlinearity, param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                                 ("tanh", None), ("relu", None), ("leaky_relu", None),
                                                 ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain_matches_pytorch(nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(tnn.init.calculate_gain(nonlinearity, param))


@pytest.mark.parametrize("shape", [(3, 4), (8, 3, 5), (16, 4, 3, 3), (2, 6, 3, 2, 4)])
def test_fan_in_and_fan_out_match_pytorch(shape):
    assert nn.init._calculate_fan_in_and_fan_out(st.zeros(*shape)) == \
        tnn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))


def large_weight(shape=(256, 64, 3, 3), dtype="float32"):
    return nn.Parameter(numpy.empty(shape, dtype=dtype))


@pytest.mark.parametrize("fill, expected_std", [
    (lambda w, g: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=g),
     math.sqrt(2) / math.sqrt(256 * 9)),
    (lambda w, g: nn.init.kaiming_normal_(w, generator=g), math.sqrt(2 / 1.0001) / math.sqrt(64 * 9)),
    (lambda w, g: nn.init.xavier_normal_(w, gain=2.0, generator=g), 2.0 * math.sqrt(2 / (64 * 9 + 256 * 9))),
    (lambda w, g: nn.init.xavier_uniform_(w, generator=g), math.sqrt(2 / (64 * 9 + 256 * 9))),
    (lambda w, g: nn.init.kaiming_uniform_(w, a=0, nonlinearity="relu", generator=g), math.sqrt(2 / (64 * 9))),
    (lambda w, g: nn.init.normal_(w, 0.0, 0.02, generator=g), 0.02),
    (lambda w, g: nn.init.uniform_(w, -0.3, 0.3, generator=g), 0.3 / math.sqrt(3)),
])
def test_init_functions_have_the_documented_std(fill, expected_std):
    weight = large_weight()
    assert fill(weight, numpy.random.default_rng(0)) is weight
    assert weight.dtype == numpy.float32
    assert abs(weight.numpy().astype("float64").std() / expected_std - 1) < 0.02
    again = large_weight()
    fill(again, numpy.random.default_rng(0))
    numpy.testing.assert_array_equal(weight.numpy(), again.numpy())      # generator= makes it reproducible


def test_uniform_bounds_and_constants():
    bound = math.sqrt(6 / (64 * 9 + 256 * 9))
    weight = nn.init.xavier_uniform_(large_weight(dtype="float64"))
    assert numpy.abs(weight.numpy()).max() <= bound and weight.dtype == numpy.float64
    for fill, value in [(nn.init.zeros_, 0.0), (nn.init.ones_, 1.0), (lambda w: nn.init.constant_(w, 0.5), 0.5)]:
        assert (fill(large_weight((3, 4))).numpy() == value).all()


def test_init_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(numpy.zeros(5)))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        nn.init.kaiming_uniform_(large_weight((2, 2)), mode="fan_avg")
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        nn.init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        nn.init.calculate_gain("leaky_relu", "0.1")
    with pytest.raises(TypeError, match="expected a Tensor"):
        nn.init.zeros_(numpy.zeros(3))
