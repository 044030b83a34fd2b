"""Optimizers against PyTorch's: the same problem, the same start, 20 steps, parameters and state compared."""
import numpy
import pytest

import striate as st
from oracle import assert_close, torch

STEPS = 20

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.2, momentum=0.5, weight_decay=0.05, nesterov=True),
    dict(lr=0.1, momentum=0.9, dampening=0.1, maximize=True),
]
ADAM_CONFIGS = [
    dict(lr=0.05),
    dict(lr=0.05, betas=(0.8, 0.99)),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, amsgrad=True),
    dict(lr=0.05, maximize=True),
    dict(lr=0.02, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.1, amsgrad=True),
]
ADAMW_CONFIGS = [
    dict(lr=0.05),
    dict(lr=0.05, weight_decay=0.2, amsgrad=True),
    dict(lr=0.05, betas=(0.0, 0.5), weight_decay=0.1, maximize=True),
]
OPTIMIZERS = {"SGD": (st.optim.SGD, torch.optim.SGD), "Adam": (st.optim.Adam, torch.optim.Adam),
              "AdamW": (st.optim.AdamW, torch.optim.AdamW)}
CASES = ([("SGD", c) for c in SGD_CONFIGS] + [("Adam", c) for c in ADAM_CONFIGS]
         + [("AdamW", c) for c in ADAMW_CONFIGS])
TOLERANCE = {numpy.float64: dict(rtol=1e-9, atol=1e-12), numpy.float32: dict(rtol=1e-5, atol=1e-6)}


def case_id(case):
    name, config = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in config.items())


def logistic_loss(X, y, W, b, sign=1.0):
    """Binary cross-entropy of a linear model, written once for either library's tensors."""
    z = X @ W + b
    p = 1 / (1 + (-z).exp())
    return sign * -(y * p.log() + (1 - y) * (1 - p).log()).mean()


def make_problem(dtype, seed=0):
    rng = numpy.random.default_rng(seed)
    X = rng.standard_normal((16, 3)).astype(dtype)
    y = (rng.random((16, 2)) > 0.5).astype(dtype)
    W = (0.5 * rng.standard_normal((3, 2))).astype(dtype)
    b = (0.1 * rng.standard_normal(2)).astype(dtype)
    return (X, y), (W, b)


class Trainer:
    """Runs one library's optimizer on the logistic problem."""

    def __init__(self, lib, cls, params, config, data, groups=None):
        self.lib = lib
        self.params = [self.leaf(a) for a in params]
        self.data = [self.const(a) for a in data]
        spec = self.params if groups is None else groups(self.params)
        self.opt = cls(spec, **config)
        self.sign = -1.0 if config.get("maximize") else 1.0

    def leaf(self, array):
        if self.lib == "torch":
            return torch.tensor(array, requires_grad=True)
        return st.tensor(array, requires_grad=True)

    def const(self, array):
        return torch.tensor(array) if self.lib == "torch" else st.tensor(array)

    def loss(self):
        return logistic_loss(*self.data, *self.params, sign=self.sign)

    def run(self, steps):
        for _ in range(steps):
            self.opt.zero_grad()
            self.loss().backward()
            self.opt.step()
        return self

    def values(self):
        return [p.detach().numpy() if self.lib == "torch" else p.data for p in self.params]


def pair(name, config, dtype, groups=None, seed=0):
    s_cls, t_cls = OPTIMIZERS[name]
    data, params = make_problem(dtype, seed)
    return (Trainer("striate", s_cls, params, config, data, groups),
            Trainer("torch", t_cls, params, config, data, groups))


