"""`import wse` registers strategy "wse" without importing Lightning itself."""
import subprocess
import sys

import pytest

SCRIPTS = {
    "wse first": "import wse, sys\nassert 'lightning' not in sys.modules\nimport lightning\n",
    "lightning first": "import lightning.pytorch\nimport wse\n",
    "from-import after wse": "import wse\nfrom lightning.pytorch import Trainer as _\nimport lightning\n",
    "wse.lightning imports lightning": "from wse.lightning import WSEStrategy as _\nimport lightning\n",
}


@pytest.mark.parametrize("order", sorted(SCRIPTS))
def test_trainer_finds_the_strategy_whatever_the_import_order(order):
    script = SCRIPTS[order] + (
        "trainer = lightning.pytorch.Trainer(strategy='wse', logger=False, enable_progress_bar=False)\n"
        "import wse\n"
        "assert type(trainer.strategy) is wse.WSEStrategy, type(trainer.strategy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_subpackages_are_attributes_of_wse_without_importing_lightning():
    script = (
        "import sys, wse\n"
        "assert wse.optim.AdamW.__name__ == 'AdamW'\n"
        "assert wse.schedules.CosineDecay(1.0, 0.0, 10)(5) == 0.5\n"
        "assert wse.compat.megatron.OptimizerParamScheduler\n"
        "assert 'lightning' not in sys.modules, 'lightning was imported'\n"
        "try:\n"
        "    wse.no_such_thing\n"
        "except AttributeError as error:\n"
        "    assert 'no_such_thing' in str(error)\n"
        "else:\n"
        "    raise AssertionError('wse.no_such_thing did not raise')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
