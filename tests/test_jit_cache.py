"""Cached JIT forms are loaded by path (app/jit_cache.py, the backport of FFCx #887): a cache hit
does not list the cache folder, FFCx's wait for a compile of another process still works, and
an unfinished compile's leftover file is named in the timeout's message."""

import os
import posix
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import ffcx.codegeneration.jit as ffcx_jit
import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

from app import jit_cache
from tests.conftest import scalebridge


def _unpatched_get_cached_module():
    """FFCx's own function, re-read from its source file (the imported module is patched)."""
    namespace = {"__file__": ffcx_jit.__file__, "__name__": "ffcx_jit_unpatched"}
    source = Path(ffcx_jit.__file__).read_text()
    exec(compile(source, ffcx_jit.__file__, "exec"), namespace)
    return namespace["get_cached_module"]


def _form():
    domain = mesh.create_unit_interval(MPI.COMM_SELF, 4)
    space = fem.functionspace(domain, ("Lagrange", 1))
    # a coefficient value no other test uses, so this form is compiled into the fresh folder
    trial, test = ufl.TrialFunction(space), ufl.TestFunction(space)
    return 7.123456 * ufl.inner(ufl.grad(trial), ufl.grad(test)) * ufl.dx


def _compiled(cache_dir) -> tuple[str, list[str]]:
    """Compile the test form into ``cache_dir``: its module name and form object names."""
    form = fem.form(_form(), jit_options={"cache_dir": str(cache_dir)})
    assert form is not None
    (library,) = [p for p in cache_dir.iterdir() if p.name.endswith(".c.cached")]
    module_name = library.name.removesuffix(".c.cached")
    _, module = jit_cache._load_by_path(cache_dir, module_name, [])
    names = [name for name in dir(module.lib) if name.startswith("form_")]
    return module_name, names


@pytest.fixture
def crowded_cache(tmp_path):
    """A cache folder with the test form compiled among 3,000 other entries."""
    cache = tmp_path / "cache"
    cache.mkdir()
    module_name, names = _compiled(cache)
    for i in range(3000):
        (cache / f"libffcx_forms_{i:040x}.c").touch()
    return cache, module_name, names


def _folder_listings(monkeypatch, folder) -> list:
    """Record every listing of ``folder`` (importlib's FileFinder calls posix.listdir)."""
    listed = []
    for module in {os, posix}:
        for name in ("listdir", "scandir"):
            original = getattr(module, name)

            def counting(path=".", _original=original):
                if os.fspath(path) == os.fspath(folder):
                    listed.append(path)
                return _original(path)

            monkeypatch.setattr(module, name, counting)
    return listed


def test_ffcx_is_patched_while_it_scans_the_folder():
    assert jit_cache.scans_cache_folder(_unpatched_get_cached_module())
    assert ffcx_jit.get_cached_module is jit_cache.get_cached_module
    assert not jit_cache.scans_cache_folder(ffcx_jit.get_cached_module)