def assert_same_state(s_opt, t_opt, dtype):
    """Parameters' optimizer state (buffers, moments, step counts) equals PyTorch's."""
    s_dict, t_dict = s_opt.state_dict(), t_opt.state_dict()
    assert sorted(s_dict["state"]) == sorted(t_dict["state"])
    for index, t_entry in t_dict["state"].items():
        s_entry = s_dict["state"][index]
        assert sorted(s_entry) == sorted(t_entry), f"state keys of parameter {index}"
        for key, t_value in t_entry.items():
            if key == "step":
                assert s_entry[key] == t_value.item()
            else:
                assert s_entry[key].dtype == dtype
                assert_close(s_entry[key], t_value, **TOLERANCE[dtype], what=f"state {key} of parameter {index}")


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_pytorch(case, dtype):
    name, config = case
    s, t = pair(name, config, dtype)
    s.run(STEPS)
    t.run(STEPS)
    for i, (actual, expected) in enumerate(zip(s.values(), t.values())):
        assert actual.dtype == dtype
        assert_close(actual, expected, **TOLERANCE[dtype], what=f"parameter {i} after {STEPS} steps")
    assert_same_state(s.opt, t.opt, dtype)


def two_groups(params):
    W, b = params
    return [{"params": [W], "lr": 0.2}, {"params": b, "momentum": 0.5, "weight_decay": 0.1}]


def two_groups_adam(params):
    W, b = params
    return [{"params": [W], "lr": 0.01, "betas": (0.5, 0.9)}, {"params": [b], "amsgrad": True}]


@pytest.mark.parametrize("name, config, groups", [
    ("SGD", dict(lr=0.05, momentum=0.9), two_groups),
    ("Adam", dict(lr=0.05), two_groups_adam),
    ("AdamW", dict(lr=0.05, weight_decay=0.3), two_groups_adam),
])
def test_param_groups_with_their_own_hyperparameters(name, config, groups):
    s, t = pair(name, config, numpy.float64, groups)
    assert len(s.opt.param_groups) == 2
    for s_group, t_group in zip(s.opt.param_groups, t.opt.param_groups):
        for key in s.opt.defaults:
            assert s_group[key] == t_group[key], f"group value {key}"
    s.run(STEPS)
    t.run(STEPS)
    for actual, expected in zip(s.values(), t.values()):
        assert_close(actual, expected, **TOLERANCE[numpy.float64])


def test_add_param_group_midway():
    s, t = pair("SGD", dict(lr=0.1, momentum=0.9), numpy.float64, groups=lambda params: [params[0]])
    for trainer in (s, t):
        trainer.run(3)
        trainer.opt.add_param_group({"params": [trainer.params[1]], "lr": 0.3, "nesterov": True})
        trainer.run(5)
    assert s.opt.param_groups[1]["momentum"] == 0.9
    for actual, expected in zip(s.values(), t.values()):
        assert_close(actual, expected, **TOLERANCE[numpy.float64])


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_parameters_without_gradient_are_untouched(name):
    W = st.tensor(numpy.ones((2, 2)), requires_grad=True)
    unused = st.tensor(numpy.full(3, 7.0), requires_grad=True)
    config = dict(lr=0.1, momentum=0.9) if name == "SGD" else dict(lr=0.1)
    opt = OPTIMIZERS[name][0]([W, unused], **config)
    for _ in range(3):
        opt.zero_grad()
        (W * W).sum().backward()
        opt.step()
    numpy.testing.assert_array_equal(unused.data, numpy.full(3, 7.0))
    assert unused not in opt.state
    assert list(opt.state_dict()["state"]) == [0]


def test_sgd_without_momentum_keeps_no_state():
    s, t = pair("SGD", dict(lr=0.1, weight_decay=0.1), numpy.float64)
    s.run(2)
    t.run(2)
    assert s.opt.state_dict()["state"] == {} == t.opt.state_dict()["state"]


def test_update_is_in_place_and_keeps_dtype():
    s, _ = pair("Adam", dict(lr=0.05, amsgrad=True), numpy.float32)
    arrays = [p.data for p in s.params]
    s.run(3)
    for p, array in zip(s.params, arrays):
        assert p.data is array
        assert p.data.dtype == numpy.float32
    for entry in s.opt.state.values():
        assert all(v.dtype == numpy.float32 for k, v in entry.items() if k != "step")


def test_step_records_no_graph():
    s, _ = pair("SGD", dict(lr=0.1, momentum=0.9), numpy.float64)
    s.run(2)
    assert all(p.is_leaf and p.requires_grad for p in s.params)


