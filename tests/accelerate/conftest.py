"""Each test gets fresh Accelerate singletons (an Accelerator's state outlives the object)."""
import pytest


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield
    # A run left open by a test would print its closing line when pytest exits.
    from wse.accelerate.entry_point import _RUNS

    for run in list(_RUNS.values()):
        run.finished = True
        run.remove()
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
