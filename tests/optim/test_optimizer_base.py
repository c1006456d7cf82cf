"""The base-class contract: state before the first step, hooks, tags, skipping, bad input."""
import inspect

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import wse.optim
from wse.optim.lr_scheduler import CosineDecayLR

from . import optimizer_cases as C

# One representative configuration per optimizer (the first case of each class).
FIRST_CASE = {}
for _name, (_cls, _kwargs) in C.CASES.items():
    FIRST_CASE.setdefault(_cls, _kwargs)
# And one that switches on every optional piece of state.
FULL_STATE = {
    "SGD": {"lr": 0.05, "momentum": 0.9},
    "Adam": {"lr": 0.01, "amsgrad": True},
    "AdamW": {"lr": 0.01, "amsgrad": True},
    "RMSprop": {"lr": 0.01, "momentum": 0.9, "centered": True},
    "Adafactor": {"lr": 0.01, "beta1": 0.9},
}
ALL = sorted(FIRST_CASE)


def build(cls_name, params=None, **overrides):
    kwargs = dict(FULL_STATE.get(cls_name, FIRST_CASE[cls_name]), **overrides)
    params = C.initial_params() if params is None else params
    return getattr(wse.optim, cls_name)(C.param_groups(params, kwargs), **kwargs), params


# -- state before the first step ----------------------------------------------------------


@pytest.mark.parametrize("cls_name", ALL)
def test_state_exists_before_the_first_step_and_is_only_updated_in_place(cls_name):
    optimizer, params = build(cls_name)
    before = {(i, key): value for i, p in enumerate(params) for key, value in optimizer.state[p].items()}
    if cls_name != "SGD":
        assert all(optimizer.state[p] for p in params)
    snapshot = {k: v.clone() for k, v in before.items()}
    for step in range(3):
        C.set_gradients(params, step)
        optimizer.step()
    after = {(i, key): value for i, p in enumerate(params) for key, value in optimizer.state[p].items()}
    assert after.keys() == before.keys()
    for key, value in after.items():
        assert value is before[key], f"{cls_name}: state {key} was replaced"
        assert value.shape == snapshot[key].shape
    assert any(not torch.equal(after[k], snapshot[k]) for k in after), f"{cls_name}: no state changed"


@pytest.mark.parametrize("cls_name", ["Adam", "Adagrad", "ASGD", "NAdam", "Adafactor"])
def test_scalar_state_is_float32_on_the_parameter_device_for_float32_parameters(cls_name):
    params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(4))]
    optimizer = getattr(wse.optim, cls_name)(params, **FIRST_CASE[cls_name])
    scalars = [v for p in params for v in optimizer.state[p].values() if v.dim() == 0]
    assert scalars and all(v.dtype == torch.float32 and v.device == params[0].device for v in scalars)


def test_parameters_without_a_gradient_are_skipped_with_their_state():
    optimizer, params = build("Adam")
    frozen = params[1]
    state_before = {k: v.clone() for k, v in optimizer.state[frozen].items()}
    value_before = frozen.detach().clone()
    for step in range(3):
        C.set_gradients(params, step)
        frozen.grad = None
        optimizer.step()
    assert torch.equal(frozen, value_before)
    for key, value in optimizer.state[frozen].items():
        assert torch.equal(value, state_before[key]), key
    assert not torch.equal(params[0], C.initial_params()[0])


def test_a_step_without_any_gradient_changes_nothing():
    optimizer, params = build("AdamW")
    optimizer.step()
    for p, initial in zip(params, C.initial_params()):
        assert torch.equal(p, initial)


def test_sparse_gradients_are_refused_with_a_clear_error():
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    optimizer = wse.optim.Adam(embedding.parameters())
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        optimizer.step()


