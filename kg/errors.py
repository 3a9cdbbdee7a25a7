"""Errors that the CLI turns into one-line messages with exit code 2."""


class V2HTError(Exception):
    """A user-facing error: the message is shown as is, without a traceback."""


class DataError(V2HTError):
    """Bad input data; the message names the file and line where known."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class StoreError(V2HTError):
    """The graph store is unreachable, rejects credentials, or rejects a query."""


class VideoError(DataError):
    """One video cannot be read (not a video, truncated, no frame): extraction
    counts it and goes on with the others."""


class ToolError(V2HTError):
    """A tool or model file the video pipeline needs is missing or corrupt
    (ffmpeg not found, CNN weights with the wrong sha256): nothing can go on."""
