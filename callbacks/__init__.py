"""Lightning callbacks (LR/WD monitor, WSD checkpoint decay, state-dict translation); not built yet."""
