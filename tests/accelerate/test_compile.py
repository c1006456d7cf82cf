"""compile=True: the verified steps run the compiled forward and update, with the eager numbers."""
import pytest
import torch
from accelerate import Accelerator

import wse.accelerate

from .helpers import LR0, LR1, TOTAL, adamw_with_schedules, cosine, loader, model, value


def train(**options):
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    net = model()
    optimizer, lr, wd = adamw_with_schedules(net)
    net, optimizer, data, lr, wd = wse.accelerate.prepare(accelerator, net, optimizer, loader(), lr, wd, **options)
    lrs = []
    for _ in range(2):
        for x, y in data:
            with accelerator.accumulate(net):
                accelerator.backward(torch.nn.functional.mse_loss(net(x), y))
                optimizer.step()
                lr.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                lrs.append(value(optimizer.param_groups[0]["lr"]))
    return net, lrs, wse.accelerate.state(accelerator).device.report()


@pytest.mark.slow
def test_compiled_steps_follow_the_eager_run_and_compile_once():
    eager, eager_lrs, _ = train(check="off")
    compiled, lrs, report = train(compile=True, compile_backend="aot_eager")
    assert report.execution == "compiled" and report.steps == 12 and report.steps_verified == 3
    assert report.compiled_graphs and report.recompilations == 0
    assert lrs == pytest.approx([cosine(LR0, LR1, TOTAL, k) for k in range(1, 13)], rel=1e-12)
    for p, q in zip(compiled.parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # outside a step the model runs eagerly (evaluation)
        compiled.eval()
        assert compiled(torch.zeros(2, 6)).shape == (2, 1)
