"""Under ``Trainer(strategy="wse")`` every way a LightningModule reads a step value on the host is reported."""
import math
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.utilities import grad_norm

from wse.device import HostSyncError, StaticGraphWarning
from wse.lightning import WSEStrategy

from .helpers import QUIET, TinyModel, loader


def line_of(marker: str) -> int:
    with open(__file__) as handle:
        found = [number for number, line in enumerate(handle, 1) if line.rstrip().endswith("#@" + marker)]
    assert len(found) == 1, f"marker {marker!r} on lines {found}"
    return found[0]


def fit(module, strategy="wse", steps: int = 4):
    trainer = L.Trainer(strategy=strategy, **{**QUIET, "max_steps": steps})
    trainer.fit(module, loader(batches=steps, drop_last=True))
    return trainer


class GradNormRecipe(TinyModel):
    """Lightning's documented recipe: log the gradient norms before each optimizer step."""

    def on_before_optimizer_step(self, optimizer):
        norms = grad_norm(self.net, norm_type=2)  #@grad-norm
        self.log_dict(norms)


class GradNormInGraph(TinyModel):
    """The same norms, and their total, kept as tensors: the logger reads them after the step."""

    def on_before_optimizer_step(self, optimizer):
        norms = {f"grad_2.0_norm/{name}": p.grad.norm() for name, p in self.net.named_parameters()}
        norms["grad_2.0_norm_total"] = torch.linalg.vector_norm(torch.stack(list(norms.values())))
        self.log_dict(norms)


def test_lightnings_grad_norm_recipe_is_a_host_read_named_with_its_fix():
    with pytest.raises(HostSyncError) as caught:
        fit(GradNormRecipe())
    error = caught.value
    assert error.step == 1
    assert (error.location.filename, error.location.lineno) == (__file__, line_of("grad-norm"))
    assert error.library.library == "Lightning" and error.library.location.function == "grad_norm"
    message = str(error)
    assert "torch.tensor() of a list holding step tensors" in message
    assert "torch.linalg.vector_norm(torch.stack(norms))" in message


def test_the_norms_kept_as_tensors_pass_strict_checks_and_log_the_same_values():
    trainer = fit(GradNormInGraph())
    report = trainer.strategy.device.report()
    assert (report.steps_verified, report.violations) == (3, {})
    metrics = trainer.callback_metrics
    parts = [value for key, value in metrics.items() if key.startswith("grad_2.0_norm/")]
    assert len(parts) == 4  # two weights, two biases
    # the total norm of all gradients viewed as one vector, in closed form from the parts
    assert metrics["grad_2.0_norm_total"].item() == pytest.approx(math.sqrt(sum(p.item() ** 2 for p in parts)), rel=1e-6)


class ReadsInTrainingStep(TinyModel):
    """A training_step that reads its loss on the host in one of the ways Python offers."""

    def __init__(self, read):
        super().__init__()
        self.read = read

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.read(loss, self.net[0].weight)
        return loss


def list_of_losses(loss, weight):
    return torch.tensor([loss, loss * 2])  #@tensor-list


def as_tensor_of_a_loss(loss, weight):
    return torch.as_tensor([loss])  #@as-tensor


def formatted(loss, weight):
    return f"loss {loss:.4f}"  #@format


def branch(loss, weight):
    return 0.5 if loss > 1.0 else 1.0  #@branch


def as_index(loss, weight):
    return [1, 2, 3][(loss * 0).long()]  #@index


def to_numpy(loss, weight):
    return weight.detach().numpy()  #@numpy


def to_list(loss, weight):
    return weight.tolist()  #@tolist


def printed(loss, weight):
    return str(weight)  #@print


def masked_length(loss, weight):
    return len(weight[weight > 0])  #@mask


READS = {
    "tensor-list": list_of_losses,
    "as-tensor": as_tensor_of_a_loss,
    "format": formatted,
    "branch": branch,
    "index": as_index,
    "numpy": to_numpy,
    "tolist": to_list,
    "print": printed,
    "mask": masked_length,
}


@pytest.mark.parametrize("marker", list(READS))
def test_a_host_read_in_training_step_is_an_error_at_its_line(marker):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own advice on converting a tensor that requires grad
        with pytest.raises(HostSyncError) as caught:
            fit(ReadsInTrainingStep(READS[marker]))
    error = caught.value
    assert (error.location.filename, error.location.lineno) == (__file__, line_of(marker)), str(error)
    assert error.step == 1 and error.library is None


def test_under_check_warn_the_fit_goes_on_and_the_read_is_warned_once():
    with pytest.warns(StaticGraphWarning) as caught:
        trainer = fit(ReadsInTrainingStep(list_of_losses), WSEStrategy(check="warn"))
    warned = [w.message for w in caught if isinstance(w.message, StaticGraphWarning)]
    assert len(warned) == 1 and warned[0].error_type is HostSyncError
    assert (warned[0].location.filename, warned[0].location.lineno) == (__file__, line_of("tensor-list"))
    assert trainer.global_step == 4
    assert trainer.strategy.device.report().violations == {"host sync": 4}  # steps 1 to 4 are checked


def test_under_check_off_nothing_is_looked_for_and_the_device_says_so():
    trainer = fit(ReadsInTrainingStep(list_of_losses), WSEStrategy(check="off"))
    device = trainer.strategy.device
    assert trainer.global_step == 4 and device.report().violations == {}
    assert device.summary() == "wse device: 4 steps, checks off: nothing captured or verified"
    assert "violations: not looked for (check='off')" in device.report().format()
