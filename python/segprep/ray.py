"""A sharded build on a Ray cluster: W workers as Ray tasks, then the merge.

    import ray, segprep.ray
    ray.init()                                   # or ray.init(address="auto") on a cluster
    build = segprep.ray.build("pipeline.toml", workers=8, num_shards=32)
    train = build["train"]

Each task runs `segprep build PIPELINE --num-shards N --worker i/W` (the command this package
installs) and the merge runs once every task succeeded. The workers share the output: a folder on
a file system every node mounts, or an object-store URL (`[output] dir = "s3://..."`). A failed
task is retried by Ray; a rerun builds only the shards still missing, so retries are cheap.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from ._build import Build, open
from ._errors import SegprepError
from ._remote import segprep_command


class RayBuildError(SegprepError):
    """A worker or the merge failed; the message carries the command's own error."""


def build(
    pipeline: str | os.PathLike[str],
    *,
    workers: int,
    num_shards: int,
    out: str | None = None,
    cpus_per_worker: int = 1,
    max_retries: int = 2,
) -> Build:
    """Runs the W workers of a build of `pipeline` as Ray tasks, merges, and opens the result.

    `num_shards` fixes the partition every worker shares (at least `workers`); `out` overrides
    `[output] dir`. Each task asks Ray for `cpus_per_worker` CPUs and builds on as many threads.
    """
    import ray

    if workers < 1 or num_shards < workers:
        raise ValueError(f"need 1 <= workers <= num_shards (workers={workers}, num_shards={num_shards})")
    pipeline_path = Path(pipeline).resolve()
    target = out or output_dir(pipeline_path)
    command = segprep_command()
    common = ["build", str(pipeline_path), "--num-shards", str(num_shards), "--threads", str(cpus_per_worker)]
    if out is not None:
        common += ["--out", out]
    task = ray.remote(num_cpus=cpus_per_worker, max_retries=max_retries)(_run)
    runs = [task.remote([command, *common, "--worker", f"{i}/{workers}"]) for i in range(workers)]
    for i, (code, stderr) in enumerate(ray.get(runs)):
        if code != 0:
            raise RayBuildError(f"worker {i}/{workers} failed (exit {code}): {stderr.strip()}")
    code, stderr = _run([command, "merge", target])
    if code != 0:
        raise RayBuildError(f"merge of {target} failed (exit {code}): {stderr.strip()}")
    return open(target)


def output_dir(pipeline: Path) -> str:
    """`[output] dir` of a pipeline file, relative paths taken from the file's folder (as segprep
    takes them)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11 has no TOML reader
        raise RayBuildError(f"{pipeline}: pass out= (reading [output] dir needs Python 3.11)") from None
    config: dict[str, Any] = tomllib.loads(pipeline.read_text())
    written = str(config.get("output", {}).get("dir", ""))
    if not written:
        raise RayBuildError(f"{pipeline}: [output] dir is not set; pass out=")
    if "://" in written or Path(written).is_absolute():
        return written
    return str(pipeline.parent / written)


def _run(args: list[str]) -> tuple[int, str]:
    """Runs one segprep command; its exit status and its error output."""
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    return done.returncode, done.stderr
