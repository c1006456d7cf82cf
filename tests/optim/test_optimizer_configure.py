"""configure_optimizer / configure_optimizer_params: names, signature filtering, helpful errors."""
import logging

import pytest
import torch

import wse.optim
from wse.optim import available_optimizers, configure_optimizer, configure_optimizer_params


def _params():
    return [torch.nn.Parameter(torch.ones(2))]


def test_every_optimizer_can_be_configured_by_name():
    assert set(available_optimizers()) >= {
        "adadelta", "adafactor", "adagrad", "adamax", "adam", "adamw", "asgd",
        "lamb", "lion", "nadam", "radam", "rmsprop", "rprop", "sgd",
    }


@pytest.mark.parametrize("name", ["SGD", "sgd", "Sgd"])
def test_the_type_name_is_matched_in_any_case(name):
    optimizer = configure_optimizer(name, _params(), lr=0.001, momentum=0.5)
    assert type(optimizer) is wse.optim.SGD
    assert optimizer.param_groups[0]["momentum"] == 0.5


def test_the_signature_decides_which_arguments_apply(caplog):
    kwargs = {"lr": 0.01, "momentum": 0.9, "betas": (0.8, 0.9), "max_gradient_norm": 1.0}
    with caplog.at_level(logging.WARNING, logger="wse.optim.configure_optimizer"):
        cls, arguments = configure_optimizer_params("sgd", kwargs)
    assert cls is wse.optim.SGD
    assert arguments == {"lr": 0.01, "momentum": 0.9}
    assert "betas" in caplog.text and "max_gradient_norm" in caplog.text
    assert kwargs == {"lr": 0.01, "momentum": 0.9, "betas": (0.8, 0.9), "max_gradient_norm": 1.0}


def test_a_misspelled_argument_is_warned_about_with_the_likely_name():
    with pytest.warns(UserWarning, match=r"'momentun'.*did you mean 'momentum'"):
        _, arguments = configure_optimizer_params("SGD", {"lr": 0.1, "momentun": 0.9})
    assert "momentun" not in arguments and "momentum" not in arguments


def test_an_unrelated_argument_is_not_called_a_misspelling(recwarn):
    configure_optimizer_params("AdamW", {"lr": 0.1, "log_summaries": True})
    assert not [w for w in recwarn if "did you mean" in str(w.message)]


def test_an_unknown_type_lists_the_optimizers_and_suggests_the_closest():
    with pytest.raises(ValueError) as error:
        configure_optimizer("AdamWW", _params(), lr=0.1)
    message = str(error.value)
    assert "'AdamWW'" in message and "did you mean 'AdamW'" in message
    for name in ("Adafactor", "Lamb", "SGD", "Rprop"):
        assert name in message


def test_learning_rate_is_accepted_for_lr_and_a_placeholder_fills_a_required_lr():
    assert configure_optimizer_params("AdamW", {"learning_rate": "3e-4"})[1]["lr"] == pytest.approx(3e-4)
    assert configure_optimizer_params("SGD", {"learning_rate": {"scheduler": "Linear"}})[1]["lr"] == 0.1
    assert configure_optimizer_params("Adam", {})[1]["lr"] == 1e-3
    assert configure_optimizer_params("Adafactor", {"relative_step": True})[1]["lr"] is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weight_decay_rate": 0.1}, "`weight_decay` instead of `weight_decay_rate`"),
        ({"beta1": 0.8, "beta2": 0.9}, "`betas` instead of `beta1`"),
    ],
)
def test_names_older_configs_used_are_errors_that_say_what_to_write(kwargs, message):
    with pytest.raises(ValueError, match=message):
        configure_optimizer_params("AdamW", dict(kwargs, lr=0.1))


def test_adafactor_takes_beta1_as_its_own_argument():
    _, arguments = configure_optimizer_params("Adafactor", {"lr": 0.01, "beta1": 0.9})
    assert arguments["beta1"] == 0.9


def test_a_constructor_type_error_is_reported_as_a_configuration_failure():
    with pytest.raises(RuntimeError, match="Failed to configure SGD"):
        configure_optimizer("SGD", _params(), lr=0.1, nesterov=True, momentum=0.9, dampening=None)


def test_a_bad_value_keeps_the_optimizers_own_error():
    with pytest.raises(ValueError, match="lr"):
        configure_optimizer("Adam", _params(), lr=-1.0)


def test_a_user_optimizer_is_configurable_once_defined():
    class PlainDescent(wse.optim.Optimizer):
        def __init__(self, params, lr=0.1, **extra):
            super().__init__(params, {"lr": lr})

        def preinitialize(self):
            """Plain descent keeps no state."""

        def step(self, closure=None):
            """Never called: only configuring the optimizer is under test."""

    cls, arguments = configure_optimizer_params("plaindescent", {"lr": 0.5, "anything": 1})
    assert cls is PlainDescent
    assert arguments == {"lr": 0.5, "anything": 1}
