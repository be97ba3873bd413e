"""The `segprep` command of the wheel: the Rust command line, run in this process."""

from __future__ import annotations

import signal
import sys


def main() -> None:
    # Ctrl-C stops a build as it stops the binary (Python's handler would wait for the Rust call)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from ._native import run_cli

    sys.exit(run_cli(["segprep", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
