"""A logger that keeps what it is given, and modules for the LearningRateMonitor tests."""
import lightning as L
import torch
from lightning.pytorch.loggers import Logger

QUIET = dict(
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    enable_model_summary=False,
    enable_checkpointing=False,
    log_every_n_steps=1,
)


class RecordingLogger(Logger):
    """Keeps every ``log_metrics`` call as ``(step, metrics)``."""

    def __init__(self):
        super().__init__()
        self.calls = []

    @property
    def name(self):
        return "recording"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.calls.append((step, dict(metrics)))

    def series(self, name):
        """``{step: value}`` of one series."""
        return {step: metrics[name] for step, metrics in self.calls if name in metrics}

    def names(self):
        return {name for _, metrics in self.calls for name in metrics}


def data(batches=6, batch_size=4):
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(batches * batch_size, 4, generator=generator), torch.randn(batches * batch_size, 2, generator=generator)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size)


class Module(L.LightningModule):
    """Two linear layers; ``configure(module)`` gives the optimizers; ``manual`` steps every optimizer itself."""

    def __init__(self, configure, manual=False):
        super().__init__()
        torch.manual_seed(0)
        self.first, self.second = torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)
        self._configure = configure
        self.automatic_optimization = not manual

    def forward(self, x):
        return self.second(torch.tanh(self.first(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        if self.automatic_optimization:
            return loss
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for optimizer in optimizers:
            optimizer.zero_grad()
        self.manual_backward(loss)
        for optimizer in optimizers:
            optimizer.step()
        schedulers = self.lr_schedulers()
        schedulers = [] if schedulers is None else schedulers if isinstance(schedulers, list) else [schedulers]
        for scheduler in schedulers:
            scheduler.step()

    def configure_optimizers(self):
        return self._configure(self)


def fit(configure, callbacks, manual=False, steps=4, **trainer_kwargs):
    logger = RecordingLogger()
    options = dict(QUIET, max_steps=steps, logger=logger, callbacks=callbacks)
    options.update(trainer_kwargs)
    trainer = L.Trainer(**options)
    trainer.fit(Module(configure, manual), data(batches=max(steps, 2)))
    return trainer, logger
