"""Module machinery: registration, traversal order and names, modes, gradients, state dicts, containers.

Names, orders and reprs are checked against PyTorch building the same architecture, so the
expectation never comes from striate itself.
"""
import collections
import copy

import numpy
import pytest

import striate as st
import striate.nn as nn
from oracle import assert_close, torch

tnn = torch.nn


# ----- architectures built the same way in both libraries -----------------------------------------
def make_net(lib):
    """A model touching every registration path: attributes, Sequential (plain and named),
    ModuleList, a shared submodule, a parameter-free layer and BatchNorm buffers."""

    class Block(lib.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = lib.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn = lib.BatchNorm2d(channels)
            self.act = lib.ReLU()

        def forward(self, x):
            return self.act(self.bn(self.conv(x))) + x

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.Sequential(collections.OrderedDict([
                ("conv", lib.Conv2d(3, 8, 3, stride=2, padding=1)),
                ("pool", lib.MaxPool2d(2)),
            ]))
            self.blocks = lib.ModuleList([Block(8), Block(8)])
            self.shared = self.blocks[0]          # the same module under a second name
            self.head = lib.Sequential(lib.AdaptiveAvgPool2d(1), lib.Flatten(), lib.Linear(8, 5))

        def forward(self, x):
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    return Net()


class Affine(nn.Module):
    """A layer written with Tensor arithmetic only, so these tests do not depend on the ops."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(numpy.arange(n_in * n_out, dtype="float32").reshape(n_out, n_in) / 10)
        self.bias = nn.Parameter(numpy.zeros(n_out, dtype="float32"))

    def forward(self, x):
        return x @ self.weight.T + self.bias


def torch_state_as_numpy(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


# ----- Parameter ----------------------------------------------------------------------------------
def test_parameter_defaults_copies_and_dtypes():
    source = numpy.ones((2, 3), dtype="float64")
    p = nn.Parameter(source)
    assert isinstance(p, st.Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == numpy.float64                      # arrays keep their dtype
    source[0, 0] = 5.0
    assert p.data[0, 0] == 1.0                           # the data was copied
    assert nn.Parameter([1.0, 2.0]).dtype == numpy.float32   # Python floats become float32
    assert nn.Parameter(st.tensor([1.0]), requires_grad=False).requires_grad is False
    empty = nn.Parameter()
    assert empty.shape == (0,) and empty.dtype == numpy.float32
    assert repr(p).startswith("Parameter containing:\ntensor(")


# ----- registration -------------------------------------------------------------------------------
def test_assignment_registers_parameters_modules_and_buffers():
    m = nn.Module()
    m.w = nn.Parameter(numpy.zeros(2, dtype="float32"))
    m.child = nn.Linear(2, 3)
    m.register_buffer("stat", st.zeros(2))
    m.register_buffer("scratch", st.zeros(1), persistent=False)
    m.plain = st.zeros(4)                               # a Tensor that is not a Parameter: plain attribute
    assert list(m._parameters) == ["w"] and list(m._modules) == ["child"]
    assert [n for n, _ in m.named_buffers()] == ["stat", "scratch"]
    assert list(m.state_dict()) == ["w", "stat", "child.weight", "child.bias"]   # non-persistent left out
    assert m.w is m._parameters["w"] and m.child is m._modules["child"] and m.stat is m._buffers["stat"]
    assert "plain" in m.__dict__

    m.w = None                                         # a registered parameter may be set to None ...
    assert m.w is None and [n for n, _ in m.named_parameters()] == ["child.weight", "child.bias"]
    with pytest.raises(TypeError, match="cannot assign Tensor object as parameter 'bias'"):
        m.child.bias = st.zeros(3)                     # ... but not to a plain Tensor
    with pytest.raises(TypeError, match="as buffer 'stat'"):
        m.stat = numpy.zeros(2)
    with pytest.raises(TypeError, match="child module 'child'"):
        m.child = 3
    del m.child
    assert not hasattr(m, "child") and "child" not in m._modules


def test_registration_errors():
    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(numpy.zeros(1))      # before super().__init__()

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\)"):
        Forgot()
    m = nn.Module()
    with pytest.raises(KeyError, match="contain no '.'"):
        m.register_parameter("a.b", None)
    with pytest.raises(KeyError, match="non-empty"):
        m.register_buffer("", None)
    with pytest.raises(TypeError, match="nn.Parameter or None expected"):
        m.register_parameter("w", st.zeros(1))
    with pytest.raises(TypeError, match="Tensor or None expected"):
        m.register_buffer("b", [1.0])
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        m.register_buffer("training", None)
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'missing'"):
        m.missing
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required "forward"'):
        m(st.zeros(1))


# ----- traversal: names and order as PyTorch ------------------------------------------------------
def test_names_and_order_match_pytorch():
    ours, theirs = make_net(nn), make_net(tnn)
    for method in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(ours, method)()] == [n for n, _ in getattr(theirs, method)()], method
    assert list(ours.state_dict()) == list(theirs.state_dict())    # shared module appears under both names
    assert [n for n, _ in ours.named_parameters(prefix="model", recurse=True)] == \
        [n for n, _ in theirs.named_parameters(prefix="model")]
    assert [n for n, _ in ours.blocks[0].named_parameters(recurse=False)] == []
    assert [n for n, _ in ours.stem.conv.named_parameters(recurse=False)] == ["weight", "bias"]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_modules(remove_duplicate=False)]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]


def test_apply_visits_children_first_like_pytorch():
    visited = {"ours": [], "theirs": []}
    make_net(nn).apply(lambda m: visited["ours"].append(type(m).__name__))
    make_net(tnn).apply(lambda m: visited["theirs"].append(type(m).__name__))
    assert visited["ours"] == visited["theirs"]


def test_repr_matches_pytorch():
    assert repr(make_net(nn)) == repr(make_net(tnn))
    assert repr(nn.ModuleList([nn.Linear(2, 2)] * 3 + [nn.ReLU()])) == \
        repr(tnn.ModuleList([tnn.Linear(2, 2)] * 3 + [tnn.ReLU()]))
    assert repr(nn.ModuleList()) == "ModuleList()" and repr(nn.Sequential()) == "Sequential()"


@pytest.mark.parametrize("lib", [nn, tnn], ids=["striate", "torch"])
def test_shared_parameter_listed_once_and_reassignment_keeps_order(lib):
    m = lib.Module()
    m.a = lib.Linear(2, 2)
    m.b = lib.Linear(2, 2)
    m.b.weight = m.a.weight                 # re-assigning keeps the key's place in the order
    assert [n for n, _ in m.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    assert list(m.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    m.a = lib.Tanh()
    assert [n for n, _ in m.named_children()] == ["a", "b"]


def test_get_submodule():
    net = make_net(nn)
    assert net.get_submodule("blocks.1.bn") is net.blocks[1].bn
    assert net.get_submodule("") is net
    with pytest.raises(AttributeError, match="no submodule 'nope'"):
        net.get_submodule("blocks.nope")


# ----- modes and gradients ------------------------------------------------------------------------
def test_train_and_eval_propagate():
    net = make_net(nn)
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.blocks.train()
    assert net.blocks[1].bn.training and not net.head.training
    assert net.train() is net and all(m.training for m in net.modules())
    with pytest.raises(TypeError, match="mode must be a bool"):
        net.train("no")


def test_zero_grad_and_requires_grad():
    layer = Affine(3, 2)
    x = st.tensor(numpy.ones((4, 3), dtype="float32"))
    layer(x).sum().backward()
    assert_close(layer.weight.grad, numpy.full((2, 3), 4.0))
    assert_close(layer.bias.grad, numpy.full(2, 4.0))
    layer.zero_grad(set_to_none=False)
    assert_close(layer.weight.grad, numpy.zeros((2, 3)))
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None
    assert layer.requires_grad_(False) is layer
    assert not any(p.requires_grad for p in layer.parameters())


def test_forward_hooks_see_and_replace_output():
    layer = Affine(3, 2)
    seen = []
    handle = layer.register_forward_hook(lambda m, args, out: seen.append((m, args[0].shape, out.shape)))
    layer(st.ones(5, 3))
    assert seen == [(layer, (5, 3), (5, 2))]
    handle.remove()
    layer(st.ones(5, 3))
    assert len(seen) == 1
    with layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,)):
        assert not layer(st.ones(1, 3)).numpy().any()
    assert layer(st.ones(1, 3)).numpy().any()


# ----- dtype --------------------------------------------------------------------------------------
def test_to_converts_in_place_and_keeps_integer_buffers():
    net = make_net(nn)
    params = list(net.parameters())
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]     # same objects, for optimizers
    assert all(p.dtype == numpy.float64 for p in net.parameters())
    assert net.blocks[0].bn.running_var.dtype == numpy.float64
    assert net.blocks[0].bn.num_batches_tracked.dtype == numpy.int64
    assert net.to(st.float32).stem.conv.weight.dtype == numpy.float32
    assert net.to("cpu") is net
    with pytest.raises(TypeError, match="only to floating-point dtypes"):
        net.to(st.int64)


# ----- state dicts --------------------------------------------------------------------------------
def test_state_dict_is_an_ordered_copy():
    net = make_net(nn)
    state = net.state_dict()
    assert isinstance(state, collections.OrderedDict)
    assert all(isinstance(v, numpy.ndarray) for v in state.values())
    assert state["blocks.0.bn.num_batches_tracked"].dtype == numpy.int64
    state["stem.conv.weight"][...] = 7.0
    assert not numpy.any(net.stem.conv.weight.data == 7.0)
    kept = net.state_dict(keep_vars=True)
    assert kept["stem.conv.weight"] is net.stem.conv.weight


def test_state_dict_round_trip_copies_into_existing_parameters():
    source, target = make_net(nn), make_net(nn)
    weight = target.stem.conv.weight
    result = target.load_state_dict(source.state_dict())
    assert result == ([], []) and result.missing_keys == [] and result.unexpected_keys == []
    assert target.stem.conv.weight is weight                            # copied in, not replaced
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        numpy.testing.assert_array_equal(a, b, err_msg=name)


def test_load_casts_to_the_parameter_dtype_and_accepts_tensors():
    net = Affine(3, 2)
    net.load_state_dict({"weight": numpy.ones((2, 3), dtype="float64"), "bias": st.tensor([1.0, 2.0])})
    assert net.weight.dtype == numpy.float32 and net.weight.data.sum() == 6.0
    assert_close(net.bias, numpy.array([1.0, 2.0]))


def test_load_strict_reports_missing_and_unexpected_keys():
    net = make_net(nn)
    state = net.state_dict()
    del state["head.2.bias"]
    state["head.9.weight"] = numpy.zeros(3)
    with pytest.raises(RuntimeError, match=r'(?s)Missing key\(s\) in state_dict: "head.2.bias".*'
                                           r'Unexpected key\(s\) in state_dict: "head.9.weight"'):
        net.load_state_dict(state)
    before = net.head[2].bias.data.copy()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["head.2.bias"] and unexpected == ["head.9.weight"]
    numpy.testing.assert_array_equal(net.head[2].bias.data, before)


def test_load_shape_mismatch_always_raises_and_copies_nothing():
    net = make_net(nn)
    state = net.state_dict()
    state["stem.conv.bias"] = numpy.full(8, 3.0, dtype="float32")      # a valid entry that must not be copied
    state["head.2.weight"] = numpy.zeros((4, 8), dtype="float32")
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for head.2.weight: .*shape \(4, 8\).*"
                                               r"shape in current model is \(5, 8\)"):
            net.load_state_dict(state, strict=strict)
    assert not numpy.any(net.stem.conv.bias.data == 3.0)
    with pytest.raises(TypeError, match="expected a mapping"):
        net.load_state_dict([("a", 1)])


def test_pytorch_state_dict_loads_and_gives_the_same_outputs():
    torch.manual_seed(0)
    theirs, ours = make_net(tnn), make_net(nn)
    x = numpy.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype("float32")
    theirs.train()
    theirs(torch.from_numpy(x))              # move the running statistics away from their defaults
    ours.load_state_dict(torch_state_as_numpy(theirs))
    assert_close(ours.blocks[1].bn.running_mean, theirs.blocks[1].bn.running_mean)
    assert ours.blocks[1].bn.num_batches_tracked.item() == 1
    theirs.eval(), ours.eval()
    assert_close(ours(st.tensor(x)), theirs(torch.from_numpy(x)), rtol=1e-5, atol=1e-5)
    ours.load_state_dict(theirs.state_dict())                      # torch tensors themselves work too
    theirs.train(), ours.train()
    assert_close(ours(st.tensor(x)), theirs(torch.from_numpy(x)), rtol=1e-4, atol=1e-5)


def test_deepcopy_gives_independent_parameters():
    net = make_net(nn)
    twin = copy.deepcopy(net)
    assert twin.shared is twin.blocks[0]                 # sharing inside the copy is preserved
    twin.stem.conv.weight.data[...] = 0
    assert net.stem.conv.weight.data.any()


# ----- containers ---------------------------------------------------------------------------------
def test_sequential_indexing_and_editing():
    a, b, c = nn.ReLU(), nn.Tanh(), nn.Identity()
    seq = nn.Sequential(a, b)
    assert len(seq) == 2 and list(seq) == [a, b] and seq[-1] is b
    assert seq.append(c) is seq and seq[2] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub._modules) == ["1", "2"] and list(sub) == [b, c]
    seq[0] = nn.Sigmoid()
    assert isinstance(seq[0], nn.Sigmoid)
    del seq[0]
    assert list(seq._modules) == ["0", "1"] and list(seq) == [b, c]        # renumbered, as PyTorch
    seq.insert(0, a)
    assert list(seq) == [a, b, c]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        seq[3]
    named = nn.Sequential(collections.OrderedDict([("first", a), ("second", b)]))
    assert named.first is a and [n for n, _ in named.named_children()] == ["first", "second"]
    x = st.tensor([-1.0, 2.0])
    assert_close(nn.Sequential(Affine(2, 2), nn.Identity())(x), Affine(2, 2)(x))


def test_sequential_runs_modules_in_order():
    calls = []

    class Tag(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(self.name)
            return x + 1

    out = nn.Sequential(Tag("a"), Tag("b"), Tag("c"))(st.zeros(1))
    assert calls == ["a", "b", "c"] and out.item() == 3


def test_module_list():
    layers = nn.ModuleList(Affine(2, 2) for _ in range(2))
    assert len(layers) == 2 and len(list(layers.parameters())) == 4
    layers.append(nn.ReLU()).extend([nn.Tanh()])
    layers.insert(1, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Affine", "Identity", "Affine", "ReLU", "Tanh"]
    assert list(layers._modules) == ["0", "1", "2", "3", "4"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[-1]
    assert len(layers) == 4 and isinstance(layers[-1], nn.ReLU)
    with pytest.raises(TypeError, match="expected an iterable of Modules"):
        layers.extend(nn.ReLU())
    with pytest.raises(NotImplementedError):
        layers(st.zeros(1))


# ----- documentation ----------------------------------------------------------------------------
def test_docstring_examples_run():
    """The Examples in striate.nn's docstrings are executed, so they cannot drift from the code."""
    import doctest
    import importlib
    import math

    names = ["module", "parameter", "init", "modules.container", "modules.conv", "modules.pooling",
             "modules.linear", "modules.flatten", "modules.activation", "modules.dropout",
             "modules.normalization", "modules.loss"]
    for name in names:
        module = importlib.import_module(f"striate.nn.{name}")
        result = doctest.testmod(module, extraglobs={"st": st, "nn": nn, "numpy": numpy, "math": math},
                                 optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False, report=False)
        assert result.failed == 0, f"striate.nn.{name}: {result.failed} docstring example(s) failed"
        assert result.attempted > 0, f"striate.nn.{name} has no docstring example"