@pytest.mark.parametrize("order", ["app first", "ffcx first"])
def test_patched_whichever_is_imported_first(order):
    imports = ["import app", "import ffcx.codegeneration.jit as jit"]
    if order == "ffcx first":
        imports.reverse()
    script = "; ".join(
        [
            *imports,
            "import app.jit_cache as c",
            "print(jit.get_cached_module is "
            "c.get_cached_module, jit._load_objects is c._load_by_path)",
        ]
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_cache_hit_loads_without_listing_the_folder(crowded_cache, monkeypatch):
    cache, module_name, names = crowded_cache
    listed = _folder_listings(monkeypatch, cache)
    objects, module = _unpatched_get_cached_module()(module_name, names, cache, 10)
    assert objects and listed, "the counter sees FFCx's own look-up list the folder"
    listed.clear()
    objects, module = jit_cache.get_cached_module(module_name, names, cache, 10)
    assert len(objects) == len(names) and module.__file__.startswith(str(cache))
    assert listed == []
    # and through DOLFINx: the form assembles as before
    matrix = fem.assemble_matrix(fem.form(_form(), jit_options={"cache_dir": str(cache)}))
    assert listed == []
    assert np.isclose(matrix.to_scipy().sum(), 0.0)  # a stiffness matrix annihilates constants


def test_waits_for_a_compile_of_another_process(crowded_cache, tmp_path):
    source, module_name, names = crowded_cache
    cache = tmp_path / "other"
    cache.mkdir()
    (cache / f"{module_name}.c").touch()  # another process has claimed the compile

    def finish_compile():
        time.sleep(1.5)
        for path in source.glob(f"{module_name}.*"):
            if not path.name.endswith(".cached"):
                shutil.copy(path, cache / path.name)
        shutil.copy(source / f"{module_name}.c.cached", cache / f"{module_name}.c.cached")

    other = threading.Thread(target=finish_compile)
    start = time.perf_counter()
    other.start()
    objects, _ = jit_cache.get_cached_module(module_name, names, cache, 10)
    other.join()
    assert time.perf_counter() - start >= 1.5
    assert len(objects) == len(names)


def test_claims_an_uncompiled_module(tmp_path):
    assert jit_cache.get_cached_module("libffcx_forms_new", ["form_x"], tmp_path, 10) == (
        None,
        None,
    )
    assert (tmp_path / "libffcx_forms_new.c").exists()


def test_a_compile_running_longer_than_the_timeout_is_waited_for(crowded_cache, tmp_path):
    """A claim younger than RUNNING_COMPILE_AGE is a compile still running (a large form on a
    loaded machine): waited for past the JIT timeout of 1 s, not failed."""
    source, module_name, names = crowded_cache
    cache = tmp_path / "slow"
    cache.mkdir()
    (cache / f"{module_name}.c").touch()

    def finish_compile():
        time.sleep(2.5)
        for path in source.glob(f"{module_name}.*"):
            shutil.copy(path, cache / path.name)

    other = threading.Thread(target=finish_compile)
    other.start()
    objects, _ = jit_cache.get_cached_module(module_name, names, cache, 1)
    other.join()
    assert len(objects) == len(names)


def test_unfinished_compile_names_the_file_to_delete(tmp_path):
    leftover = tmp_path / "libffcx_forms_killed.c"
    leftover.touch()  # claimed by a compile that was killed: no .c.cached will ever come
    old = time.time() - jit_cache.RUNNING_COMPILE_AGE - 1
    os.utime(leftover, (old, old))
    with pytest.raises(TimeoutError) as raised:
        jit_cache.get_cached_module("libffcx_forms_killed", ["form_x"], tmp_path, 1)
    message = str(raised.value)
    assert f"delete {leftover} and run again" in message
    assert "0 bytes" in message and "libffcx_forms_killed.c.cached is missing" in message


@pytest.mark.mpi
def test_a_killed_compile_is_named_on_two_ranks(tmp_path, monkeypatch):
    """Every form's claim left by killed compiles: on 2 ranks, rank 1's 'internal error ...
    JIT compilation failed on rank 0' was printed (and rank 1 aborted, exit 70) instead of
    rank 0's message naming the file to delete. Exit code 2 on 1 and 2 ranks, one line."""
    case = tmp_path / "rod.toml"
    case.write_text(
        '[mesh]\ntype = "interval"\ncells = [4]\n[physics.heat]\nconductivity = 1.0\n'
        'boundaries.left = { type = "temperature", value = 300 }\n'
    )
    (tmp_path / "dolfinx_jit_options.json").write_text('{"timeout": 1}')  # read from the cwd
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    compiled = scalebridge("run", case, "-o", tmp_path / "first", "-q", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    old = time.time() - jit_cache.RUNNING_COMPILE_AGE - 1
    for path in (tmp_path / "cache" / "fenics").iterdir():
        if path.suffix == ".c":
            os.utime(path, (old, old))
        else:  # the compiled modules and the marks of finished compiles
            path.unlink()
    for ranks in (2, 1):
        process = scalebridge("run", case, "-o", tmp_path / f"np{ranks}", "-q", ranks=ranks,
                              cwd=tmp_path, timeout=120)  # fmt: skip
        assert process.returncode == 2, process.stderr
        lines = process.stderr.splitlines()
        assert len(lines) == 1, process.stderr
        assert lines[0].startswith(f"scalebridge: error: {case}: JIT compilation timed out")
        assert "and run again" in lines[0]
