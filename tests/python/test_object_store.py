"""Object storage: builds that read from and write to a real S3-compatible server (moto's server
mode, started here on loopback) must give the same shards as the same build on local files."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import numpy as np
import pytest

from conftest import BIN, REPO, WORKER_STAGES, quintal_head

BUCKET = "segprep-test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(args, port, ready, name):
    """Starts an emulator on loopback `port`, waits until `ready(url)` stops raising OSError, yields
    its URL, and stops it."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            ready(url)
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"{name} did not start")
    yield url
    proc.terminate()
    proc.wait()


@pytest.fixture(scope="module")
def server():
    port = free_port()
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    yield from serving(args, port, lambda url: urllib.request.urlopen(url + "/moto-api/", timeout=1), "moto server")


@pytest.fixture
def s3(server, tmp_path):
    """A fresh bucket holding the Quintal fixture under data/, and the environment segprep needs."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEGPREP_WORKER"))},
        "AWS_ENDPOINT_URL": server,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SEGPREP_CACHE": str(tmp_path / "cache"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    (tmp_path / "tmp").mkdir()
    client = boto3.client(
        "s3", endpoint_url=server, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    client.create_bucket(Bucket=BUCKET)
    fixture = REPO / "fixtures" / "quintal"
    for sub in ["stills", "labelsRGB"]:
        for f in sorted((fixture / sub).iterdir()):
            client.upload_file(str(f), BUCKET, f"data/{sub}/{f.name}")
    yield client, env
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for o in objects:
        client.delete_object(Bucket=BUCKET, Key=o["Key"])
    client.delete_bucket(Bucket=BUCKET)


def run(env, cwd, *args):
    return subprocess.run([str(BIN), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)


def pipeline(tmp_path, name, images, labels, out):
    colors = REPO / "fixtures" / "quintal" / "label_colors.txt"
    text = f'{quintal_head(images, labels, colors)}{WORKER_STAGES}\n[output]\ndir = "{out}"\n'
    (tmp_path / name).write_text(text)
    return name


def objects(client, prefix):
    """Every object under prefix: relative key -> bytes."""
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix) :]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def local_build(tmp_path, env, *extra):
    fixture = REPO / "fixtures" / "quintal"
    p = pipeline(tmp_path, "local.toml", fixture / "stills", fixture / "labelsRGB", "local-out")
    r = run(env, tmp_path, "build", p, *extra)
    assert r.returncode == 0, r.stderr
    return tmp_path / "local-out"


def assert_same_dataset(remote, local):
    """Shards and stats byte for byte; index.json equal but for the pipeline as written."""
    local_index = json.loads((local / "index.json").read_text())
    for f in local_index["files"]:
        assert remote[f["file"]] == (local / f["file"]).read_bytes(), f["file"]
        assert hashlib.sha256(remote[f["file"]]).hexdigest() == f["sha256"]
    assert remote["stats.json"] == (local / "stats.json").read_bytes()
    remote_index = json.loads(remote["index.json"])
    for key in ["pipeline", "pipeline_hash"]:
        remote_index.pop(key), local_index.pop(key)
    assert remote_index == local_index
    assert not [k for k in remote if k.endswith(".partial")]


def test_build_from_and_to_s3_equals_the_local_build(s3, tmp_path):
    client, env = s3
    p = pipeline(
        tmp_path, "s3.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", f"s3://{BUCKET}/out"
    )
    r = run(env, tmp_path, "build", p)
    assert r.returncode == 0, r.stderr
    assert "mirrored 6 object(s)" in r.stderr
    local = local_build(tmp_path, env)
    remote = objects(client, "out/")
    assert_same_dataset(remote, local)
    # trainers read the published shard as it is
    shard = sorted(k for k in remote if k.endswith(".npz"))[0]
    (tmp_path / "shard.npz").write_bytes(remote[shard])
    with np.load(tmp_path / "shard.npz") as z:
        assert z["image"].shape[1:] == (120, 160, 3) and z["label"].dtype == np.uint8
    # no staging folder is left behind
    assert not list((tmp_path / "tmp").iterdir())


def test_a_killed_s3_build_s_staging_folder_is_removed_by_the_next_run(s3, tmp_path):
    _client, env = s3
    url = f"s3://{BUCKET}/out"
    p = pipeline(tmp_path, "s3.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", url)
    prefix = "segprep-staging-" + hashlib.sha256(url.encode()).hexdigest()[:16] + "-"
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed = tmp_path / "tmp" / f"{prefix}{dead.pid}"
    (killed / ".segprep").mkdir(parents=True)
    (killed / "train-00000-of-00001.npz").write_bytes(b"x" * 1000)
    running = tmp_path / "tmp" / f"{prefix}{os.getpid()}"
    running.mkdir()
    r = run(env, tmp_path, "build", p)
    assert r.returncode == 0, r.stderr
    assert not killed.exists(), "the killed build's staging folder is left"
    assert running.exists(), "a running build's staging folder was removed"


def test_an_s3_rerun_rebuilds_only_a_lost_shard_and_a_different_plan_is_refused(s3, tmp_path):
    client, env = s3
    p = pipeline(
        tmp_path, "s3.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", f"s3://{BUCKET}/out"
    )
    assert run(env, tmp_path, "build", p, "--num-shards", "4").returncode == 0
    before = {o["Key"]: o["LastModified"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]}
    shards = sorted(k for k in before if k.endswith(".npz"))
    lost = shards[1]
    client.delete_object(Bucket=BUCKET, Key=lost)
    time.sleep(1.1)  # S3 times have one-second resolution
    r = run(env, tmp_path, "build", p, "--num-shards", "4")
    assert r.returncode == 0, r.stderr
    assert "resumed: 3 shard(s)" in r.stderr
    after = {o["Key"]: o["LastModified"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]}
    assert lost in after
    for key in shards:
        if key != lost:
            assert after[key] == before[key], f"{key} was rewritten"
    local = local_build(tmp_path, env, "--num-shards", "4")
    assert_same_dataset(objects(client, "out/"), local)
    r = run(env, tmp_path, "build", p, "--num-shards", "5")
    assert r.returncode == 2 and "num_shards 5 (recorded 4)" in r.stderr, r.stderr


def test_s3_workers_then_merge_equal_the_local_build(s3, tmp_path):
    client, env = s3
    p = pipeline(tmp_path, "s3.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", f"s3://{BUCKET}/w")
    for i in range(3):
        r = run(env, tmp_path, "build", p, "--num-shards", "4", "--worker", f"{i}/3")
        assert r.returncode == 0, r.stderr
    assert "index.json" not in objects(client, "w/")
    r = run(env, tmp_path, "merge", f"s3://{BUCKET}/w")
    assert r.returncode == 0, r.stderr
    local = local_build(tmp_path, env, "--num-shards", "4")
    assert_same_dataset(objects(client, "w/"), local)
    # merge re-hashes every shard: a cut object and an altered one are found, each named as such
    keys = sorted(k for k in objects(client, "w/") if k.endswith(".npz"))
    client.put_object(Bucket=BUCKET, Key=f"w/{keys[0]}", Body=b"x" * 10)
    whole = bytearray(objects(client, "w/")[keys[1]])
    whole[len(whole) // 2] ^= 0xFF
    client.put_object(Bucket=BUCKET, Key=f"w/{keys[1]}", Body=bytes(whole))
    r = run(env, tmp_path, "merge", f"s3://{BUCKET}/w")
    assert r.returncode == 1 and "2 of 4 logical shards are missing or damaged" in r.stderr, r.stderr
    assert f"{keys[0]} is 10 bytes, its record says" in r.stderr, r.stderr
    assert f"{keys[1]}'s sha256 differs from its record" in r.stderr, r.stderr
    # a worker rerun replaces both objects, and merge then succeeds
    for i in range(3):
        r = run(env, tmp_path, "build", p, "--num-shards", "4", "--worker", f"{i}/3")
        assert r.returncode == 0, r.stderr
    r = run(env, tmp_path, "merge", f"s3://{BUCKET}/w")
    assert r.returncode == 0, r.stderr
    assert_same_dataset(objects(client, "w/"), local)


def fetched_bytes(stderr):
    """Bytes a run says it fetched, over its mirrored URLs ("fetched N object(s), B bytes, of URL")."""
    return sum(int(line.split(", ")[1].split()[0]) for line in stderr.splitlines() if line.startswith("fetched "))


def test_each_of_4_workers_fetches_only_the_pairs_it_owns(s3, tmp_path):
    """Workers list the inputs once and fetch the pairs of their own shards (and each split's first
    pair, which every worker decodes for the sample shape), not the whole dataset."""
    client, env = s3
    fixture = REPO / "fixtures" / "quintal"
    total = 0
    for copy in range(4):
        for sub in ["stills", "labelsRGB"]:
            for f in sorted((fixture / sub).iterdir()):
                client.upload_file(str(f), BUCKET, f"many/{sub}/{f.name.replace('_', f'_{copy}', 1)}")
                total += f.stat().st_size
    p = pipeline(tmp_path, "s3.toml", f"s3://{BUCKET}/many/stills", f"s3://{BUCKET}/many/labelsRGB", "w")
    got = []
    for i in range(4):
        worker_env = {**env, "SEGPREP_CACHE": str(tmp_path / f"cache{i}")}
        r = run(worker_env, tmp_path, "build", p, "--num-shards", "8", "--worker", f"{i}/4")
        assert r.returncode == 0, r.stderr
        assert "mirrored 24 object(s)" in r.stderr, r.stderr
        got.append(fetched_bytes(r.stderr))
    # every pair is fetched by the worker that owns it; the rest is at most 2 split-first pairs each
    biggest_pair = max(a.stat().st_size for a in (fixture / "stills").iterdir()) + 2000
    assert total <= sum(got) <= total + 4 * 2 * biggest_pair, (got, total)
    assert max(got) < total / 2, (got, total)
    assert run(env, tmp_path, "merge", "w").returncode == 0
    local = tmp_path / "many"
    for sub in ["stills", "labelsRGB"]:
        (local / sub).mkdir(parents=True)
        for key in [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"many/{sub}/")["Contents"]]:
            client.download_file(BUCKET, key, str(tmp_path / key))
    one = pipeline(tmp_path, "one.toml", local / "stills", local / "labelsRGB", "one")
    assert run(env, tmp_path, "build", one, "--num-shards", "8").returncode == 0
    index = json.loads((tmp_path / "one" / "index.json").read_text())
    assert len(index["files"]) == 8
    for f in index["files"]:
        assert (tmp_path / "w" / f["file"]).read_bytes() == (tmp_path / "one" / f["file"]).read_bytes(), f
    # a worker run again from its cache fetches nothing
    env0 = {**env, "SEGPREP_CACHE": str(tmp_path / "cache0")}
    r = run(env0, tmp_path, "build", p, "--num-shards", "8", "--worker", "0/4")
    assert r.returncode == 0 and fetched_bytes(r.stderr) == 0, r.stderr
    # files opened outside a build's own pairs are fetched as they are opened: the class report
    # reads the labels alone, and gives the local report
    label_bytes = sum(f.stat().st_size for f in (local / "labelsRGB").iterdir())
    r = run({**env, "SEGPREP_CACHE": str(tmp_path / "cache-stats")}, tmp_path, "stats", p, "--format", "json")
    assert r.returncode == 0 and fetched_bytes(r.stderr) == label_bytes, r.stderr
    remote_report, local_report = (
        json.loads(r.stdout),
        json.loads(run(env, tmp_path, "stats", one, "--format", "json").stdout),
    )
    remote_report.pop("source"), local_report.pop("source")
    assert remote_report == local_report
    print("bytes fetched by each of 4 workers:", got, "of", total)


def test_an_unreachable_store_is_an_environment_problem(s3, tmp_path):
    """Exit status 3, the URL named: not a data problem (1)."""
    _, env = s3
    p = pipeline(tmp_path, "s3.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", "out")
    r = run({**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}, tmp_path, "build", p)
    assert r.returncode == 3, r.stderr
    assert f"s3://{BUCKET}/data/stills" in r.stderr and "cannot list" in r.stderr, r.stderr


def test_file_urls_work_like_folders(s3, tmp_path):
    _, env = s3
    fixture = REPO / "fixtures" / "quintal"
    p = pipeline(
        tmp_path,
        "file.toml",
        f"file://{fixture / 'stills'}",
        f"file://{fixture / 'labelsRGB'}",
        f"file://{tmp_path / 'file-out'}",
    )
    r = run(env, tmp_path, "build", p)
    assert r.returncode == 0, r.stderr
    local = local_build(tmp_path, env)
    got = {
        str(f.relative_to(tmp_path / "file-out")): f.read_bytes()
        for f in (tmp_path / "file-out").rglob("*")
        if f.is_file()
    }
    assert_same_dataset(got, local)


def test_segprep_open_reads_an_s3_build_through_a_checked_local_copy(s3, tmp_path, monkeypatch):
    import segprep

    client, env = s3
    p = pipeline(
        tmp_path, "s3.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", f"s3://{BUCKET}/out"
    )
    assert run(env, tmp_path, "build", p).returncode == 0
    local = segprep.open(local_build(tmp_path, env))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cache = tmp_path / "open-cache"
    remote = segprep.open(f"s3://{BUCKET}/out", cache_dir=cache)
    assert remote.path.is_relative_to(cache) and remote.counts == local.counts
    for split in local.splits:
        for i in range(len(local[split])):
            a, b = local[split][i], remote[split][i]
            assert a["key"] == b["key"] and np.array_equal(a["image"], b["image"])
            assert np.array_equal(a["label"], b["label"])
    assert np.array_equal(remote.class_weights("train"), local.class_weights("train"))
    # a second open downloads nothing; an object altered on the store is named, not read
    again = run(env, tmp_path, "fetch", f"s3://{BUCKET}/out", "--to", remote.path)
    assert again.returncode == 0 and "fetched 0 file(s)" in again.stdout, again.stdout + again.stderr
    shard = json.loads((remote.path / "index.json").read_text())["files"][0]["file"]
    body = bytearray(client.get_object(Bucket=BUCKET, Key=f"out/{shard}")["Body"].read())
    body[-100] ^= 0xFF
    client.put_object(Bucket=BUCKET, Key=f"out/{shard}", Body=bytes(body))
    (remote.path / shard).unlink()
    with pytest.raises(segprep.BuildError, match=f"{shard}.*size or sha256 differs from index.json"):
        segprep.open(f"s3://{BUCKET}/out", cache_dir=cache)


def test_an_input_replaced_by_other_content_of_the_same_size_is_fetched_again(s3, tmp_path):
    """The input mirror compares each object's ETag, not only its size."""
    from PIL import Image

    client, env = s3
    still = sorted((REPO / "fixtures" / "quintal" / "stills").iterdir())[0]
    pixels = np.asarray(Image.open(still).convert("RGB"))

    def upload(array):
        # stored deflate blocks: the file's size depends on the image size alone
        path = tmp_path / "replacement.png"
        Image.fromarray(array).save(path, compress_level=0)
        client.upload_file(str(path), BUCKET, f"data/stills/{still.name}")
        return path.read_bytes()

    first = upload(pixels)
    p = pipeline(tmp_path, "s3.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", "out1")
    assert run(env, tmp_path, "build", p).returncode == 0
    second = upload(255 - pixels)
    assert len(second) == len(first) and second != first
    p = pipeline(tmp_path, "s3.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", "out2")
    r = run(env, tmp_path, "build", p)
    assert r.returncode == 0, r.stderr
    mirrored = list((tmp_path / "cache").rglob(still.name))
    assert mirrored and all(f.read_bytes() == second for f in mirrored), "the mirror kept the old object"
    built = [json.loads((tmp_path / out / "index.json").read_text())["files"] for out in ("out1", "out2")]
    assert [f["sha256"] for f in built[0]] != [f["sha256"] for f in built[1]]
    # verify names the object whose bytes changed under the first build, by its URL
    r = run(env, tmp_path, "verify", p, "--out", "out1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"s3://{BUCKET}/data/stills/{still.name} (pair {still.stem}): changed since the build" in r.stdout
    assert "1 of 12 input file(s)" in r.stdout, r.stdout
    assert run(env, tmp_path, "verify", p, "--out", "out2").returncode == 0
    # the record holds what hashlib says of the bytes read
    recorded = [json.loads(line) for line in (tmp_path / "out2" / "inputs.jsonl").read_text().splitlines()]
    fixture = REPO / "fixtures" / "quintal"
    for pair in recorded:
        for f in pair["files"]:
            local = fixture / {"images": "stills", "labels": "labelsRGB"}[f["input"]] / f["file"]
            data = second if local.name == still.name else local.read_bytes()
            assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["bytes"] == len(data), f


def test_a_shard_over_the_single_put_size_goes_up_in_parts(s3, tmp_path):
    """A ~40 MiB shard is uploaded as a multipart upload (S3 gives such objects an ETag ending in
    -<parts>) and equals the local build's bytes."""
    client, env = s3
    colors = REPO / "fixtures" / "quintal" / "label_colors.txt"
    stages = "[[stage]]\naugment = { copies = 25, hflip = 0.5 }\n[split]\ntrain = 1.0\n"

    def write(name, images, labels, out):
        (tmp_path / name).write_text(f'{quintal_head(images, labels, colors)}{stages}[output]\ndir = "{out}"\n')
        return name

    fixture = REPO / "fixtures" / "quintal"
    p = write("big.toml", f"s3://{BUCKET}/data/stills", f"s3://{BUCKET}/data/labelsRGB", f"s3://{BUCKET}/big")
    r = run(env, tmp_path, "build", p)
    assert r.returncode == 0, r.stderr
    local = write("big-local.toml", fixture / "stills", fixture / "labelsRGB", "big-local")
    assert run(env, tmp_path, "build", local).returncode == 0
    shard = "train-00000-of-00001.npz"
    size = (tmp_path / "big-local" / shard).stat().st_size
    assert size > 32 << 20, f"the shard is only {size} bytes"
    head = client.head_object(Bucket=BUCKET, Key=f"big/{shard}")
    assert head["ETag"].strip('"').rsplit("-", 1)[-1].isdigit() and "-" in head["ETag"], head["ETag"]
    assert objects(client, "big/")[shard] == (tmp_path / "big-local" / shard).read_bytes()


# Azurite's published development account key (the same on every machine; not a secret)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    """Azure Blob Storage's emulator (azurite, from npm; scripts/test.sh installs it where npm is)."""
    binary = os.environ.get("SEGPREP_AZURITE", "")
    if not os.path.exists(binary):
        pytest.skip("extended check: azurite (npm) is not installed; scripts/test.sh installs it where npm is")
    port = free_port()
    data = tmp_path_factory.mktemp("azurite")
    args = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data), "--silent"]
    args.append("--skipApiVersionCheck")  # the Python SDK may be newer than the emulator
    yield from serving(
        args, port, lambda _: socket.create_connection(("127.0.0.1", port), timeout=1).close(), "azurite"
    )


