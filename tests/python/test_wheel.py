"""`pip install segprep`: the wheel maturin builds (the native module `segprep._native` and the
Python package; the `segprep` command enters the Rust command line through the module) installs
the command and `import segprep` into a fresh venv, where `--version`, the README's quick start,
reading its output through the package and a live `segprep.Pipeline` run."""

import os
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
    wheel = built_wheel(tmp_path)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    # numpy, the package's one requirement, comes from the package index (or pip's cache)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
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
    # the package from the same wheel reads what its command wrote, and finds that command
    read = "import segprep; b = segprep.open('out/quickstart'); print(len(b['train']), b['train'][0]['image'].shape)"
    env = {k: v for k, v in os.environ.items() if k != "SEGPREP_BIN"}
    assert run(venv / "bin" / "python", "-c", read, cwd=work, env=env).stdout.split() == ["4", "(192,", "256,", "3)"]
    from_url = f"import segprep; print(segprep.open('{(work / 'out' / 'quickstart').as_uri()}').counts)"
    assert "'train': 4" in run(venv / "bin" / "python", "-c", from_url, cwd=work, env=env).stdout
    # the live pipeline from the same wheel gives the built sample
    live = (
        "import segprep, numpy as np; live = segprep.Pipeline('pipelines/quickstart.toml'); "
        "built = segprep.open('out/quickstart')['train'][0]; "
        "print(np.array_equal(live.sample(built['key'])['image'], built['image']))"
    )
    assert run(venv / "bin" / "python", "-c", live, cwd=work, env=env).stdout.split() == ["True"]
    # URLs of object stores are fetched by the command installed beside the package
    which = "from segprep._remote import segprep_command; print(segprep_command())"
    assert run(venv / "bin" / "python", "-c", which, env=env).stdout.strip() == str(segprep)


def built_wheel(tmp_path):
    """The wheel scripts/test.sh built (SEGPREP_WHEEL), else one built here in the dev profile."""
    if os.environ.get("SEGPREP_WHEEL"):
        return Path(os.environ["SEGPREP_WHEEL"])
    assert MATURIN.exists(), "maturin is installed by scripts/test.sh (tests/python/requirements.txt)"
    run(MATURIN, "build", "--out", tmp_path / "wheels", cwd=REPO)
    wheels = list((tmp_path / "wheels").glob("segprep-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]
