"""Every way a step value reaches Python is a host read, reported at the line that does it."""
import math
import warnings

import numpy as np
import pytest
import torch

from wse.device import Device, HostSyncError, StaticGraphWarning

from .helpers import batches, line_of


def at(marker: str) -> int:
    return line_of(__file__, "#@" + marker + "@")


# Each reads `y` (the model's output, f32[8, 2]) or `s` (its sum, f32[]) on the host.
READS = {
    # conversions to a Python number: all end in aten._local_scalar_dense
    "item": lambda y, s: s.item(),  #@item@
    "float": lambda y, s: float(s),  #@float@
    "int": lambda y, s: int(s),  #@int@
    "complex": lambda y, s: complex(s),  #@complex@
    "bool": lambda y, s: bool(s),  #@bool@
    "if-comparison": lambda y, s: 1 if s > 0 else 0,  #@if-comparison@
    "and": lambda y, s: (s > 0) and 1,  #@and@
    "in": lambda y, s: s in [1.0, 2.0],  #@in@
    "index": lambda y, s: [1, 2, 3][(s * 0).long()],  #@index@
    "range": lambda y, s: range((s * 0 + 2).long()),  #@range@
    "size": lambda y, s: torch.zeros((s * 0 + 2).long()),  #@size@
    "number-argument": lambda y, s: torch.full((2,), s.detach()),  #@number-argument@
    "math": lambda y, s: math.isfinite(s),  #@math@
    "numpy-scalar": lambda y, s: np.float64(s.detach()),  #@numpy-scalar@
    "sorted": lambda y, s: sorted([s, s * 2]),  #@sorted@
    "max": lambda y, s: max(s, s * 2),  #@max@
    "equal": lambda y, s: torch.equal(y, y),  #@equal@
    "allclose": lambda y, s: torch.allclose(y, y),  #@allclose@
    "format-scalar": lambda y, s: f"{s:.3f}",  #@format-scalar@
    # reads of host memory around the dispatcher
    "format-tensor": lambda y, s: f"{y}",  #@format-tensor@
    "print": lambda y, s: str(y),  #@print@
    "repr": lambda y, s: repr(s),  #@repr@
    "tolist": lambda y, s: y.tolist(),  #@tolist@
    "numpy": lambda y, s: y.detach().numpy(),  #@numpy@
    "asarray": lambda y, s: np.asarray(y.detach()),  #@asarray@
    "numpy-list": lambda y, s: np.array([s.detach(), s.detach()]),  #@numpy-list@
    "dlpack": lambda y, s: np.from_dlpack(y.detach()),  #@dlpack@
    "cpu": lambda y, s: y.cpu(),  #@cpu@
    # lists of step tensors given to a constructor
    "tensor-list": lambda y, s: torch.tensor([s, s * 2]),  #@tensor-list@
    "tensor-nested": lambda y, s: torch.tensor([[s.detach()], [s.detach()]]),  #@tensor-nested@
    "as_tensor-list": lambda y, s: torch.as_tensor([s]),  #@as_tensor-list@
    "asarray-list": lambda y, s: torch.asarray([s]),  #@asarray-list@
    "new_tensor-list": lambda y, s: y.new_tensor([s, s]),  #@new_tensor-list@
    "legacy-constructor": lambda y, s: torch.Tensor([s.detach()]),  #@legacy-constructor@
    # shapes that depend on values: len() and iteration read them
    "len-of-nonzero": lambda y, s: len(torch.nonzero(y > 0)),  #@len-of-nonzero@
    "iterate-masked": lambda y, s: [row for row in y[y > 0]],  #@iterate-masked@
}

# The same values kept as tensors: nothing is read.
NOT_READS = {
    "stack": lambda y, s: torch.stack([s, s * 2]),
    "tensor-of-numbers": lambda y, s: torch.tensor([1.0, 2.0]),
    "tensor-of-a-tensor": lambda y, s: torch.tensor(s.detach()),
    "as_tensor-of-a-tensor": lambda y, s: torch.as_tensor(s),
    "len": lambda y, s: len(y),
    "iterate": lambda y, s: [row for row in y],
    "shape": lambda y, s: y.shape[0] + y.size(1),
    "where": lambda y, s: torch.where(s > 0, y, -y),
    "tensor-bound": lambda y, s: y.clamp(max=s.detach()),
}


def run_steps(read, steps: int = 2, **options) -> Device:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    device = Device(model, optimizer, **options)
    for x in batches(steps):
        with device.step(x):
            y = model(x)
            read(y, y.sum())
            y.pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    return device


@pytest.mark.parametrize("name", list(READS))
def test_every_path_to_python_is_a_host_sync_error_at_the_reading_line(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own warnings on some of the conversions
        with pytest.raises(HostSyncError) as caught:
            run_steps(READS[name])
    error = caught.value
    assert error.step == 1
    assert (error.location.filename, error.location.lineno) == (__file__, at(name)), str(error)
    assert error.library is None
    assert f"at {__file__}:{at(name)}" in str(error)


@pytest.mark.parametrize("name", list(NOT_READS))
def test_the_same_values_kept_as_tensors_are_not_host_reads(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.tensor(tensor) advises .clone()
        device = run_steps(NOT_READS[name], steps=4)
    report = device.report()
    assert (report.steps_verified, report.violations) == (3, {})


def test_a_list_of_step_tensors_is_named_with_the_fix():
    with pytest.raises(HostSyncError) as caught:
        run_steps(READS["tensor-list"])
    message = str(caught.value)
    assert "torch.tensor() of a list holding step tensors" in message
    assert "torch.stack(...)" in message


def test_under_warn_each_read_is_counted_and_warned_once():
    def many_reads(y, s):
        float(s)
        torch.tensor([s])
        y.tolist()

    with pytest.warns(StaticGraphWarning) as caught:
        device = run_steps(many_reads, steps=3, check="warn")
    host = [w for w in caught if isinstance(w.message, StaticGraphWarning)]
    assert len(host) == 1 and host[0].message.kind == "host sync"
    # three reads in each of the 3 checked steps; the device counts every one
    assert device.report().violations == {"host sync": 9}
