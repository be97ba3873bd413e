#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (a Python venv with the
# read-back libraries), builds in the dev profile, runs the Rust tests, then the Python checks.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SEGPREP_TEST_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# dev profile throughout (a release build of polars takes several times longer); benches compile here too
cargo build --all-targets
cargo test

SEGPREP_BIN="$PWD/target/debug/segprep" "$VENV/bin/python" -m pytest tests/python -q -rs

# the criterion benches compile in the bench profile (release); running them is benches/e2e.py's job
cargo bench --no-run
