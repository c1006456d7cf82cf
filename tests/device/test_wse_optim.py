"""wse.optim optimizers on the device: state exists before step 1, and no host reads at all."""
import torch

from wse.optim import AdamW
from wse.optim.lr_scheduler import LinearLR

from .helpers import STEPS, Tiny, assert_same_training, batches


def wse_tiny(seed: int = 0) -> Tiny:
    tiny = Tiny(scheduler=None, seed=seed)
    tiny.optimizer = AdamW(tiny.model.parameters(), lr=1e-2, weight_decay=0.1)
    tiny.scheduler = LinearLR(tiny.optimizer, 1e-2, 1e-3, total_iters=100).enable_tensor_values()
    return tiny


def test_wse_adamw_passes_strict_checks_without_any_host_read_allowance():
    tiny = wse_tiny()
    device = tiny.device(allow_host_reads_in=(), verify_steps=5)
    for x in batches(8):
        with device.step(x):
            tiny.train_step(x)
    assert device.report().violations == {}


def test_the_first_step_is_the_graph_when_state_is_preinitialized():
    lazy, eager_state = Tiny(optimizer="adamw"), wse_tiny()
    graphs = {}
    for name, tiny in (("torch AdamW", lazy), ("wse AdamW", eager_state)):
        device = tiny.device()
        seen = []
        for x in batches(4):
            with device.step(x):
                tiny.train_step(x)
            seen.append(device.graph)
        graphs[name] = seen
    # torch.optim creates its state inside step 1: the optimizer's part is re-captured at step 2.
    assert graphs["torch AdamW"][1] is not graphs["torch AdamW"][0]
    assert graphs["torch AdamW"][3] is graphs["torch AdamW"][1]
    # wse.optim allocates it at construction: step 1 is the graph, as on the hardware.
    assert all(graph is graphs["wse AdamW"][0] for graph in graphs["wse AdamW"])


def test_wse_adamw_compiled_matches_eager():
    data = batches(STEPS)
    reference = wse_tiny()
    eager = [reference.train_step(x) for x in data]
    tiny = wse_tiny()
    device = tiny.device(compile=True, compile_backend="aot_eager")
    step = device.wrap(tiny.train_step)
    compiled = [step(x) for x in data]
    assert_same_training(reference, eager, tiny, compiled)
    assert torch.equal(tiny.optimizer.param_groups[0]["lr"], reference.optimizer.param_groups[0]["lr"])
