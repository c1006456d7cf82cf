"""A violation names the innermost line of user code, never a frame of torch or wse."""
import os

import torch

import wse
from wse.device.location import is_library_file, user_location


def test_library_files_are_told_from_user_files():
    assert is_library_file(torch.__file__)
    assert is_library_file(torch.nn.modules.module.__file__)
    assert is_library_file(wse.__file__)
    assert is_library_file(os.path.join(os.path.dirname(wse.__file__), "device", "device.py"))
    assert not is_library_file(__file__)


def test_the_user_line_is_found_through_torch_frames():
    class Probe(torch.nn.Module):
        def forward(self, x):
            self.where = user_location()  # called from inside torch's Module.__call__
            return x

    probe = Probe()
    probe(torch.zeros(1))
    assert probe.where.filename == __file__
    assert probe.where.code == "self.where = user_location()  # called from inside torch's Module.__call__"
    assert probe.where.function == "forward"
    assert str(probe.where).startswith(f"{__file__}:{probe.where.lineno} in forward: self.where")
