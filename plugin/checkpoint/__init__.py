"""Checkpoint formats, detection, state-dict translation and safe IO; not built yet."""
