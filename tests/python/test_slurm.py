"""docs/scale.md's Slurm recipe on a real (single-node) Slurm cluster: its job-array script and its
submit script, written out unchanged, build 36 pairs in 8 array tasks and a dependent merge job;
the result must equal a one-process build byte for byte. Runs where a cluster answers (the test
command starts one with scripts/slurm-local.sh where it can install it) and says so when not."""

import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import BIN, REPO, quintal_head
from conftest import segprep as run_segprep


def cluster_answers():
    if not shutil.which("sbatch"):
        return False
    r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, check=False)
    return r.returncode == 0 and "idle" in r.stdout


pytestmark = pytest.mark.skipif(
    not cluster_answers(), reason="extended check: no Slurm cluster answers (scripts/slurm-local.sh start)"
)


def recipe():
    """build.sbatch and submit.sh as docs/scale.md gives them."""
    text = (REPO / "docs" / "scale.md").read_text()
    section = text.split("## Slurm", 1)[1]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return blocks[0], blocks[1]


def many_pairs(root, copies=6):
    fixture = REPO / "fixtures" / "quintal"
    for sub in ("stills", "labelsRGB"):
        (root / sub).mkdir(parents=True)
        for f in sorted((fixture / sub).iterdir()):
            for c in range(copies):
                shutil.copy(f, root / sub / f"c{c}{f.name}")


def files(out):
    return {
        p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and ".segprep" not in p.parts
    }


def test_the_documented_job_array_and_merge_equal_one_process(tmp_path):
    many_pairs(tmp_path / "data")
    fixture = REPO / "fixtures" / "quintal"
    head = quintal_head("data/stills", "data/labelsRGB", fixture / "label_colors.txt")
    stages = "[[stage]]\nresize = { size = [96, 96] }\n[split]\ntrain = 0.75\nval = 0.25\nseed = 3\n"
    (tmp_path / "pipeline.toml").write_text(f'{head}{stages}[output]\ndir = "out/my-dataset"\n')
    build_script, submit_script = recipe()
    (tmp_path / "build.sbatch").write_text(build_script)
    (tmp_path / "submit.sh").write_text(submit_script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGPREP_WORKER", "SLURM_ARRAY"))}
    env["PATH"] = f"{BIN.parent}{os.pathsep}{env['PATH']}"
    submitted = subprocess.run(["bash", "submit.sh"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert submitted.returncode == 0, submitted.stderr
    merge_job = submitted.stdout.strip().split()[-1]
    deadline = time.time() + 300
    while time.time() < deadline:
        queue = subprocess.run(["squeue", "-h", "-j", merge_job], capture_output=True, text=True, check=False)
        if merge_job not in queue.stdout:
            break
        time.sleep(1)
    logs = "\n".join(p.read_text() for p in tmp_path.glob("slurm-*.out"))
    assert (tmp_path / "out" / "my-dataset" / "index.json").exists(), logs
    r = run_segprep("build", "pipeline.toml", "--num-shards", "32", "--out", "alone", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    alone, slurm = files(tmp_path / "alone"), files(tmp_path / "out" / "my-dataset")
    assert slurm.keys() == alone.keys()
    for name in alone:
        assert slurm[name] == alone[name], name
