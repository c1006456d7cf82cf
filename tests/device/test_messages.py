"""Each error and warning of the device says what is wrong and what to do."""
import warnings

import pytest
import torch

from wse.device import Device, HostHyperparameterError, StaticGraphWarning

from .helpers import Tiny, batches


def test_a_wrong_check_mode_lists_what_each_mode_does():
    with pytest.raises(ValueError) as caught:
        Tiny().device(check="raise")
    message = str(caught.value)
    assert "got 'raise'" in message
    assert "'strict' raises each violation" in message and "'off' checks nothing" in message


def test_a_wrong_container_names_what_was_expected():
    tiny = Tiny()
    with pytest.raises(TypeError, match="`optimizers` must be an optimizer or a list of them, got a value of type int"):
        Device(tiny.model, 3)
    with pytest.raises(TypeError, match="`schedulers` must be a scheduler or a list of them, got a value of type int"):
        Device(tiny.model, tiny.optimizer, 3)


def test_a_scheduler_without_step_says_what_belongs_there():
    tiny = Tiny()
    with pytest.raises(TypeError) as caught:
        Device(tiny.model, tiny.optimizer, [tiny.scheduler, "cosine"])
    assert "schedulers[1] is a str, which has no step() method" in str(caught.value)
    assert "pass the schedulers stepped inside the training step" in str(caught.value)


def test_an_unknown_module_in_host_code_shows_the_accepted_forms():
    with pytest.raises(ValueError) as caught:
        Tiny().device(host_code=["lightning.pytorch.core.modul:LightningModule.log"])
    message = str(caught.value)
    assert "not installed: ['lightning.pytorch.core.modul:LightningModule.log']" in message
    assert "'package.module:Class.method'" in message


def test_a_torch_scheduler_is_named_with_its_tensor_valued_wse_form():
    tiny = Tiny(scheduler="torch")  # torch.optim.lr_scheduler.StepLR
    device = tiny.device()
    with pytest.raises(HostHyperparameterError) as caught:
        for x in batches(2):
            with device.step(x):
                tiny.train_step(x)
    message = str(caught.value)
    assert "written by StepLR, which writes Python numbers (the tensor-valued form: wse.optim.lr_scheduler.StepLR)" in message
    assert "enable_tensor_values()" in message


def test_a_warning_says_that_training_goes_on_and_later_ones_are_only_counted():
    tiny = Tiny()
    device = tiny.device(check="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for x in batches(3):
            with device.step(x):
                tiny.train_step(x).item()
    (warning,) = [w.message for w in caught if isinstance(w.message, StaticGraphWarning)]
    assert str(warning).startswith("HostSyncError: step 1 reads a step value on the host")
    assert "(check='warn': training goes on; later host sync violations are counted in the device's report" in str(warning)
    assert device.report().violations == {"host sync": 3}


def test_recompilation_is_warned_with_the_remedy():
    tiny = Tiny(scheduler=None)
    device = tiny.device(compile=True, compile_backend="eager", verify_steps=1)
    scale = [1.0]

    def step(x):
        loss = tiny.loss(x) * scale[0]  # a Python number the compiled step guards on
        loss.backward()
        tiny.optimizer.step()
        tiny.optimizer.zero_grad()
        return loss.detach()

    wrapped = device.wrap(step)
    with pytest.warns(RuntimeWarning) as caught:
        for number, x in enumerate(batches(5), start=1):
            scale[0] = float(number)
            wrapped(x)
    (warning,) = [w.message for w in caught if "compiled again" in str(w.message)]
    assert "Make that value a tensor" in str(warning) and "TORCH_LOGS=recompiles" in str(warning)
    assert device.report().recompilations >= 1
    assert torch.isfinite(torch.stack([p.detach().sum() for p in tiny.model.parameters()])).all()
