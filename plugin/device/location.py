"""Where a violation happened: the innermost frame of the user's own code.

A violation is found deep inside torch (an aten operation, an optimizer hook), but the
line worth naming is the user's: the innermost frame whose file lies outside torch,
Lightning, Accelerate, torchmetrics and wse itself, and outside the Python standard
library (``copy``, ``contextlib``, ``functools`` only carry calls through). Other
installed packages count as the user's code: a model from a model library is named
where it runs.
"""
from __future__ import annotations

import importlib.util
import linecache
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, Optional, Tuple

# Packages whose frames are never the user's line.
_LIBRARY_PACKAGES = (
    "torch",
    "lightning",
    "pytorch_lightning",
    "lightning_fabric",
    "lightning_utilities",
    "torchmetrics",
    "accelerate",
)
# Code generated at run time by the libraries (torch.fx graphs), not written by the user.
_GENERATED_PREFIXES = ("<frozen", "<eval_with_key")
# Methods that dataclasses and namedtuple generate from source strings ("<string>"): they
# carry calls through (a dataclass's __init__ runs __post_init__) and are nobody's line.
# Other "<string>" code (``python -c``) stays the user's.
_GENERATED_FILE = "<string>"


def _is_generated_method(code) -> bool:
    name = code.co_name
    return code.co_filename == _GENERATED_FILE and len(name) > 4 and name.startswith("__") and name.endswith("__")


@dataclass(frozen=True)
class Location:
    """A line of the user's code."""

    filename: str
    lineno: int
    function: str

    @property
    def code(self) -> str:
        """The source text of the line, stripped ('' if the file cannot be read)."""
        return linecache.getline(self.filename, self.lineno).strip()

    def __str__(self) -> str:
        code = self.code
        where = f"{self.filename}:{self.lineno} in {self.function}"
        return f"{where}: {code}" if code else where


def _search_paths(module_name: str) -> Tuple[str, ...]:
    """The directory of a package, or the file of a module, without importing it."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return ()
    if spec is None:
        return ()
    if spec.submodule_search_locations:
        return tuple(os.path.realpath(path) + os.sep for path in spec.submodule_search_locations)
    if spec.origin and os.path.isfile(spec.origin):
        return (os.path.realpath(spec.origin),)
    return ()


def module_paths(module_names: Iterable[str]) -> Tuple[str, ...]:
    """Path prefixes of the given modules or packages (the ones that are installed)."""
    paths: Tuple[str, ...] = ()
    for name in module_names:
        paths += _search_paths(name)
    return paths


def _library_prefixes() -> Tuple[str, ...]:
    wse_root = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep
    prefixes = module_paths(_LIBRARY_PACKAGES) + (wse_root,) + module_paths([__package__.split(".")[0] + ".callbacks"])
    return prefixes


def _stdlib_root() -> str:
    return os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep


_INSTALLED = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


class _Classifier:
    """Decides, once per file, whether a frame belongs to a library or to the user."""

    def __init__(self):
        self._prefixes: Optional[Tuple[str, ...]] = None
        self._stdlib = _stdlib_root()
        self._is_library: Dict[str, bool] = {}
        self._real: Dict[str, str] = {}

    def realpath(self, filename: str) -> str:
        real = self._real.get(filename)
        if real is None:
            real = filename if filename.startswith("<") else os.path.realpath(filename)
            self._real[filename] = real
        return real

    def is_library(self, filename: str) -> bool:
        known = self._is_library.get(filename)
        if known is not None:
            return known
        if self._prefixes is None:
            self._prefixes = _library_prefixes()
        if filename.startswith(_GENERATED_PREFIXES):
            verdict = True
        else:
            path = self.realpath(filename)
            verdict = path.startswith(self._prefixes) or (
                path.startswith(self._stdlib) and not any(part in path for part in _INSTALLED)
            )
        self._is_library[filename] = verdict
        return verdict


_CLASSIFIER = _Classifier()


def is_library_file(filename: str) -> bool:
    """Whether ``filename`` belongs to torch, Lightning, Accelerate, torchmetrics, wse or the standard library."""
    return _CLASSIFIER.is_library(filename)


def realpath(filename: str) -> str:
    """The real path of a code object's file (cached; generated code keeps its ``<...>`` name)."""
    return _CLASSIFIER.realpath(filename)


