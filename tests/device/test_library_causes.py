"""A violation caused inside torch.optim, torchmetrics or torch.nn names that library's line and its fix."""
import os

import pytest
import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAccuracy

from wse.device import Device, GraphChangeError, HostSyncError
from wse.optim import AdamW as WseAdamW

from .helpers import batches, line_of


def at(marker: str) -> int:
    return line_of(__file__, "#@" + marker + "@")


def library_file(error) -> str:
    return os.path.relpath(error.library.location.filename, os.path.dirname(torch.__file__))


def assert_user_line(error, marker: str) -> None:
    assert (error.location.filename, error.location.lineno) == (__file__, at(marker)), str(error)


def train(model, optimizer, body, steps: int = 4, **options) -> Device:
    """Steps of ``body(model, x) -> loss`` on the device, with the optimizer's state made before step 1."""
    device = Device(model, optimizer, **options)
    for x in batches(steps):
        with device.step(x):
            body(model, x).backward()
            optimizer.step()  #@optimizer-step@
            optimizer.zero_grad()
    return device


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def mse(model, x):
    return model(x).pow(2).mean()


# -- torch.optim ------------------------------------------------------------------------------


class WeightDecayFromZero:
    """A tensor-valued weight decay updated in place after each step: 0 for two steps, then 0.1."""

    def __init__(self, optimizer):
        self.optimizer, self.count = optimizer, 0
        for group in optimizer.param_groups:
            group["weight_decay"] = torch.tensor(0.0)

    def step(self):
        self.count += 1
        for group in self.optimizer.param_groups:
            group["weight_decay"].fill_(0.1 if self.count >= 2 else 0.0)


def test_torch_optim_branching_on_a_tensor_weight_decay_is_named_with_the_wse_optim_replacement():
    model = mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=torch.tensor(0.01))
    schedule = WeightDecayFromZero(optimizer)
    device = Device(model, optimizer, schedule)
    with pytest.raises(GraphChangeError) as caught:
        for x in batches(4):
            with device.step(x):
                mse(model, x).backward()
                optimizer.step()  #@adamw-step@
                optimizer.zero_grad()
                schedule.step()
    error = caught.value
    assert error.step == 3  # step 2 re-captured torch's lazily created state; step 3 decays
    assert_user_line(error, "adamw-step")
    assert error.library.library == "torch.optim"
    assert library_file(error).startswith(os.path.join("optim", "adam"))
    assert error.library.location.code == "if weight_decay != 0:"
    message = str(error)
    assert message.startswith("step 3: torch.optim took another branch on a value it read on the host")
    assert "not your code" in message
    assert "the value read: False at the captured step 1, True at step 3" in message
    assert "Use wse.optim.AdamW" in message
    assert "control flow on the step number" not in message


def test_the_wse_optim_optimizer_runs_the_same_graph_for_every_weight_decay():
    model = mlp()
    optimizer = WseAdamW(model.parameters(), lr=torch.tensor(0.01), weight_decay=torch.tensor(0.0))
    optimizer.preinitialize()
    schedule = WeightDecayFromZero(optimizer)
    device = Device(model, optimizer, schedule, verify_steps=5)
    for x in batches(6):
        with device.step(x):
            mse(model, x).backward()
            optimizer.step()
            optimizer.zero_grad()
            schedule.step()
    report = device.report()
    assert (report.steps_verified, report.violations) == (5, {})
    assert optimizer.param_groups[0]["weight_decay"].item() == pytest.approx(0.1)


# -- torchmetrics -----------------------------------------------------------------------------


TARGETS = (torch.arange(8) % 2).float()


def test_torchmetrics_checking_its_inputs_is_named_with_validate_args():
    accuracy = BinaryAccuracy()

    def step(model, x):
        logits = model(x).squeeze(-1)
        accuracy(logits, TARGETS.long())  #@accuracy@
        return logits.pow(2).mean()

    model = mlp()
    with pytest.raises(HostSyncError) as caught:
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), step)
    error = caught.value
    assert_user_line(error, "accuracy")
    assert error.library.library == "torchmetrics"
    assert error.library.location.function.endswith("_tensor_validation")
    assert "validate_args=False" in str(error) and "not your code" in str(error)


def test_torchmetrics_testing_float_predictions_is_named_with_class_predictions_as_the_fix():
    accuracy = BinaryAccuracy(validate_args=False)

    def step(model, x):
        logits = model(x).squeeze(-1)
        accuracy(logits, TARGETS.long())  #@float-predictions@
        return logits.pow(2).mean()

    model = mlp()
    with pytest.raises(HostSyncError) as caught:
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), step)
    assert_user_line(caught.value, "float-predictions")
    assert caught.value.library.location.function == "normalize_logits_if_needed"
    assert "(logits > 0).long()" in str(caught.value)


