"""`pip install segprep`: the wheel maturin builds (`bindings = "bin"`) installs the segprep command
into a fresh venv, where `--version` and the README's quick start run."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import REPO

MATURIN = Path(sys.executable).with_name("maturin")


def run(*args, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{args}: {r.stdout}\n{r.stderr}"
    return r


def test_wheel_installs_into_a_fresh_venv_and_runs_the_quick_start(tmp_path):
    assert MATURIN.exists(), "maturin is installed by scripts/test.sh (tests/python/requirements.txt)"
    # the dev profile, like the rest of the test command (the wheel reuses target/debug)
    run(MATURIN, "build", "--out", tmp_path / "wheels", cwd=REPO)
    wheels = list((tmp_path / "wheels").glob("segprep-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--quiet", wheels[0])
    segprep = venv / "bin" / "segprep"
    version = run(segprep, "--version").stdout.split()
    cargo = (REPO / "Cargo.toml").read_text()
    assert version[0] == "segprep" and f'version = "{version[1]}"' in cargo
    # the quick start, from a copy of the repository's pipelines/ and fixtures/
    work = tmp_path / "work"
    shutil.copytree(REPO / "pipelines", work / "pipelines")
    shutil.copytree(REPO / "fixtures" / "quintal", work / "fixtures" / "quintal")
    run(segprep, "build", "pipelines/quickstart.toml", cwd=work)
    d = np.load(work / "out" / "quickstart" / "train-00000-of-00001.npz")
    assert d["image"].shape == (4, 192, 256, 3) and d["label"].shape == (4, 192, 256)
    assert "apply" in run(segprep, "--help").stdout
