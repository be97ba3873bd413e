"""segprep's Python side: finished builds as datasets for any trainer.

    import segprep
    build = segprep.open("out/camvid")          # a folder, or s3:// gs:// az:// file://
    train = build["train"]                      # len(train), train[i], train[[i, j]]
    sample = train[0]                           # {"image": (H,W,C), "label": (H,W), "key": str, ...}
    weights = build.class_weights("train", scheme="median")   # float32, indexed by class id

Framework adapters import their framework only when used: `segprep.torch`, `segprep.keras`,
`segprep.tf`; `segprep.batches` is a plain numpy batch iterator (JAX, anything).
"""

from ._build import Build, ClassInfo, SplitDataset, open
from ._errors import BuildError, SegprepError
from ._order import EpochOrder, batches

__all__ = [
    "Build",
    "BuildError",
    "ClassInfo",
    "EpochOrder",
    "SegprepError",
    "SplitDataset",
    "batches",
    "open",
]
