"""The Ray recipe: W workers as Ray tasks on a local Ray instance started here, then the merge,
must give the one-process build's bytes; a failing worker's own error reaches the caller."""

import os

import pytest

from conftest import REPO, WORKER_STAGES, quintal_head
from conftest import segprep as run_segprep

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def write_pipeline(tmp_path, out):
    fixture = REPO / "fixtures" / "quintal"
    text = quintal_head(fixture / "stills", fixture / "labelsRGB", fixture / "label_colors.txt")
    (tmp_path / "p.toml").write_text(f'{text}{WORKER_STAGES}\n[output]\ndir = "{out}"\n')
    return tmp_path / "p.toml"


def files(out):
    return {
        p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and ".segprep" not in p.parts
    }


def test_ray_workers_then_merge_equal_one_process(local_ray, tmp_path):
    import segprep.ray

    pipeline = write_pipeline(tmp_path, "ray-out")
    built = segprep.ray.build(pipeline, workers=2, num_shards=4)
    r = run_segprep("build", pipeline, "--num-shards", "4", "--out", "alone", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    alone_build = segprep.open(tmp_path / "alone")
    assert {s: len(built[s]) for s in built.splits} == {s: len(alone_build[s]) for s in alone_build.splits}
    ray_files, alone = files(tmp_path / "ray-out"), files(tmp_path / "alone")
    assert ray_files.keys() == alone.keys()
    for name in alone:
        assert ray_files[name] == alone[name], name


def test_a_failing_worker_s_error_reaches_the_caller(local_ray, tmp_path):
    import segprep.ray

    pipeline = write_pipeline(tmp_path, "broken-out")
    pipeline.write_text(pipeline.read_text().replace("labelsRGB", "no-such-folder"))
    with pytest.raises(segprep.ray.RayBuildError, match="no-such-folder"):
        segprep.ray.build(pipeline, workers=2, num_shards=2, max_retries=0)
