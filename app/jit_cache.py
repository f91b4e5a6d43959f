"""Loading cached JIT forms by path: a backport of FFCx pull request #887 (fixes issue #886).

Why it exists: FFCx 0.11 (``ffcx.codegeneration.jit.get_cached_module``) finds the compiled
module of a cached form with an importlib ``FileFinder`` over the whole cache folder and clears
that finder's cache first, so every cache hit lists the folder. FFCx keeps every form ever
compiled in that one flat folder (four files each), so the cost grows without bound: 46 ms per
form at 54,000 entries, about a quarter of a battery discharge's whole process on a machine that
had run the test suite many times. The file name of a compiled module is fixed by its module
name (``{module_name}{suffix}`` for the interpreter's extension suffixes), so probing those few
paths and loading with ``importlib.util.spec_from_file_location`` finds it in O(1) ``stat``
calls. FFCx's handshake between processes is kept: the exclusive creation of the ``.c`` file
claims a compile, and a waiter polls once a second for the ``.c.cached`` file that marks it
finished (each poll probes afresh, so a module that another process compiles meanwhile is
found), for ``timeout`` seconds and, beyond that, while the claim is younger than
:data:`RUNNING_COMPILE_AGE` (DOLFINx's 10 s failed a run whose large 3D form another process
was compiling on a loaded machine). ``_load_objects``, which loads a form just compiled, scans
the folder the same way (removed upstream by #890) and is replaced alike.

A compile killed before it finished leaves its ``.c`` file without ``.c.cached``, and every
later run waits for it (``timeout`` seconds once the claim is old) and fails. That file is not
removed here: nothing tells an interrupted compile from one still running in another process,
possibly under another FFCx or on another host sharing the folder. The timeout's message names
the file to delete.

`install` (called when `app` is imported) patches FFCx only while its ``get_cached_module``
still refers to ``FileFinder``: a release carrying #887 is left alone. Delete this module once
the oldest FFCx ScaleBridge supports includes #887 (merged September 2026, after FFCx 0.11.0).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

from app.errors import ScaleBridgeError

JIT_MODULE = "ffcx.codegeneration.jit"

#: A claim on a compile younger than this (seconds since its ``.c`` file was last written) is
#: waited for beyond the JIT ``timeout``; an older one is taken for a compile that was killed.
RUNNING_COMPILE_AGE = 120.0
#: How DOLFINx's JIT fails on more than one rank: rank 0 compiles and broadcasts the outcome, so
#: every rank raises together, rank 0 with its reason (``dolfinx.jit.mpi_jit_decorator``).
DOLFINX_JIT_FAILED = ("Failed JIT compilation of form: ", "JIT compilation failed on rank 0.")


class UnfinishedCompile(ScaleBridgeError, TimeoutError):
    """A compile another process claimed never finished (its ``.c`` file names it): the user
    deletes the file, as for an output folder that cannot take the run (exit code 2)."""

    exit_code = 2


def parallel_jit_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is DOLFINx's JIT failure, which every rank of the form raises together."""
    return isinstance(exc, RuntimeError) and str(exc).startswith(DOLFINX_JIT_FAILED)


def unfinished_compile_in(exc: BaseException) -> str | None:
    """The message of an :class:`UnfinishedCompile` that DOLFINx wrapped on rank 0, or None."""
    reason = str(exc).removeprefix(DOLFINX_JIT_FAILED[0])
    return reason if reason.startswith(UNFINISHED_PREFIX) else None


def compiled_module_path(cache_dir: Path, module_name: str) -> Path | None:
    """The compiled extension of ``module_name`` in ``cache_dir``, in the order of the suffixes
    Python would try (as ``FileFinder`` does), or None when it is not there."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = cache_dir / f"{module_name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _load_by_path(cache_dir, module_name, object_names) -> tuple[list, ModuleType]:
    path = compiled_module_path(Path(cache_dir), module_name)
    if path is None:
        raise ModuleNotFoundError(f"Unable to find JIT module {module_name} in {cache_dir}.")
    loader = importlib.machinery.ExtensionFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return [getattr(module.lib, name) for name in object_names], module


UNFINISHED_PREFIX = "JIT compilation timed out after"


def _unfinished_compile_message(c_file: Path, timeout: int) -> str:
    try:
        state = c_file.stat()
        age = time.time() - state.st_mtime
        found = f"{c_file} ({state.st_size} bytes, last written {age:.0f} s ago)"
    except FileNotFoundError:  # removed while we waited
        found = f"{c_file} (now gone)"
    return (
        f"{UNFINISHED_PREFIX} {timeout} s: {found} marks a compile that has not "
        f"finished ({c_file.name}.cached is missing). A compile that was killed leaves this file "
        "behind and every later run waits for it. If no other process is compiling forms into "
        f"{c_file.parent}, delete {c_file} and run again; for very large forms raise the JIT "
        "'timeout' option instead."
    )


def get_cached_module(module_name, object_names, cache_dir, timeout):
    """FFCx's ``get_cached_module`` (same arguments and results), locating the module by path.

    Returns (None, None) after claiming the compile (this process must compile the module), or
    the compiled objects and their module once the process that claimed it has finished.
    """
    cache_dir = Path(cache_dir)
    c_file = cache_dir / f"{module_name}.c"
    ready_file = cache_dir / f"{module_name}.c.cached"
    cache_dir.mkdir(exist_ok=True, parents=True)
    try:
        with open(c_file, "x"):
            pass
        return None, None
    except FileExistsError:
        pass
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if time.monotonic() >= deadline and not _claimed_recently(c_file):
            raise UnfinishedCompile(_unfinished_compile_message(c_file, timeout))
        time.sleep(1)
    return _load_by_path(cache_dir, module_name, object_names)


def _claimed_recently(c_file: Path) -> bool:
    """Whether the claim on a compile is young enough to be running still (its ``.c`` file is
    written when the compile starts)."""
    try:
        return time.time() - c_file.stat().st_mtime < RUNNING_COMPILE_AGE
    except FileNotFoundError:  # the claim was given up
        return False


def scans_cache_folder(function) -> bool:
    """Whether an FFCx JIT function locates modules with a ``FileFinder`` (the pre-#887 code)."""
    code = getattr(function, "__code__", None)
    return code is not None and "FileFinder" in code.co_names


def patch(jit: ModuleType) -> None:
    """Replace the folder-scanning look-ups of an imported ``ffcx.codegeneration.jit``."""
    for name, replacement in (
        ("get_cached_module", get_cached_module),
        ("_load_objects", _load_by_path),  # a module just compiled
    ):
        original = getattr(jit, name, None)
        if original is not None and scans_cache_folder(original):
            setattr(jit, name, replacement)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches FFCx's JIT module as soon as it is imported, so that importing `app` stays light
    (the JIT module pulls in UFL, NumPy and CFFI) while no form is ever loaded unpatched."""

    def find_spec(self, fullname, path, target=None):
        if fullname != JIT_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        patch(module)

    def __getattr__(self, name: str):  # get_source, is_package, ... of the wrapped loader
        return getattr(self.loader, name)


def install() -> None:
    """Patch FFCx's JIT module now if it is imported, else when it is (once per process)."""
    if JIT_MODULE in sys.modules:
        patch(sys.modules[JIT_MODULE])
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
