"""segprep's Python side: finished builds as datasets for any trainer.

    import segprep
    build = segprep.open("out/camvid")          # a folder, or s3:// gs:// az:// file://
    train = build["train"]                      # len(train), train[i], train[[i, j]]
    sample = train[0]                           # {"image": (H,W,C), "label": (H,W), "key": str, ...}
    weights = build.class_weights("train", scheme="median")   # float32, indexed by class id

    live = segprep.Pipeline("pipelines/camvid.toml")   # the same stages, live in a data loader
    sample = live.sample("0001TP_006690", copy=1)   # the bytes a build writes as key@1
    train = live.dataset("train", epoch=3)          # fresh copies each epoch (copy = epoch + 1)

Framework adapters import their framework only when used: `segprep.torch`, `segprep.keras`,
`segprep.tf`; `segprep.batches` is a plain numpy batch iterator (JAX, anything).
"""

from ._build import Build, ClassInfo, SplitDataset, open
from ._errors import BuildError, DataError, PipelineError, SegprepError
from ._order import EpochOrder, batches
from ._pipeline import OnlineSplit, Pipeline

__all__ = [
    "Build",
    "BuildError",
    "ClassInfo",
    "DataError",
    "EpochOrder",
    "OnlineSplit",
    "Pipeline",
    "PipelineError",
    "SegprepError",
    "SplitDataset",
    "batches",
    "open",
]