def is_user_code(code) -> bool:
    """Whether a code object is the user's (not a library's, not generated)."""
    return not _CLASSIFIER.is_library(code.co_filename) and not _is_generated_method(code)


def user_location(frame=None) -> Optional[Location]:
    """The innermost user frame, starting at ``frame`` (default: the caller's caller).

    None when no frame of the stack is the user's (e.g. on an autograd worker thread).
    """
    if frame is None:
        frame = sys._getframe(1)
    is_library = _CLASSIFIER.is_library
    while frame is not None:
        code = frame.f_code
        if not is_library(code.co_filename) and not _is_generated_method(code):
            return Location(code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return None


@dataclass(frozen=True)
class CodeScope:
    """Some code, by whole modules or packages (path prefixes) and by single functions.

    A function is ``(file, qualified name)``: naming ``LightningModule.log`` rather than
    the module that defines it leaves the other methods of that module (its
    ``optimizer_step``, its ``backward``) outside the scope.
    """

    prefixes: Tuple[str, ...] = ()
    functions: FrozenSet[Tuple[str, str]] = frozenset()
    # What ``called_through`` concluded for each code object it met: checked steps walk
    # the same (deep, under a framework) stacks for every operation.
    _verdicts: Dict[object, int] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.prefixes or self.functions)

    def __add__(self, other: "CodeScope") -> "CodeScope":
        return CodeScope(self.prefixes + other.prefixes, self.functions | other.functions)

    def holds(self, path: str, code) -> bool:
        """Whether the code object ``code``, from the file ``path`` (real path), is in the scope."""
        if path.startswith(self.prefixes):
            return True
        return bool(self.functions) and (path, _qualified_name(code)) in self.functions


def _qualified_name(code) -> str:
    # Python 3.10 has no co_qualname: a method is then known by its bare name.
    return getattr(code, "co_qualname", code.co_name)


def code_scope(names: Iterable[str]) -> Tuple[CodeScope, Tuple[str, ...]]:
    """The scope of ``names`` (``"package.module"`` or ``"package.module:Class.function"``).

    Returns the scope and the names that could not be found (modules not installed). A
    function's module is located, not imported, so its name is taken on trust.
    """
    prefixes: Tuple[str, ...] = ()
    functions = set()
    missing = []
    for name in names:
        module, _, function = name.partition(":")
        paths = _search_paths(module)
        if not paths:
            missing.append(name)
        elif not function:
            prefixes += paths
        else:
            if sys.version_info < (3, 11):
                function = function.rsplit(".", 1)[-1]
            functions.add((_module_file(module), function))
    return CodeScope(prefixes, frozenset(functions)), tuple(missing)


def _module_file(module_name: str) -> str:
    """The file that defines a module (a package's ``__init__.py``), as a real path."""
    return os.path.realpath(importlib.util.find_spec(module_name).origin)


def called_through(scope: CodeScope, frame=None) -> bool:
    """Whether a frame of ``scope`` lies between ``frame`` and the user's code.

    Used to let a library do what it is entitled to (torch.optim reads its host-side
    step counter) while the same call written by the user is a violation.
    """
    if not scope:
        return False
    if frame is None:
        frame = sys._getframe(1)
    verdicts = scope._verdicts
    while frame is not None:
        code = frame.f_code
        verdict = verdicts.get(code)
        if verdict is None:
            verdict = verdicts[code] = _verdict(scope, code)
        if verdict is not _PASS:
            return verdict is _IN_SCOPE
        frame = frame.f_back
    return False


# What a frame's code means to ``called_through``.
_IN_SCOPE, _USER, _PASS = 0, 1, 2


def _verdict(scope: CodeScope, code) -> int:
    filename = code.co_filename
    if scope.holds(_CLASSIFIER.realpath(filename), code):
        return _IN_SCOPE
    if not _CLASSIFIER.is_library(filename) and not _is_generated_method(code):
        return _USER
    return _PASS
