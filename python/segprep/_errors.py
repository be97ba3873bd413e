"""Exceptions of the Python package: each names the file and says what to do."""

from __future__ import annotations


class SegprepError(Exception):
    """Base of every error `import segprep` raises."""


class BuildError(SegprepError):
    """The folder is not a finished build, or one of its files is missing or altered."""


class PipelineError(SegprepError):
    """The pipeline file is not valid: `problems` lists each, as `segprep check` prints them."""

    def __init__(self, message: str, file: str, problems: list[str]) -> None:
        super().__init__(message)
        self.file, self.problems = file, problems


class DataError(SegprepError):
    """An input file could not be used: `file`, the `stage` that failed and the `reason`, as the
    `segprep` command prints them (a set of problems has no single file: those are None)."""

    def __init__(self, message: str, file: str | None, stage: str | None, reason: str | None) -> None:
        super().__init__(message)
        self.file, self.stage, self.reason = file, stage, reason
