"""wse.callbacks.hf.LearningRateMonitor on a Hugging Face Trainer with a tiny model built from its config."""
import ast
import inspect
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")

from wse.callbacks.hf import LearningRateMonitor, add_to_trainer  # noqa: E402

STEPS, WARMUP, PEAK = 6, 2, 1e-3


class Tokens(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, index):
        ids = (torch.arange(8) + index) % 16
        return {"input_ids": ids, "labels": ids}


class RecordLogs(transformers.TrainerCallback):
    """Stands for a reporting integration: keeps every log it is shown."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


def _trainer(tmp_path, callbacks, **arguments):
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=16, n_positions=8)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    options = dict(
        output_dir=str(tmp_path), max_steps=STEPS, per_device_train_batch_size=4, learning_rate=PEAK,
        weight_decay=0.1, warmup_steps=WARMUP, lr_scheduler_type="linear", logging_steps=2, report_to=[],
        use_cpu=True, save_strategy="no", disable_tqdm=True,
    )
    options.update(arguments)
    return transformers.Trainer(model=model, args=transformers.TrainingArguments(**options), train_dataset=Tokens(),
                                callbacks=callbacks)


def linear_with_warmup(step):
    """Hugging Face's linear schedule: the value at scheduler step ``step`` (0-based)."""
    return PEAK * step / WARMUP if step < WARMUP else PEAK * (STEPS - step) / (STEPS - WARMUP)


def test_every_group_is_logged_with_the_values_used_in_the_logged_step(tmp_path):
    trainer = _trainer(tmp_path, [LearningRateMonitor(log_momentum=True)])
    trainer.train()
    training_logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in training_logs] == [2, 4, 6]
    for entry in training_logs:
        # Global step k (1-based) is scheduler step k - 1.
        expected = linear_with_warmup(entry["step"] - 1)
        assert entry["lr-AdamW/pg1"] == pytest.approx(expected, rel=1e-12)
        assert entry["lr-AdamW/pg2"] == pytest.approx(expected, rel=1e-12)
        assert entry["learning_rate"] == pytest.approx(expected, rel=1e-12)  # the Trainer's own, first group only
        assert (entry["lr-AdamW/pg1-weight_decay"], entry["lr-AdamW/pg2-weight_decay"]) == (0.1, 0.0)
        assert entry["lr-AdamW/pg1-momentum"] == 0.9
    summary = trainer.state.log_history[-1]
    assert "train_runtime" in summary and not any(key.startswith("lr-") for key in summary)


def test_added_first_the_integrations_see_the_series(tmp_path):
    integration = RecordLogs()
    trainer = _trainer(tmp_path, [integration], max_steps=2, warmup_steps=0)
    monitor = add_to_trainer(trainer)
    assert trainer.callback_handler.callbacks[0] is monitor
    trainer.train()
    (log, _summary) = integration.logs
    # Logged at step 2 of 2, linear decay without warmup: scheduler step 1 is half the peak.
    assert log["lr-AdamW/pg1"] == log["learning_rate"] == pytest.approx(PEAK / 2)
    assert log["lr-AdamW/pg2-weight_decay"] == 0.0


def _imported_roots(module):
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_wse_callbacks_never_imports_transformers_itself():
    """Only ``wse.callbacks.hf`` imports transformers: no other wse module that ``wse.callbacks`` loads does.

    (Lightning's own dependency torchmetrics imports transformers when it is installed; that is
    Lightning's choice, checked here is that wse adds no such import.)
    """
    import wse.callbacks  # noqa: F401

    modules = [m for name, m in sorted(sys.modules.items()) if name.startswith("wse") and name != "wse.callbacks.hf"]
    assert "wse.callbacks.lr_monitor" in {m.__name__ for m in modules}
    offenders = [m.__name__ for m in modules if getattr(m, "__file__", None) and "transformers" in set(_imported_roots(m))]
    assert offenders == []


def test_evaluation_logs_get_nothing():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    monitor, state, control = LearningRateMonitor(), transformers.TrainerState(), transformers.TrainerControl()
    monitor.on_train_begin(None, state, control, optimizer=optimizer)
    monitor.on_step_begin(None, state, control)
    state.global_step = 1
    evaluation = {"eval_loss": 1.0}
    monitor.on_log(None, state, control, logs=evaluation)
    assert evaluation == {"eval_loss": 1.0}
    training = {"loss": 2.0, "learning_rate": 0.5}
    monitor.on_log(None, state, control, logs=training)
    assert training == {"loss": 2.0, "learning_rate": 0.5, "lr-SGD": 0.5, "lr-SGD-weight_decay": 0.0}


def test_no_optimizer_at_train_begin_is_a_clear_error():
    with pytest.raises(ValueError, match="found no optimizer"):
        LearningRateMonitor().on_train_begin(None, transformers.TrainerState(), transformers.TrainerControl())