def test_torchmetrics_with_validate_args_false_and_class_predictions_reads_nothing():
    accuracy = BinaryAccuracy(validate_args=False)

    def step(model, x):
        logits = model(x).squeeze(-1)
        accuracy((logits > 0).long(), TARGETS.long())
        return logits.pow(2).mean()

    model = mlp()
    device = train(model, torch.optim.SGD(model.parameters(), lr=0.1), step)
    assert device.report().violations == {}
    assert 0.0 <= accuracy.compute().item() <= 1.0


def test_an_aggregation_metric_looking_for_nans_is_named_with_nan_strategy():
    def run(mean):
        def step(model, x):
            loss = model(x).pow(2).mean()
            mean(loss.detach())  #@mean@
            return loss

        model = mlp()
        return train(model, torch.optim.SGD(model.parameters(), lr=0.1), step)

    with pytest.raises(HostSyncError) as caught:
        run(MeanMetric())
    assert_user_line(caught.value, "mean")
    assert caught.value.library.library == "torchmetrics"
    assert "nan_strategy='disable'" in str(caught.value)
    assert run(MeanMetric(nan_strategy="disable")).report().violations == {}


# -- torch.nn ---------------------------------------------------------------------------------


class Encoder(torch.nn.Module):
    def __init__(self, is_causal):
        super().__init__()
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(2))
        self.is_causal = is_causal

    def forward(self, x):
        tokens = x.reshape(-1, 2, 2).repeat(1, 1, 4)
        return self.encoder(tokens, mask=self.mask, is_causal=self.is_causal)  #@encoder@


def test_a_transformer_encoder_testing_its_mask_is_named_with_is_causal():
    model = Encoder(is_causal=None)
    with pytest.raises(HostSyncError) as caught:
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), mse)
    error = caught.value
    assert_user_line(error, "encoder")
    assert (error.library.library, error.library.location.function) == ("torch.nn", "_detect_is_causal_mask")
    assert "is_causal=True" in str(error)

    model = Encoder(is_causal=True)
    assert train(model, torch.optim.SGD(model.parameters(), lr=0.1), mse).report().violations == {}


def test_gradient_clipping_that_checks_the_norm_is_named_with_error_if_nonfinite():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    device = Device(model, optimizer)
    with pytest.raises(HostSyncError) as caught:
        for x in batches(2):
            with device.step(x):
                mse(model, x).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)  #@clip@
                optimizer.step()
    assert_user_line(caught.value, "clip")
    assert caught.value.library.library == "torch.nn"
    assert "leave error_if_nonfinite=False" in str(caught.value)


def test_a_read_in_the_users_own_code_names_no_library():
    def step(model, x):
        loss = model(x).pow(2).mean()
        if loss > 1e3:  #@own-read@
            loss = loss / 2
        return loss

    model = mlp()
    with pytest.raises(HostSyncError) as caught:
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), step)
    assert_user_line(caught.value, "own-read")
    assert caught.value.library is None
    assert "torch.where" in str(caught.value)


def test_a_graph_change_that_only_shows_up_inside_torch_nn_is_not_blamed_on_it():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    device = Device(model, optimizer)
    with pytest.raises(GraphChangeError) as caught:
        for step, x in enumerate(batches(4), start=1):
            if step == 3:
                model.eval()  # the user's change: dropout stops running
            with device.step(x):
                model(x).pow(2).mean().backward()  #@eval-forward@
                optimizer.step()
                optimizer.zero_grad()
    error = caught.value
    assert error.step == 3 and error.library is None
    assert_user_line(error, "eval-forward")
    assert "Python control flow on the step number or on data" in str(error)


@pytest.mark.slow  # a fresh interpreter
def test_naming_a_library_imports_none_of_them():
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from wse.device import Device, HostSyncError\n"
        "model = torch.nn.Linear(4, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "device = Device(model, optimizer)\n"
        "try:\n"
        "    with device.step():\n"
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)\n"
        "        model(torch.ones(2, 4)).sum().backward()\n"
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)\n"
        "except HostSyncError as error:\n"
        "    assert error.library.library == 'torch.nn', error\n"
        "else:\n"
        "    raise AssertionError('no HostSyncError')\n"
        "print(sorted(name for name in ('lightning', 'pytorch_lightning', 'torchmetrics') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_branch_in_the_users_code_on_a_value_read_is_explained_without_naming_a_library():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    device = Device(model, optimizer, check="warn")
    with pytest.warns(Warning) as caught:
        for step, x in enumerate(batches(4), start=1):
            with device.step(x):
                loss = mse(model, x)
                if torch.tensor(float(step)) < 3:  #@own-branch@
                    loss = loss * 2
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
    changes = [w.message for w in caught if getattr(w.message, "error_type", None) is GraphChangeError]
    assert len(changes) == 1 and changes[0].step == 3 and changes[0].library is None
    assert "The value read on the host decides a branch in Python: True at the captured step 1, False at step 3" in str(changes[0])
    assert device.report().violations == {"host sync": 4, "graph change": 2}  # steps 3 and 4
