"""The README's "Train on it" examples, run as written on the quick-start build, and the PyTorch
and tf.data adapters in real loaders. The Keras example runs in the test command (JAX on the CPU);
PyTorch and TensorFlow are extended checks that run where those libraries are installed."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import segprep

from conftest import REPO


def readme_example(name):
    text = (REPO / "README.md").read_text()
    found = re.search(rf"<!-- readme-test: {name} -->\n```python\n(.*?)```", text, re.S)
    assert found, f"README has no example marked {name}"
    return found.group(1)


@pytest.fixture(scope="module")
def quickstart(quickstart_work):
    return quickstart_work


def run_example(name, cwd, backend="jax"):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONHASHSEED": "0"}
    r = subprocess.run([sys.executable, "-c", readme_example(name)], cwd=cwd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, f"README example {name}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_readme_keras_example_runs(quickstart):
    pytest.importorskip("keras")
    pytest.importorskip("jax")
    run_example("keras", quickstart)


def test_readme_torch_example_runs(quickstart):
    pytest.importorskip("torch", reason="extended check: PyTorch is not installed")
    run_example("torch", quickstart)


def test_readme_tf_example_runs(quickstart):
    pytest.importorskip("tensorflow", reason="extended check: TensorFlow is not installed")
    out = run_example("tf", quickstart, backend="tensorflow")
    assert "(2, 192, 256, 3)" in out


def test_torch_loader_order_is_the_same_for_any_worker_count(quickstart):
    torch = pytest.importorskip("torch", reason="extended check: PyTorch is not installed")
    from torch.utils.data import DataLoader

    from segprep.torch import Dataset, IterableDataset

    build = segprep.open(quickstart / "out" / "quickstart")
    orders = {}
    for workers in (0, 1, 2, 3):
        ds = IterableDataset(build, "train", batch_size=1, seed=4, rank=0, world_size=1)
        ds.set_epoch(2)
        for ctx in ("fork", "spawn") if workers == 2 else (None,):
            loader = DataLoader(ds, batch_size=1, num_workers=workers, multiprocessing_context=ctx)
            orders[(workers, ctx)] = [k for b in loader for k in b["key"]]
    first = next(iter(orders.values()))
    assert sorted(first) == sorted(build["train"][i]["key"] for i in range(len(build["train"])))
    assert all(o == first for o in orders.values()), orders
    # map-style, through a shuffling sampler: tensors equal the arrays
    mapped = Dataset(build, "train")
    sample = mapped[1]
    assert torch.equal(sample["image"], torch.from_numpy(np.array(build["train"][1]["image"])))


def test_torch_ranks_and_resume(quickstart):
    pytest.importorskip("torch", reason="extended check: PyTorch is not installed")
    from torch.utils.data import DataLoader

    from segprep.torch import IterableDataset

    build = segprep.open(quickstart / "out" / "quickstart")
    seen = []
    for rank in range(2):
        ds = IterableDataset(build, "train", batch_size=2, seed=1, rank=rank, world_size=2)
        seen += [k for b in DataLoader(ds, batch_size=2, num_workers=2) for k in b["key"]]
    assert sorted(seen) == sorted(build["train"][i]["key"] for i in range(len(build["train"])))
    whole = IterableDataset(build, "train", seed=1, rank=0, world_size=1)
    keys = [s["key"] for s in whole]
    whole.set_epoch(0, start=3)
    assert [s["key"] for s in whole] == keys[3:]


def test_tf_dataset_equals_the_build(quickstart):
    pytest.importorskip("tensorflow", reason="extended check: TensorFlow is not installed")
    import segprep.tf

    build = segprep.open(quickstart / "out" / "quickstart")
    train = build["train"]
    got = {e["key"].numpy().decode(): e for e in segprep.tf.dataset(build, "train", shuffle=False)}
    for i in range(len(train)):
        s = train[i]
        assert np.array_equal(got[s["key"]]["image"].numpy(), s["image"])
        assert np.array_equal(got[s["key"]]["label"].numpy(), s["label"])
