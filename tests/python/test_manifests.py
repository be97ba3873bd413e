"""The Kubernetes manifests in docs/ are what a user copies: each must be valid against the
Kubernetes API schema (kubernetes-validate's bundled schemas, offline, strict: no unknown field),
and the Indexed Job must give segprep the worker count it runs."""

import copy
import re
import shlex

import kubernetes_validate
import pytest
import yaml

from conftest import REPO

KUBERNETES = "1.37.0"


def manifests():
    """Every YAML document in a ```yaml block of docs/*.md: (file, document)."""
    found = []
    for doc in sorted((REPO / "docs").glob("*.md")):
        for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S):
            found += [(doc.name, d) for d in yaml.safe_load_all(block) if d]
    return found


def test_the_docs_hold_the_build_and_merge_jobs():
    names = {d["metadata"]["name"] for _, d in manifests() if d["kind"] == "Job"}
    assert {"segprep-build", "segprep-merge"} <= names, names


@pytest.mark.parametrize(
    "source,manifest", manifests(), ids=lambda v: v if isinstance(v, str) else v["metadata"]["name"]
)
def test_every_manifest_is_valid_kubernetes(source, manifest):
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_indexed_job_runs_as_many_workers_as_it_has_completions():
    build = next(d for _, d in manifests() if d["metadata"]["name"] == "segprep-build")
    spec = build["spec"]
    assert spec["completionMode"] == "Indexed"
    args = build["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "build" and "--num-shards" in args, shlex.join(args)
    assert int(args[args.index("--workers") + 1]) == spec["completions"]


def test_the_validator_refuses_an_unknown_field():
    build = next(d for _, d in manifests() if d["metadata"]["name"] == "segprep-build")
    wrong = copy.deepcopy(build)
    wrong["spec"]["completion"] = wrong["spec"].pop("completions")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES, strict=True)
