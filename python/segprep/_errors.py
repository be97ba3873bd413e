"""Exceptions of the Python package: each names the file and says what to do."""


class SegprepError(Exception):
    """Base of every error `import segprep` raises."""


class BuildError(SegprepError):
    """The folder is not a finished build, or one of its files is missing or altered."""
