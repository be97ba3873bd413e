#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (a Python venv with the
# read-back libraries, Keras and JAX for the training test), builds in the dev profile, runs the
# Rust tests, builds the wheel (the segprep command and `import segprep`) once and installs it into
# the venv, then runs the Python checks against it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SEGPREP_TEST_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# dev profile throughout (a release build of polars takes several times longer); cargo test builds
# the library, the command, the examples and the tests. The benches are type-checked by CI's
# `cargo clippy --all-targets` and built by `cargo bench` when they are run.
cargo test

# the wheel, dev profile (maturin reuses target/debug); the Python tests import the package from it
rm -rf target/test-wheel
"$VENV/bin/maturin" build --quiet --out target/test-wheel
WHEEL=$(ls target/test-wheel/segprep-*.whl)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"

export SEGPREP_BIN="$PWD/target/debug/segprep" SEGPREP_WHEEL="$PWD/$WHEEL" KERAS_BACKEND=jax

# a single-node Slurm cluster for docs/scale.md's job-array recipe (tests/python/test_slurm.py),
# where this machine lets us install and run one (root, apt); elsewhere that check says it skipped
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if slurm=$(bash scripts/slurm-local.sh start); then
        export "$slurm"
        trap 'bash scripts/slurm-local.sh stop' EXIT
    else
        echo "the local Slurm cluster did not start; its check will be skipped" >&2
    fi
fi
"$VENV/bin/python" -m pytest tests/python -q -rs
