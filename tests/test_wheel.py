"""Install like any Python service: build the wheel, `pip install` it (not editable) into a fresh
virtualenv outside the checkout, then migrate, serve and submit a case over real HTTP from a
working directory that has nothing of the repository in it.

The build copies only what the Dockerfile copies (pyproject.toml, README.md, suggestbox/,
templates/, static/), so a file the wheel forgets fails here and not in a container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests import smoke
from tests.conftest import ROOT, free_port

BUILD_INPUTS = ("pyproject.toml", "README.md", "suggestbox", "templates", "static")


def _run(*args: str | Path, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_installs_and_serves_from_anywhere(tmp_path: Path) -> None:
    started = time.monotonic()
    # No PYTHONPATH or virtualenv of the checkout may leak into the children.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    src = tmp_path / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src,
         cwd=tmp_path, env=env)
    (wheel,) = dist.glob("suggestbox-*.whl")

    # Every template, static file and migration is in the wheel.
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"suggestbox/{p.relative_to(ROOT).as_posix()}"
        for folder in ("templates", "static") for p in (ROOT / folder).rglob("*") if p.is_file()
    } | {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "suggestbox").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert expected - names == set(), f"missing from the wheel: {sorted(expected - names)}"

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    _run(venv / "bin" / "pip", "install", "-q", wheel, cwd=tmp_path, env=env, timeout=600)
    installed = time.monotonic()

    work = tmp_path / "elsewhere"  # the service's working directory: no templates, no checkout
    work.mkdir()
    where = _run(venv / "bin" / "python", "-c",
                 "import suggestbox.settings as s; print(s.PACKAGE, s.asset_dir('templates'))",
                 cwd=work, env=env)
    package, templates = where.split()
    assert package.startswith(str(venv)), where
    assert templates.startswith(str(venv)), where

    env.update({"SUGGESTBOX_DATA_DIR": str(work / "data"), "SUGGESTBOX_INLINE_WORKER": "false"})
    _run(venv / "bin" / "suggestbox", "migrate", cwd=work, env=env)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "suggestbox"), "serve", "--port", str(port), "--no-migrate"],
            cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        smoke.wait_healthy(base, alive=lambda: proc.poll() is None)
        receipt = smoke.submit_case(base)
        assert len(receipt) == 19
    except Exception as e:
        pytest.fail(f"serving the installed wheel failed: {e!r}\nserver log:\n{log.read_text()}")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert (work / "data" / "suggestbox.sqlite3").exists()
    print(f"wheel test: build+install {installed - started:.1f} s, "
          f"total {time.monotonic() - started:.1f} s")
