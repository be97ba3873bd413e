"""Builds behind a URL are copied into a local cache by the `segprep` command (`segprep fetch`),
which reads object storage exactly as `segprep build` writes it; the cache is then opened as a folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from ._errors import BuildError


def localize(path: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    """A local folder holding the build at `path` (a folder, or a URL fetched into the cache)."""
    if "://" not in path:
        return Path(path)
    if path.startswith("file://"):
        return Path(unquote(urlparse(path).path))
    cache = Path(cache_dir or os.environ.get("SEGPREP_CACHE") or Path.home() / ".cache" / "segprep")
    target = cache / "builds" / hashlib.sha256(path.rstrip("/").encode()).hexdigest()[:20]
    done = subprocess.run(
        [segprep_command(), "fetch", path, "--to", str(target)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BuildError(f"{path}: cannot fetch the build: {done.stderr.strip()}")
    return target


def segprep_command() -> str:
    """The `segprep` command installed beside this package (same wheel), else the one on PATH."""
    beside = Path(sys.executable).with_name("segprep")
    for candidate in (os.environ.get("SEGPREP_BIN"), str(beside), shutil.which("segprep")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise BuildError("the `segprep` command is not installed: `pip install segprep` installs it with this package")