def test_zero_grad():
    a = st.tensor(numpy.ones(3), requires_grad=True)
    b = st.tensor(numpy.ones(3), requires_grad=True)
    opt = st.optim.SGD([a], lr=0.1)
    (a + b).sum().backward()
    opt.zero_grad(set_to_none=False)
    numpy.testing.assert_array_equal(a.grad.data, numpy.zeros(3))
    assert a.grad.dtype == numpy.float64
    numpy.testing.assert_array_equal(b.grad.data, numpy.ones(3))  # b's gradient is not a's to clear
    opt.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("name, config", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.05))])
def test_step_with_closure(name, config):
    s, t = pair(name, config, numpy.float64)
    for trainer in (s, t):
        def closure(trainer=trainer):
            trainer.opt.zero_grad()
            loss = trainer.loss()
            loss.backward()
            return loss
        trainer.losses = [trainer.opt.step(closure).item() for _ in range(10)]
    numpy.testing.assert_allclose(s.losses, t.losses, rtol=1e-10)
    for actual, expected in zip(s.values(), t.values()):
        assert_close(actual, expected, **TOLERANCE[numpy.float64])
    assert s.opt.step() is None


def test_closure_runs_with_gradients_enabled():
    W = st.tensor(numpy.ones(2), requires_grad=True)
    opt = st.optim.SGD([W], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (W * W).sum()
        loss.backward()
        return loss

    with st.no_grad():
        opt.step(closure)
    numpy.testing.assert_allclose(W.data, numpy.zeros(2))  # 1 − 0.5·2


# ----- checkpoints ----------------------------------------------------------------------------------
ROUND_TRIP_CASES = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("Adam", dict(lr=0.05, amsgrad=True)),
                    ("AdamW", dict(lr=0.05, weight_decay=0.1))]


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
@pytest.mark.parametrize("name, config", ROUND_TRIP_CASES)
def test_state_dict_round_trip(name, config, dtype):
    """Save after 5 steps, load into a fresh optimizer, 5 more steps: the same as 10 steps straight."""
    cls = OPTIMIZERS[name][0]
    data, params = make_problem(dtype)
    straight = Trainer("striate", cls, params, config, data).run(10)

    first = Trainer("striate", cls, params, config, data).run(5)
    saved = first.opt.state_dict()
    at_five = [v.copy() for v in first.values()]
    first.run(3)  # the saved arrays are copies: later steps must not reach them

    for _ in range(2):  # loading copies too, so `saved` loads to the same result twice
        resumed = Trainer("striate", cls, at_five, dict(lr=123.0), data)
        resumed.opt.load_state_dict(saved)
        assert resumed.opt.param_groups[0]["lr"] == config["lr"]
        resumed.run(5)
        for actual, expected in zip(resumed.values(), straight.values()):
            numpy.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("name, config", ROUND_TRIP_CASES)
def test_state_dict_layout_matches_pytorch(name, config):
    s, t = pair(name, config, numpy.float64, groups=two_groups_adam if name != "SGD" else two_groups)
    s.run(2)
    t.run(2)
    s_dict, t_dict = s.opt.state_dict(), t.opt.state_dict()
    assert sorted(s_dict) == ["param_groups", "state"]
    for s_group, t_group in zip(s_dict["param_groups"], t_dict["param_groups"]):
        assert s_group["params"] == t_group["params"]
        assert set(s_group) <= set(t_group)
        assert all(s_group[key] == t_group[key] for key in s_group if key != "params")
    assert_same_state(s.opt, t.opt, numpy.float64)


