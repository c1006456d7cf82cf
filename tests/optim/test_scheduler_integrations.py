"""The schedulers are accepted wherever torch's LRScheduler is: Lightning and Accelerate."""
import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers.logger import Logger

from wse.optim.lr_scheduler import CosineDecayLR


class MetricsCapture(Logger):
    """A logger that keeps every logged metric in memory."""

    def __init__(self):
        super().__init__()
        self.metrics = []

    @property
    def name(self):
        return "capture"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        """Hyperparameters are not under test; only metrics are kept."""

    def log_metrics(self, metrics, step=None):
        self.metrics.append((step, dict(metrics)))


class Regression(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
        scheduler = CosineDecayLR(optimizer, initial_learning_rate=0.1, end_learning_rate=0.0, total_iters=10)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def loader():
    data = torch.utils.data.TensorDataset(torch.randn(24, 4), torch.randn(24, 1))
    return torch.utils.data.DataLoader(data, batch_size=2)


def cosine(step):
    return 0.05 * (1 + math.cos(math.pi * min(step, 10) / 10))


def pytest_approx(value):
    return pytest.approx(value, rel=1e-12, abs=1e-15)


def test_lightning_configure_optimizers_and_learning_rate_monitor(tmp_path):
    logger = MetricsCapture()
    trainer = pl.Trainer(
        max_steps=12,
        logger=logger,
        log_every_n_steps=1,
        callbacks=[LearningRateMonitor(logging_interval="step")],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Regression(), loader())
    logged = [metrics["lr-SGD"] for _, metrics in logger.metrics if "lr-SGD" in metrics]
    assert len(logged) == 12
    assert logged == [pytest_approx(cosine(step)) for step in range(12)]


def test_accelerate_prepare_accepts_the_scheduler():
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = CosineDecayLR(optimizer, 0.1, 0.0, total_iters=10)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    seen = []
    for step in range(12):
        seen.append(optimizer.param_groups[0]["lr"])
        loss = model(torch.randn(2, 4)).sum()
        accelerator.backward(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    assert seen == [pytest_approx(cosine(step)) for step in range(12)]
    assert scheduler.get_last_lr() == [pytest_approx(cosine(12))]
