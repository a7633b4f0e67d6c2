"""Where CLI commands write: results to stdout, notes and errors to stderr."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Console:
    """The two output streams of one CLI run (``sys.stdout``/``sys.stderr`` by default).

    ``secrets`` are masked as ``***`` in every note and error (credentials
    written into a storage URL); results on stdout are data and left as they are.
    """

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    secrets: list[str] = field(default_factory=list)

    def line(self, text: str) -> None:
        """One line of results on stdout."""
        self.out.write(text + "\n")

    def write_bytes(self, data: bytes) -> None:
        """Bytes on stdout unchanged (through the binary buffer when there is one)."""
        self.out.flush()
        buffer = getattr(self.out, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            self.out.write(data.decode("utf-8", errors="backslashreplace"))

    def note(self, text: str) -> None:
        """A remark for a person on stderr (never mixed into results), after the
        results written so far (so that both streams read in order on one screen)."""
        self.out.flush()
        self.err.write(self.mask(text) + "\n")

    def error(self, text: str) -> None:
        """One ``ssshelf: error: …`` line on stderr (a multi-line message is joined)."""
        one_line = " ".join(part.strip() for part in text.splitlines() if part.strip())
        self.out.flush()
        self.err.write(f"ssshelf: error: {self.mask(one_line)}\n")

    def mask(self, text: str) -> str:
        """``text`` with every one of :attr:`secrets` replaced by ``***``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text
