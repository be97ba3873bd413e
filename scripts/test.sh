#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (a Python venv with the
# read-back libraries, Keras and JAX for the training test, ruff), lints the Python and the Rust
# code, builds in the dev profile, runs the Rust tests, builds the wheel (the segprep command and
# `import segprep`) once and installs it into the venv, then runs the Python checks against it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SEGPREP_TEST_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# Python lints first: they take a second
"$VENV/bin/ruff" check python tests benches
"$VENV/bin/ruff" format --check python tests benches

# Rust lints in the same build as the tests, so nothing is compiled twice: clippy-driver compiles
# this workspace's own crates (what `cargo clippy` does, but generating code too) with warnings as
# errors, and the dependencies are compiled once, by rustc, for the tests and the wheel alike.
# Without clippy (`rustup component add clippy`) the build goes on unlinted and says so.
if clippy=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver); then
    export RUSTC_WORKSPACE_WRAPPER="$clippy" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
else
    echo "clippy-driver not found: building without the Rust lints" >&2
fi

# dev profile throughout (a release build of polars takes several times longer): every target
# (the library, the command, the examples, the tests and the benches, which are only compiled
# here and run by `cargo bench`), then the tests
cargo test --all-targets --no-run
cargo test

# the wheel, dev profile (maturin reuses target/debug); the Python tests import the package from it
rm -rf target/test-wheel
"$VENV/bin/maturin" build --quiet --out target/test-wheel
WHEEL=$(ls target/test-wheel/segprep-*.whl)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"

export SEGPREP_BIN="$PWD/target/debug/segprep" SEGPREP_WHEEL="$PWD/$WHEEL" KERAS_BACKEND=jax

# Azure's blob emulator (azurite) for the az:// checks, from npm where there is npm (bounded, so a
# machine that cannot reach the registry skips that check instead of hanging)
AZURITE="$(cd "$VENV" && pwd)/azurite/node_modules/.bin/azurite-blob"
if [ ! -x "$AZURITE" ] && command -v npm >/dev/null; then
    timeout 180 npm install --silent --no-audit --no-fund --prefix "$VENV/azurite" azurite@3 >/dev/null ||
        echo "azurite did not install; the az:// check will be skipped" >&2
fi
export SEGPREP_AZURITE="$AZURITE"

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
