from __future__ import annotations


class ImportFileError(Exception):
    """Bad input in one file: nothing of that file is committed. The message names file and line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path} line {line}" if line else path
        super().__init__(f"{where}: {message}")


class ImportSourceError(Exception):
    """The base, folder or source cannot be read (missing, unreachable, not an export)."""