def test_az_builds_and_worker_merges_equal_the_local_build(azurite, s3, tmp_path):
    """az:// inputs and outputs against azurite, as s3:// against moto: a build, and two workers then
    merge, each byte-identical to the local build; verify reads the az:// inputs back."""
    from azure.storage.blob import BlobServiceClient

    _, s3_env = s3
    conn = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={azurite}/devstoreaccount1;"
    container = BlobServiceClient.from_connection_string(conn).create_container(f"segprep{free_port()}")
    fixture = REPO / "fixtures" / "quintal"
    for sub in ["stills", "labelsRGB"]:
        for f in sorted((fixture / sub).iterdir()):
            container.upload_blob(f"data/{sub}/{f.name}", f.read_bytes())
    env = {
        **{k: v for k, v in s3_env.items() if not k.startswith("AWS_")},
        "AZURE_STORAGE_USE_EMULATOR": "true",
        "AZURITE_BLOB_STORAGE_URL": azurite,
    }
    base = f"az://{container.container_name}"
    p = pipeline(tmp_path, "az.toml", f"{base}/data/stills", f"{base}/data/labelsRGB", f"{base}/out")

    def objects_under(prefix):
        blobs = container.list_blobs(name_starts_with=prefix)
        return {b.name[len(prefix) :]: container.download_blob(b.name).readall() for b in blobs}

    r = run(env, tmp_path, "build", p, "--num-shards", "4")
    assert r.returncode == 0, r.stderr
    local = local_build(tmp_path, env, "--num-shards", "4")
    assert_same_dataset(objects_under("out/"), local)
    for i in range(2):
        r = run(env, tmp_path, "build", p, "--num-shards", "4", "--worker", f"{i}/2", "--out", f"{base}/w")
        assert r.returncode == 0, r.stderr
    r = run(env, tmp_path, "merge", f"{base}/w")
    assert r.returncode == 0, r.stderr
    assert_same_dataset(objects_under("w/"), local)
    r = run(env, tmp_path, "verify", p)
    assert r.returncode == 0 and "verified 12 input file(s)" in r.stdout, r.stdout + r.stderr
