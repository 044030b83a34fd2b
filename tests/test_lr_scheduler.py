"""Learning-rate schedules against PyTorch's: lr (and momentum) sequences over many steps."""
import numpy
import pytest

import striate as st
from oracle import torch

sched = st.optim.lr_scheduler
GROUP_LRS = (0.1, 0.02)


def make_optimizers(name, **config):
    """The same two-group optimizer in both libraries, on parameters that never get gradients."""
    s_cls, t_cls = {"SGD": (st.optim.SGD, torch.optim.SGD), "Adam": (st.optim.Adam, torch.optim.Adam),
                    "AdamW": (st.optim.AdamW, torch.optim.AdamW)}[name]
    s_groups = [{"params": [st.tensor(numpy.zeros(2), requires_grad=True)], "lr": lr} for lr in GROUP_LRS]
    t_groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in GROUP_LRS]
    return s_cls(s_groups, **config), t_cls(t_groups, **config)


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group.get("momentum")


def trace(optimizer, scheduler, steps):
    """lrs from get_last_lr and the groups, and momenta, at construction and after each step."""
    lrs, group_lrs, momenta = [], [], []
    for step in range(steps + 1):
        if step:
            optimizer.step()
            scheduler.step()
        lrs.append(scheduler.get_last_lr())
        group_lrs.append([g["lr"] for g in optimizer.param_groups])
        momenta.append([momentum_of(g) for g in optimizer.param_groups])
    return numpy.array(lrs), numpy.array(group_lrs), numpy.array(momenta, dtype=float)


def compare(name, config, make_scheduler, steps, rtol=1e-12, atol=1e-15):
    s_opt, t_opt = make_optimizers(name, **config)
    s_lrs, s_group_lrs, s_momenta = trace(s_opt, make_scheduler(sched, s_opt), steps)
    t_lrs, _, t_momenta = trace(t_opt, make_scheduler(torch.optim.lr_scheduler, t_opt), steps)
    numpy.testing.assert_allclose(s_lrs, t_lrs, rtol=rtol, atol=atol, err_msg="lr")
    numpy.testing.assert_array_equal(s_group_lrs, s_lrs)
    numpy.testing.assert_allclose(s_momenta, t_momenta, rtol=rtol, atol=atol, err_msg="momentum")
    return s_opt


@pytest.mark.parametrize("step_size, gamma", [(3, 0.5), (1, 0.9), (7, 0.1), (10, 2.0)])
def test_step_lr(step_size, gamma):
    compare("SGD", dict(momentum=0.9), lambda m, opt: m.StepLR(opt, step_size, gamma=gamma), 60)


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.0), (7, 1e-3), (1, 0.0), (25, 0.05)])
def test_cosine_annealing_lr(T_max, eta_min):
    # 100 steps run several periods past T_max, where the lr climbs back along the cosine.
    compare("Adam", {}, lambda m, opt: m.CosineAnnealingLR(opt, T_max, eta_min=eta_min), 100, rtol=1e-9)


ONE_CYCLE_CONFIGS = [
    dict(max_lr=0.5, total_steps=100),
    dict(max_lr=[0.5, 0.05], total_steps=57, pct_start=0.25, anneal_strategy="linear"),
    dict(max_lr=1.0, epochs=4, steps_per_epoch=13, three_phase=True),
    dict(max_lr=0.3, total_steps=40, three_phase=True, anneal_strategy="linear", div_factor=10.0,
         final_div_factor=100.0, base_momentum=[0.8, 0.7], max_momentum=0.9),
    dict(max_lr=0.3, total_steps=31, pct_start=0.5, cycle_momentum=False),
    dict(max_lr=0.3, total_steps=5, pct_start=0.1),
]


@pytest.mark.parametrize("name, optimizer_config", [("SGD", dict(momentum=0.9)), ("Adam", dict(betas=(0.9, 0.99))),
                                                    ("AdamW", {})])
@pytest.mark.parametrize("config", ONE_CYCLE_CONFIGS)
def test_one_cycle_lr(name, optimizer_config, config):
    make = lambda m, opt: m.OneCycleLR(opt, **config)  # noqa: E731
    total = config.get("total_steps") or config["epochs"] * config["steps_per_epoch"]
    s_opt = compare(name, optimizer_config, make, total)
    if name != "SGD":
        assert s_opt.param_groups[0]["betas"][1] == optimizer_config.get("betas", (0.9, 0.999))[1]