@pytest.mark.parametrize("name, config", ROUND_TRIP_CASES)
def test_loads_pytorch_state_dict(name, config):
    s_cls, t_cls = OPTIMIZERS[name]
    data, params = make_problem(numpy.float32)
    t = Trainer("torch", t_cls, params, config, data).run(5)
    t_dict = t.opt.state_dict()
    converted = {
        "state": {i: {k: v.numpy().copy() for k, v in entry.items()} for i, entry in t_dict["state"].items()},
        "param_groups": t_dict["param_groups"],
    }
    s = Trainer("striate", s_cls, [v.copy() for v in t.values()], dict(lr=1.0), data)
    s.sign = t.sign
    s.opt.load_state_dict(converted)
    for entry in s.opt.state.values():
        assert "step" not in entry or entry["step"] == 5
    s.run(5)
    t.run(5)
    for actual, expected in zip(s.values(), t.values()):
        assert_close(actual, expected, **TOLERANCE[numpy.float32])


def test_state_keys_may_be_strings():
    data, params = make_problem(numpy.float64)
    saved = Trainer("striate", st.optim.SGD, params, dict(lr=0.1, momentum=0.9), data).run(2).opt.state_dict()
    text_keys = {"state": {str(k): v for k, v in saved["state"].items()}, "param_groups": saved["param_groups"]}
    opt = st.optim.SGD([st.tensor(a, requires_grad=True) for a in params], lr=0.1, momentum=0.9)
    opt.load_state_dict(text_keys)
    assert len(opt.state) == 2


def _fresh_sgd(n_params=2, momentum=0.9):
    params = [st.tensor(numpy.ones(3), requires_grad=True) for _ in range(n_params)]
    return st.optim.SGD(params, lr=0.1, momentum=momentum)


def _saved_sgd():
    opt = _fresh_sgd()
    for p in opt.param_groups[0]["params"]:
        p.grad = st.tensor(numpy.ones(3))
    opt.step()
    return opt.state_dict()


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.pop("state"), r"SGD.load_state_dict: expected a dict with 'state' and 'param_groups'"),
    (lambda d: d["param_groups"].append({"params": []}), r"state dict has 2 parameter groups, this optimizer has 1"),
    (lambda d: d["param_groups"][0]["params"].pop(), r"group 0 has 1 parameters in the state dict but 2"),
    (lambda d: d["param_groups"][0].pop("params"), r"group 0 of the state dict has no 'params'"),
    (lambda d: d["state"].update({7: {}}), r"state for parameter 7, which no parameter group lists"),
    (lambda d: d["state"][1].update(momentum_buffer=numpy.ones(4)),
     r"state 'momentum_buffer' of parameter 1 has shape \(4,\), but the parameter has shape \(3,\)"),
    (lambda d: d["param_groups"][0].update(lr=-1.0), r"SGD: lr must be >= 0, got -1.0"),
])
def test_load_state_dict_rejects_mismatches(mutate, match):
    saved = _saved_sgd()
    mutate(saved)
    opt = _fresh_sgd()
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(saved)
    assert len(opt.state) == 0 and opt.param_groups[0]["lr"] == 0.1  # nothing half-loaded


def test_load_state_dict_rejects_non_dict():
    with pytest.raises(ValueError, match=r"expected a dict with 'state' and 'param_groups', got list"):
        _fresh_sgd().load_state_dict([1, 2])


# ----- bad input ----------------------------------------------------------------------------------
def _leaf():
    return st.tensor(numpy.ones(3), requires_grad=True)