def test_closure_is_evaluated_with_gradients_enabled_and_its_loss_returned():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = wse.optim.SGD([p], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    assert loss.item() == 5.0
    torch.testing.assert_close(p.detach(), torch.tensor([0.8, 1.6]))


def test_parameters_of_several_dtypes_in_one_group_are_updated_like_separate_groups():
    def params():
        return [torch.nn.Parameter(torch.linspace(-1, 1, 12).reshape(3, 4)),
                torch.nn.Parameter(torch.linspace(-1, 1, 4, dtype=torch.float64))]

    mixed, split_a, split_b = params(), params(), params()
    together = wse.optim.Adam(mixed, lr=0.1)
    apart = [wse.optim.Adam([split_a[0], split_b[0]], lr=0.1), wse.optim.Adam([split_a[1], split_b[1]], lr=0.1)]
    for step in range(3):
        for ps in (mixed, split_a, split_b):
            for p in ps:
                p.grad = torch.cos(p.detach() * (step + 1))
        together.step()
        for optimizer in apart:
            optimizer.step()
    assert torch.equal(mixed[0], split_a[0]) and torch.equal(mixed[1], split_a[1])
    assert together.state[mixed[1]]["beta1_power"].dtype == torch.float64


@pytest.mark.parametrize("cls_name", ALL)
def test_bfloat16_parameters_train(cls_name):
    params = [torch.nn.Parameter(torch.randn(3, 4, dtype=torch.bfloat16)),
              torch.nn.Parameter(torch.randn(4, dtype=torch.bfloat16))]
    kwargs = FULL_STATE.get(cls_name, FIRST_CASE[cls_name])
    optimizer = getattr(wse.optim, cls_name)(params, **kwargs)
    start = [p.detach().clone() for p in params]
    for _ in range(3):
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer.step()
    assert all(torch.isfinite(p).all() for p in params)
    assert any(not torch.equal(p, s) for p, s in zip(params, start))


# -- hyperparameters as tensors ---------------------------------------------------------


class _HostReads(TorchDispatchMode):
    """Records reads of tensor values into Python (what a static-graph device cannot do)."""

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads.append(func)
        return func(*args, **(kwargs or {}))


class _TensorToPython(TorchFunctionMode):
    def __init__(self, reads):
        super().__init__()
        self.reads = reads

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__float__):
            self.reads.append(func)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("cls_name", ALL)
def test_tensor_hyperparameters_are_used_without_reading_them_back(cls_name):
    cls = getattr(wse.optim, cls_name)
    kwargs = dict(FULL_STATE.get(cls_name, FIRST_CASE[cls_name]))
    # Every hyperparameter of the signature, defaults included, becomes a tensor.
    for name, parameter in inspect.signature(cls).parameters.items():
        if name not in kwargs and isinstance(parameter.default, (float, int, tuple)) and not isinstance(parameter.default, bool):
            kwargs[name] = parameter.default
    if "weight_decay" in kwargs:
        kwargs["weight_decay"] = 0.01
    kwargs = C.tensor_hyperparameters(kwargs, dtype=torch.float32)
    assert isinstance(kwargs["lr"], torch.Tensor)
    params = C.initial_params()
    optimizer = cls(params, **kwargs)
    C.set_gradients(params, 0)
    optimizer.step()  # the first step may set things up; the contract is about every step
    C.set_gradients(params, 1)
    with _HostReads() as mode, _TensorToPython(mode.reads):
        optimizer.step()
    assert mode.reads == [], f"{cls_name} read a tensor into Python: {mode.reads}"


# -- zero_grad hooks ----------------------------------------------------------------------


def test_zero_grad_pre_hooks_run_before_and_post_hooks_after():
    p = torch.nn.Parameter(torch.ones(2))
    optimizer = wse.optim.SGD([p], lr=0.1)
    seen = []
    optimizer.register_zero_grad_pre_hook(lambda opt, args, kwargs: seen.append(("pre", p.grad is None)))
    optimizer.register_zero_grad_post_hook(lambda opt, args, kwargs: seen.append(("post", p.grad is None)))
    p.grad = torch.ones(2)
    optimizer.zero_grad()
    assert seen == [("pre", False), ("post", True)]


def test_a_zero_grad_pre_hook_may_replace_the_arguments_and_hooks_can_be_removed():
    p = torch.nn.Parameter(torch.ones(2))
    optimizer = wse.optim.SGD([p], lr=0.1)
    handle = optimizer.register_zero_grad_pre_hook(lambda opt, args, kwargs: ((), {"set_to_none": False}))
    post_calls = []
    post = optimizer.register_zero_grad_post_hook(lambda opt, args, kwargs: post_calls.append(kwargs))
    p.grad = torch.ones(2)
    optimizer.zero_grad()
    assert torch.equal(p.grad, torch.zeros(2))
    assert post_calls == [{"set_to_none": False}]
    handle.remove()
    post.remove()
    optimizer.zero_grad()
    assert p.grad is None and len(post_calls) == 1