def test_one_cycle_lr_refuses_to_step_past_the_cycle():
    s_opt, t_opt = make_optimizers("SGD", momentum=0.9)
    s_sched = sched.OneCycleLR(s_opt, max_lr=0.1, total_steps=10)
    t_sched = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=0.1, total_steps=10)
    for _ in range(10):
        t_opt.step()
        s_sched.step()
        t_sched.step()
    with pytest.raises(ValueError):
        t_sched.step()
    with pytest.raises(ValueError, match=r"OneCycleLR: tried to step 11 times, but total_steps is 10"):
        s_sched.step()
    assert s_sched.last_epoch == 10  # the refused step changed nothing
    numpy.testing.assert_allclose(s_sched.get_last_lr(), [g["lr"] for g in t_opt.param_groups], rtol=1e-12)


def test_one_cycle_lr_trains_like_pytorch():
    """The cycled lr and momentum are what SGD uses: 30 steps on a quadratic match PyTorch's."""
    rng = numpy.random.default_rng(0)
    A, target, w0 = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal(3)
    results = []
    for lib, tensor in ((st, lambda a, **kw: st.tensor(a, **kw)), (torch, lambda a, **kw: torch.tensor(a, **kw))):
        w = tensor(w0, requires_grad=True)
        A_, t_ = tensor(A), tensor(target)
        opt = lib.optim.SGD([w], lr=0.01, momentum=0.9, nesterov=True)
        scheduler = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=30)
        for _ in range(30):
            opt.zero_grad()
            (((A_ @ w) - t_) ** 2).sum().backward()
            opt.step()
            scheduler.step()
        results.append(numpy.array(w.detach().numpy() if lib is torch else w.data))
    numpy.testing.assert_allclose(results[0], results[1], rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda m, opt: m.StepLR(opt, 4, gamma=0.5),
    lambda m, opt: m.CosineAnnealingLR(opt, 9, eta_min=1e-3),
    lambda m, opt: m.OneCycleLR(opt, max_lr=0.4, total_steps=20, three_phase=True),
])
def test_state_dict_resumes_the_schedule(make):
    s_opt, t_opt = make_optimizers("Adam")
    _, t_group_lrs, t_momenta = trace(t_opt, make(torch.optim.lr_scheduler, t_opt), 20)

    first = make(sched, s_opt)
    for _ in range(7):
        first.step()
    saved_opt, saved = s_opt.state_dict(), first.state_dict()
    first.step()  # the saved state is a copy

    resumed_opt, _ = make_optimizers("Adam")
    resumed = make(sched, resumed_opt)
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    assert resumed.last_epoch == 7
    for step in range(8, 21):
        resumed.step()
        numpy.testing.assert_allclose([g["lr"] for g in resumed_opt.param_groups], t_group_lrs[step], rtol=1e-9)
        numpy.testing.assert_allclose([momentum_of(g) for g in resumed_opt.param_groups], t_momenta[step], rtol=1e-9)


def test_resume_with_last_epoch_like_pytorch():
    s_opt, t_opt = make_optimizers("SGD")
    t_sched = torch.optim.lr_scheduler.StepLR(t_opt, 2, gamma=0.5)
    for _ in range(5):
        t_opt.step()
        t_sched.step()
    for s_group, t_group in zip(s_opt.param_groups, t_opt.param_groups):  # as a loaded optimizer state has them
        s_group["lr"], s_group["initial_lr"] = t_group["lr"], t_group["initial_lr"]
    s_sched = sched.StepLR(s_opt, 2, gamma=0.5, last_epoch=4)
    assert s_sched.last_epoch == t_sched.last_epoch == 5
    numpy.testing.assert_allclose(s_sched.get_last_lr(), t_sched.get_last_lr(), rtol=1e-12)


def test_resume_needs_initial_lr():
    s_opt, _ = make_optimizers("SGD")
    with pytest.raises(ValueError, match=r"StepLR: resuming at last_epoch=4 needs 'initial_lr' in every parameter "
                                         r"group, missing in groups \[0, 1\]"):
        sched.StepLR(s_opt, 2, last_epoch=4)


