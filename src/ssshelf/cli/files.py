"""Files the CLI writes: in full or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO


@contextmanager
def written_in_full(path: str) -> Iterator[IO[str]]:
    """A text stream whose content appears at ``path`` only once the block ends normally.

    It writes a temporary file beside ``path`` and renames it over ``path`` at
    the end; an exception or interruption (Ctrl-C) removes the temporary file
    and leaves ``path`` as it was.  The new file gets the mode ``path`` had,
    or the one ``open()`` would give a new file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory
        )
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    try:
        os.chmod(temporary, _mode_for(path))
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())  # the rename must not outlive the content (power loss)
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, path) from None
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _mode_for(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