def test_a_zero_grad_pre_hook_returning_something_else_is_an_error():
    optimizer = wse.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    optimizer.register_zero_grad_pre_hook(lambda opt, args, kwargs: "oops")
    with pytest.raises(RuntimeError, match="returns None or a tuple"):
        optimizer.zero_grad()


# -- base class API -----------------------------------------------------------------------


class _Counter(wse.optim.Optimizer):
    """A minimal user optimizer: p -= lr, counting steps in the global step."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr}, enable_global_step=True)

    def preinitialize(self):
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["calls"] = torch.zeros(())

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                self.increment_global_step(p)
                self.state[p]["calls"].add_(1)
                p.sub_(group["lr"])


def test_the_base_class_is_abstract():
    with pytest.raises(TypeError):
        wse.optim.Optimizer([torch.nn.Parameter(torch.ones(1))], {})


def test_a_user_subclass_gets_a_float32_global_step_it_can_increment():
    p = torch.nn.Parameter(torch.ones(2))
    optimizer = _Counter([p])
    assert optimizer.state[p]["step"].dtype == torch.float32
    optimizer.step()
    optimizer.step()
    assert optimizer.state[p]["step"].item() == 2.0
    assert optimizer.increment_global_step(p).item() == 3.0


def test_incrementing_a_global_step_that_was_not_enabled_is_a_clear_error():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(RuntimeError, match="enable_global_step=True"):
        wse.optim.Adam([p]).increment_global_step(p)


def test_param_group_tags_become_sets_and_schedulers_select_by_them():
    a, b, c = (torch.nn.Parameter(torch.ones(1)) for _ in range(3))
    optimizer = wse.optim.SGD(
        [{"params": [a], "tags": ["decay", "dense"]}, {"params": [b], "tags": "norm"}, {"params": [c]}], lr=1.0
    )
    assert optimizer.param_groups[0]["tags"] == {"decay", "dense"}
    assert optimizer.param_groups[1]["tags"] == {"norm"}
    assert "tags" not in optimizer.param_groups[2]
    CosineDecayLR(optimizer, 0.5, 0.0, 10, param_group_tags="norm")
    assert [g["lr"] for g in optimizer.param_groups] == [1.0, 0.5, 1.0]


def test_apply_calls_a_function_or_an_object_with_apply():
    optimizer = wse.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    assert optimizer.apply(lambda opt: opt is optimizer)

    class Visitor:
        def apply(self, opt):
            return type(opt).__name__

    assert optimizer.apply(Visitor()) == "SGD"
    with pytest.raises(TypeError, match="callable"):
        optimizer.apply(42)


def test_visit_state_replaces_returned_values_and_training_continues_with_them():
    reference, ref_params = build("Adam")
    visited, params = build("Adam")
    for step in range(2):
        for opt, ps in ((reference, ref_params), (visited, params)):
            C.set_gradients(ps, step)
            opt.step()
    visited.visit_state(lambda value: value.clone())
    visited.visit_state(lambda value: None)
    for step in range(2, 5):
        for opt, ps in ((reference, ref_params), (visited, params)):
            C.set_gradients(ps, step)
            opt.step()
    for a, b in zip(ref_params, params):
        assert torch.equal(a, b)
    for p, q in zip(ref_params, params):
        for key in reference.state[p]:
            assert torch.equal(reference.state[p][key], visited.state[q][key])


def test_a_param_group_added_later_gets_its_state_at_once():
    optimizer = wse.optim.AdamW([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    late = torch.nn.Parameter(torch.ones(3))
    optimizer.add_param_group({"params": [late], "lr": 0.01})
    assert set(optimizer.state[late]) == {"exp_avg", "exp_avg_sq", "beta1_power", "beta2_power"}
    late.grad = torch.ones(3)
    optimizer.step()
    assert late.detach()[0].item() < 1.0


def test_adam_takes_a_group_weight_decay_as_its_l2_rate():
    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    optimizer = wse.optim.Adam([{"params": [a]}, {"params": [b], "weight_decay": 0.5}], weight_decay=0.1)
    assert [g["l2_regularization_rate"] for g in optimizer.param_groups] == [0.1, 0.5]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.0]


# -- bad input ----------------------------------------------------------------------------


def _p():
    return [torch.nn.Parameter(torch.ones(2))]


@pytest.mark.parametrize("cls_name", ALL)
def test_a_negative_learning_rate_is_refused(cls_name):
    kwargs = dict(FIRST_CASE[cls_name], lr=-0.1)
    with pytest.raises(ValueError, match=r"lr.*>= 0"):
        getattr(wse.optim, cls_name)(_p(), **kwargs)


@pytest.mark.parametrize("cls_name", ["Adam", "AdamW", "Adamax", "Lamb", "Lion", "NAdam", "RAdam"])
@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.9), (0.9, 1.5)])
def test_betas_outside_zero_one_are_refused(cls_name, betas):
    with pytest.raises(ValueError, match=r"betas\[\d\].*\[0.0, 1.0\)"):
        getattr(wse.optim, cls_name)(_p(), betas=betas)


@pytest.mark.parametrize(
    "cls_name, kwargs, message",
    [
        ("Adam", {"eps": -1e-8}, "eps"),
        ("AdamW", {"weight_decay": -0.1}, "weight_decay"),
        ("Adagrad", {"eps": -1.0}, "eps"),
        ("Adagrad", {"lr_decay": -1.0}, "lr_decay"),
        ("Adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
        ("Adadelta", {"rho": 1.5}, "rho"),
        ("Adamax", {"eps": -1.0}, "eps"),
        ("ASGD", {"weight_decay": -1.0}, "weight_decay"),
        ("Lamb", {"weight_decay": -1.0}, "weight_decay"),
        ("Lion", {"weight_decay": -1.0}, "weight_decay"),
        ("NAdam", {"momentum_decay": -1.0}, "momentum_decay"),
        ("RAdam", {"eps": -1.0}, "eps"),
        ("RMSprop", {"momentum": -0.5}, "momentum"),
        ("RMSprop", {"alpha": -0.5}, "alpha"),
        ("SGD", {"lr": 0.1, "momentum": -0.5}, "momentum"),
        ("SGD", {"lr": 0.1, "weight_decay": -0.5}, "weight_decay"),
        ("SGD", {"lr": 0.1, "nesterov": True}, "Nesterov"),
        ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "Nesterov"),
        ("Rprop", {"etas": (1.2, 0.5)}, "etas"),
        ("Rprop", {"step_sizes": (1.0, 0.1)}, "step_sizes"),
        ("Adafactor", {"lr": 0.1, "relative_step": True}, "relative_step"),
        ("Adafactor", {"lr": None, "warmup_init": True}, "warmup_init"),
        ("Adafactor", {"lr": 0.1, "clip_threshold": 0.0}, "clip_threshold"),
        ("Adafactor", {"lr": 0.1, "decay_rate": 0.5}, "decay_rate"),
        ("Adafactor", {"lr": 0.1, "beta1": 1.0}, "beta1"),
        ("Adafactor", {"lr": 0.1, "eps": (1e-30,)}, "eps"),
    ],
)
def test_out_of_range_hyperparameters_are_refused(cls_name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        getattr(wse.optim, cls_name)(_p(), **kwargs)


def test_a_per_group_hyperparameter_is_checked_too():
    with pytest.raises(ValueError, match="lr"):
        wse.optim.Adam([{"params": _p()}, {"params": _p(), "lr": -1.0}])


def test_a_bad_group_added_later_is_refused_and_not_kept():
    optimizer = wse.optim.Adam(_p())
    with pytest.raises(ValueError, match="eps"):
        optimizer.add_param_group({"params": _p(), "eps": -1.0})
    assert len(optimizer.param_groups) == 1


@pytest.mark.parametrize("params", [[], iter([]), [{"params": []}]])
def test_an_empty_parameter_list_is_refused(params):
    with pytest.raises(ValueError, match="empty parameter list|no parameters"):
        wse.optim.SGD(params, lr=0.1)


def test_a_parameter_in_two_groups_is_refused():
    shared = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(ValueError, match="already in param group 0"):
        wse.optim.AdamW([{"params": [shared]}, {"params": [shared, torch.nn.Parameter(torch.ones(1))]}])


def test_a_parameter_listed_twice_in_a_group_is_refused():
    shared = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(ValueError, match="repeats parameter 0"):
        wse.optim.AdamW([shared, shared])


def test_a_single_tensor_instead_of_an_iterable_is_refused():
    with pytest.raises(TypeError, match="single tensor"):
        wse.optim.AdamW(torch.nn.Parameter(torch.ones(1)))


def test_complex_parameters_are_refused():
    with pytest.raises(ValueError, match="complex"):
        wse.optim.AdamW([torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))])


def test_a_hyperparameter_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="lr"):
        wse.optim.AdamW(_p(), lr="fast")
    with pytest.raises(ValueError, match="one element"):
        wse.optim.AdamW(_p(), lr=torch.tensor([0.1, 0.2]))


# -- the published API ----------------------------------------------------------------------

PUBLISHED_SIGNATURES = {
    "Adadelta": [("lr", 1.0), ("rho", 0.9), ("eps", 1e-06), ("weight_decay", 0), ("maximize", False)],
    "Adafactor": [("lr", inspect.Parameter.empty), ("eps", (1e-30, 0.001)), ("clip_threshold", 1.0),
                  ("decay_rate", -0.8), ("beta1", None), ("weight_decay", 0.0), ("scale_parameter", True),
                  ("relative_step", False), ("warmup_init", False)],
    "Adagrad": [("lr", 0.01), ("lr_decay", 0), ("weight_decay", 0), ("initial_accumulator_value", 0),
                ("eps", 1e-06), ("maximize", False)],
    "Adamax": [("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-06), ("weight_decay", 0.0), ("maximize", False)],
    "Adam": [("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-06), ("weight_decay", 0.0), ("amsgrad", False)],
    "AdamW": [("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-06), ("weight_decay", 0.0),
              ("correct_bias", True), ("amsgrad", False)],
    "ASGD": [("lr", 0.01), ("lambd", 0.0001), ("alpha", 0.75), ("t0", 1000000.0), ("weight_decay", 0),
             ("maximize", False)],
    "Lamb": [("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-06), ("weight_decay", 0), ("adam", False)],
    "Lion": [("lr", 0.0001), ("betas", (0.9, 0.99)), ("weight_decay", 0.0)],
    "NAdam": [("lr", 0.002), ("betas", (0.9, 0.999)), ("eps", 1e-08), ("weight_decay", 0), ("momentum_decay", 0.004)],
    "RAdam": [("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-06), ("weight_decay", 0.0)],
    "RMSprop": [("lr", 0.01), ("alpha", 0.99), ("eps", 1e-08), ("weight_decay", 0), ("momentum", 0),
                ("centered", False)],
    "Rprop": [("lr", 0.001), ("etas", (0.5, 1.2)), ("step_sizes", (1e-06, 50.0))],
    "SGD": [("lr", inspect.Parameter.empty), ("momentum", 0), ("dampening", 0), ("weight_decay", 0),
            ("nesterov", False), ("maximize", False)],
}


@pytest.mark.parametrize("cls_name", sorted(PUBLISHED_SIGNATURES))
def test_arguments_and_defaults_are_the_published_ones(cls_name):
    parameters = list(inspect.signature(getattr(wse.optim, cls_name)).parameters.values())
    assert parameters[0].name == "params"
    assert [(p.name, p.default) for p in parameters[1:]] == PUBLISHED_SIGNATURES[cls_name]


# -- CUDA -------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("cls_name", ALL)
def test_a_cuda_step_with_tensor_hyperparameters_never_synchronises(cls_name):
    device = torch.device("cuda")
    params = [torch.nn.Parameter(p.detach().float().to(device)) for p in C.initial_params()]

    def on_device(value):
        if isinstance(value, torch.Tensor):
            return value.to(device)
        return tuple(on_device(v) for v in value) if isinstance(value, tuple) else value

    kwargs = C.tensor_hyperparameters(dict(FULL_STATE.get(cls_name, FIRST_CASE[cls_name])), dtype=torch.float32)
    kwargs = {key: on_device(value) for key, value in kwargs.items()}
    optimizer = getattr(wse.optim, cls_name)(params, **kwargs)
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer.step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        optimizer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(torch.isfinite(p).all() for p in params)


def test_zero_grad_hooks_survive_loading_a_state():
    p = torch.nn.Parameter(torch.ones(2))
    optimizer = wse.optim.SGD([p], lr=0.1)
    calls = []
    optimizer.register_zero_grad_post_hook(lambda opt, args, kwargs: calls.append("post"))
    optimizer.load_state_dict(optimizer.state_dict())
    optimizer.zero_grad()
    assert calls == ["post"]
