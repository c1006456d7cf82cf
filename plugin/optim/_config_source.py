"""Reading a scheduler config given as a Python value, YAML or JSON text, or a file path."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ._config_errors import SchedulerConfigError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


class _ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 safe loading, except that ``1e-3`` is a float.

    Plain YAML 1.1 reads an exponent without a decimal point (``1e-3``) as the string
    ``"1e-3"``, which would reach a scheduler as a string; learning rates are written
    that way so often that it is read as the number it is meant to be.
    """


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, origin: str) -> Any:
    """The value of YAML (or JSON) ``text``; ``origin`` names it in errors."""
    try:
        return yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as error:
        raise SchedulerConfigError(origin, f"is not valid YAML: {error}") from None


def read_config_file(path: os.PathLike) -> Any:
    """The config stored in a YAML or JSON file (JSON when the name ends in ``.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchedulerConfigError(str(path), "no such config file.") from None
    except OSError as error:
        raise SchedulerConfigError(str(path), f"cannot be read: {error.strerror or error}.") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise SchedulerConfigError(str(path), f"is not valid JSON: {error}.") from None
    return parse_yaml(text, str(path))


def load_config(config: Any) -> Any:
    """A config as plain Python data.

    A ``str`` is a path when such a file exists, else YAML text (JSON is YAML too); a
    ``pathlib.Path`` is always a path. A string that names a ``.yaml``/``.yml``/``.json``
    file that does not exist is reported as a missing file rather than read as YAML.
    Anything else is returned as it is.
    """
    if isinstance(config, os.PathLike):
        return read_config_file(config)
    if not isinstance(config, str):
        return config
    looks_like_path = "\n" not in config and config.strip().lower().endswith(CONFIG_SUFFIXES)
    if looks_like_path or os.path.isfile(config):
        return read_config_file(config)
    return parse_yaml(config, "config")
