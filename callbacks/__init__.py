"""Lightning callbacks (LR/WD monitor, WSD checkpoint decay, state-dict translation); Hugging Face Trainer ones in ``wse.callbacks.hf``."""
from .lr_monitor import LearningRateMonitor
from .wsd_checkpoint import WSDCheckpointCallback
from .state_dict_translation import StateDictTranslation