@pytest.mark.parametrize("cls, kwargs, error, match", [
    (st.optim.SGD, dict(lr=-0.1), ValueError, r"SGD: lr must be >= 0, got -0.1"),
    (st.optim.SGD, dict(lr="fast"), TypeError, r"SGD: lr must be a real number, got 'fast'"),
    (st.optim.SGD, dict(lr=0.1, momentum=-0.5), ValueError, r"SGD: momentum must be >= 0, got -0.5"),
    (st.optim.SGD, dict(lr=0.1, weight_decay=-1e-4), ValueError, r"SGD: weight_decay must be >= 0, got -0.0001"),
    (st.optim.SGD, dict(lr=0.1, nesterov=True), ValueError,
     r"SGD: Nesterov momentum requires momentum > 0 and dampening == 0, got momentum=0, dampening=0"),
    (st.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"got momentum=0.9, dampening=0.1"),
    (st.optim.Adam, dict(lr=-1.0), ValueError, r"Adam: lr must be >= 0, got -1.0"),
    (st.optim.Adam, dict(betas=(1.0, 0.999)), ValueError, r"Adam: betas\[0\] must be in \[0, 1\), got 1.0"),
    (st.optim.Adam, dict(betas=(0.9, -0.1)), ValueError, r"Adam: betas\[1\] must be in \[0, 1\), got -0.1"),
    (st.optim.Adam, dict(betas=0.9), TypeError, r"Adam: betas must be a pair of numbers \(beta1, beta2\), got 0.9"),
    (st.optim.Adam, dict(betas=(0.9, 0.99, 0.999)), TypeError, r"Adam: betas must be a pair"),
    (st.optim.Adam, dict(eps=-1e-8), ValueError, r"Adam: eps must be >= 0, got -1e-08"),
    (st.optim.Adam, dict(weight_decay=-0.1), ValueError, r"Adam: weight_decay must be >= 0, got -0.1"),
    (st.optim.AdamW, dict(weight_decay=-0.1), ValueError, r"AdamW: weight_decay must be >= 0, got -0.1"),
    (st.optim.AdamW, dict(betas=(0.9, 1.5)), ValueError, r"AdamW: betas\[1\] must be in \[0, 1\), got 1.5"),
])
def test_rejects_bad_hyperparameters(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls([_leaf()], **kwargs)


@pytest.mark.parametrize("cls", [st.optim.SGD, st.optim.Adam, st.optim.AdamW])
def test_rejects_bad_hyperparameters_in_a_group(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: lr must be >= 0, got -0.5"):
        cls([{"params": [_leaf()]}, {"params": [_leaf()], "lr": -0.5}], lr=0.1)


def _non_leaf():
    return _leaf() * 2


@pytest.mark.parametrize("params, error, match", [
    (lambda: [], ValueError, r"SGD: got an empty parameter list"),
    (lambda: _leaf(), TypeError, r"SGD: params must be an iterable of Tensors or of dicts, got a single Tensor"),
    (lambda: {_leaf()}, TypeError, r"SGD: params must be an ordered iterable .* got a set"),
    (lambda: 3, TypeError, r"SGD: params must be an iterable of Tensors or of dicts, got int"),
    (lambda: [_leaf(), numpy.ones(3)], TypeError, r"SGD: can only optimize Tensors, got ndarray at position 1"),
    (lambda: [_non_leaf()], ValueError, r"SGD: can't optimize a non-leaf Tensor \(position 0 .* made by Mul\)"),
    (lambda: (lambda p: [{"params": [p]}, {"params": [_leaf(), p]}])(_leaf()), ValueError,
     r"SGD: some parameters appear in more than one parameter group \(groups 0 and 1\)"),
    (lambda: (lambda p: [p, p])(_leaf()), ValueError, r"SGD: parameter at position 1 appears twice in its group"),
    (lambda: [{"lr": 0.1}], ValueError, r"SGD: a parameter group must have a 'params' entry, got keys \['lr'\]"),
    (lambda: [{"params": {_leaf()}}], TypeError, r"SGD: a group's params must be an ordered collection"),
])
def test_rejects_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        st.optim.SGD(params(), lr=0.1)


def test_add_param_group_rejects_bad_groups():
    opt = st.optim.Adam([_leaf()])
    with pytest.raises(TypeError, match=r"Adam: a parameter group must be a dict, got list"):
        opt.add_param_group([_leaf()])
    taken = opt.param_groups[0]["params"][0]
    with pytest.raises(ValueError, match=r"Adam: some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [taken]})
    assert len(opt.param_groups) == 1


def test_repr_lists_groups():
    text = repr(st.optim.SGD([{"params": [_leaf()]}, {"params": [_leaf()], "lr": 0.5}], lr=0.1, momentum=0.9))
    assert text.startswith("SGD (\nParameter Group 0\n") and "    lr: 0.5" in text and "    momentum: 0.9" in text