def test_get_last_lr_is_a_copy():
    s_opt, _ = make_optimizers("SGD")
    scheduler = sched.StepLR(s_opt, 2)
    scheduler.get_last_lr().append(1.0)
    assert scheduler.get_last_lr() == list(GROUP_LRS)


class LrOnly(st.optim.Optimizer):
    """An optimizer with neither momentum nor betas."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))


def _opt():
    return make_optimizers("SGD", momentum=0.9)[0]


@pytest.mark.parametrize("make, error, match", [
    (lambda: sched.StepLR("sgd", 2), TypeError, r"StepLR: expected an Optimizer, got str"),
    (lambda: sched.StepLR(_opt(), 0), ValueError, r"StepLR: step_size must be a positive integer, got 0"),
    (lambda: sched.StepLR(_opt(), 2.5), ValueError, r"StepLR: step_size must be a positive integer, got 2.5"),
    (lambda: sched.CosineAnnealingLR(_opt(), 0), ValueError, r"CosineAnnealingLR: T_max must be a positive integer"),
    (lambda: sched.OneCycleLR("sgd", 0.1, 10), TypeError, r"OneCycleLR: expected an Optimizer, got str"),
    (lambda: sched.OneCycleLR(_opt(), 0.1), ValueError,
     r"OneCycleLR: give either total_steps, or both epochs and steps_per_epoch; got total_steps=None, epochs=None"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, epochs=3), ValueError, r"epochs=3, steps_per_epoch=None"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, total_steps=0), ValueError,
     r"OneCycleLR: total_steps must be a positive integer, got 0"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, epochs=-1, steps_per_epoch=3), ValueError,
     r"OneCycleLR: epochs must be a positive integer, got -1"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, total_steps=10, pct_start=1.5), ValueError,
     r"OneCycleLR: pct_start must be a number in \[0, 1\], got 1.5"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, total_steps=10, anneal_strategy="exp"), ValueError,
     r"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, total_steps=10, div_factor=0), ValueError,
     r"OneCycleLR: div_factor must be a positive number, got 0"),
    (lambda: sched.OneCycleLR(_opt(), [0.1, 0.2, 0.3], total_steps=10), ValueError,
     r"OneCycleLR: max_lr must have one value per parameter group \(2\), got 3 values"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, total_steps=10, base_momentum=[0.8]), ValueError,
     r"OneCycleLR: base_momentum must have one value per parameter group \(2\), got 1 values"),
    (lambda: sched.OneCycleLR(LrOnly([st.tensor(numpy.ones(2), requires_grad=True)]), 0.1, total_steps=10),
     ValueError, r"OneCycleLR: cycle_momentum needs an optimizer with 'momentum' or 'betas', got LrOnly"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, total_steps=10, pct_start=0.1), ValueError,
     r"OneCycleLR: phase 1 of the cycle would last zero steps with pct_start=0.1, total_steps=10"),
    (lambda: sched.OneCycleLR(_opt(), 0.1, total_steps=10, pct_start=1.0), ValueError,
     r"OneCycleLR: phase 2 of the cycle would last zero steps"),
])
def test_rejects_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_zero_length_phase_would_divide_by_zero_in_pytorch():
    """Why the zero-length-phase check exists: PyTorch fails there with ZeroDivisionError."""
    _, t_opt = make_optimizers("SGD", momentum=0.9)
    with pytest.raises(ZeroDivisionError):
        torch.optim.lr_scheduler.OneCycleLR(t_opt, 0.1, total_steps=10, pct_start=0.1)


def test_one_cycle_lr_works_without_momentum_when_not_cycling():
    opt = LrOnly([st.tensor(numpy.ones(2), requires_grad=True)])
    scheduler = sched.OneCycleLR(opt, 0.1, total_steps=10, cycle_momentum=False)
    assert scheduler.get_last_lr() == [pytest.approx(0.1 / 25)]


def test_load_state_dict_rejects_mismatches():
    scheduler = sched.StepLR(_opt(), 2)
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: expected a dict with 'last_epoch' and 'base_lrs'"):
        scheduler.load_state_dict({"step_size": 3})
    saved = scheduler.state_dict()
    saved["base_lrs"] = [0.1]
    with pytest.raises(ValueError, match=r"the state dict has 1 base lrs, the optimizer has 2 parameter groups"):
        scheduler.load_state_dict(saved)
