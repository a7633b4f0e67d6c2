"""``import``: store the items of a JSON Lines file, in batches, stoppable and resumable.

Each line is one item's serialised form (what ``export`` writes); it becomes
an item through ``deserialize_item`` and is stored with ``add_items``, a
batch of :data:`IMPORT_BATCH` lines at a time.

Resuming: writes are addressed by pk, so running the same import again
converges to the same state — nothing is duplicated, the file wins.
``--skip-existing`` instead skips every pk already stored (one read, no
write), which makes the re-run cheap and keeps changes made since.

Stopping: the first Ctrl-C stops the import once the writes in flight are
done (:mod:`.interrupt`), so nothing is left half-written, and the message
says up to which line the file is stored.  A second Ctrl-C, a crash or a
failed write can cut writes off mid-way: they leave index entries and
unique-value claims that reads ignore, which ``ssshelf check`` reports as
problems (after the grace period) until ``ssshelf repair`` removes them; the
stop message gives both commands.  An import that meets such claims on
items it writes waits until they expire (the unique lease), and says so
(:mod:`.claims`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import BulkWriteError, SerializationError, SSShelfError, StorageError
from ..managers import CManager
from .bounded import map_bounded
from .claims import Claim, unfinished_claims, waiting_note
from .console import Console
from .hints import command_line
from .interrupt import EXIT_INTERRUPTED, CtrlC
from .progress import Progress

#: Lines parsed, and items written, per batch of an import.
IMPORT_BATCH = 500
#: Seconds without progress after which an import looks for what it waits for.
STALL_SECONDS = 2.0


@dataclass
class _Batch:
    """Items of consecutive lines, keyed by pk (a repeated pk keeps its last line)."""

    items: dict[str, Any]
    #: pk -> the first line of the batch naming it
    first_line: dict[str, int]
    last_line: int


@dataclass
class _Run:
    """How far an import got."""

    name: str
    written: int = 0
    skipped: int = 0
    #: every line up to this one is stored
    stored_through: int = 0
    #: the last line of the batch being written
    writing_through: int = 0
    #: writes were in flight when it stopped
    cut_off: bool = False
    #: claims of unfinished earlier writes this run met (and waited for)
    met: list[Claim] = field(default_factory=list)


async def run_import(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Store every item of a JSON Lines file (``-`` for stdin); see the module docstring.

    Stops at the first bad line or failed write (exit 2), after the batches
    before it were written, saying how far it got and what to run; on Ctrl-C
    (exit 130) likewise.  Prints ``imported N items (M skipped)`` on stderr
    when done.
    """
    name = "stdin" if args.input_stream is None else args.file
    stream: IO[Any] = args.input_stream or getattr(sys.stdin, "buffer", None) or sys.stdin
    progress = Progress("import", console.err, unit="lines")
    if progress.enabled:
        progress.total = count_lines(stream)
    run = _Run(name)

    def stopping() -> None:
        progress.close()
        console.note(
            "import: stopping once the writes in flight are done (Ctrl-C again to stop at "
            "once, leaving what they wrote for ssshelf repair)"
        )

    try:
        with CtrlC(stopping) as stop:
            for lines in _read_batches(stream, name):
                if stop.requested:
                    break
                batch = _batch(manager, lines, name)
                await _store(manager, batch, args.skip_existing, run, stop, progress, console)
                if stop.requested:
                    break
    except BaseException as exc:
        progress.close()
        console.note(_stopped(run, manager, args, exc))
        if isinstance(exc, BulkWriteError):
            raise exc.error from exc  # the note above already says how far it got
        raise
    progress.close()
    if stop.requested:
        console.note(
            f"import stopped (Ctrl-C): {_how_far(run)}; the writes in flight were finished, "
            "so nothing is left half-written. Run the same import again to go on "
            "(--skip-existing skips what is stored)."
        )
        return EXIT_INTERRUPTED
    console.note(f"imported {run.written} items ({run.skipped} skipped)")
    if run.met:
        console.note(
            "The writes that left those claims also left index entries: "
            f"{_check_and_repair(manager, args)}"
        )
    return 0


async def _store(
    manager: CManager,
    batch: _Batch,
    skip_existing: bool,
    run: _Run,
    stop: CtrlC,
    progress: Progress,
    console: Console,
) -> None:
    """Write one batch; on a stop request, only the items started before it."""
    before = progress.done
    if skip_existing:
        for pk in await _stored(manager, list(batch.items)):
            del batch.items[pk]
            run.skipped += 1
        progress(before + len(batch.first_line) - len(batch.items))
    base = progress.done
    fed: list[str] = []

    def feed() -> Iterator[Any]:
        for pk, item in batch.items.items():
            if stop.requested:
                return
            fed.append(pk)
            yield item

    def report(done: int) -> None:
        progress(base + done)

    run.writing_through = batch.last_line
    watch = asyncio.create_task(
        _explain_waits(manager, batch, run, progress, console, manager.clock())
    )
    stop.writing = run.cut_off = True
    try:
        run.written += await manager.add_items(feed(), progress=report)
    finally:
        stop.writing = False
        watch.cancel()
        (outcome,) = await asyncio.gather(watch, return_exceptions=True)
    run.cut_off = False
    if isinstance(outcome, Exception):
        raise outcome
    left = [batch.first_line[pk] for pk in list(batch.items)[len(fed) :]]
    run.stored_through = min(left) - 1 if left else batch.last_line
    progress(run.stored_through)


async def _explain_waits(
    manager: CManager,
    batch: _Batch,
    run: _Run,
    progress: Progress,
    console: Console,
    started: float,
) -> None:
    """Once the batch makes no progress for :data:`STALL_SECONDS`, say which
    claims of unfinished writes it waits for, if that is why.  Only claims
    made before the batch ``started`` (by ``manager.clock``, which stamps
    them) count: later ones may be its own."""
    seen = progress.done
    while True:
        await asyncio.sleep(STALL_SECONDS)
        if progress.done != seen:
            seen = progress.done
            continue
        try:
            claims = await unfinished_claims(manager, batch.items.values(), made_before=started)
        except SSShelfError:
            return  # only advice: the writes themselves report what failed
        if claims:
            run.met += claims
            progress.close()
            console.note(waiting_note(claims, manager.unique_lease))
        return


def _how_far(run: _Run) -> str:
    if run.stored_through:
        return f"{run.name} is stored up to line {run.stored_through}"
    return f"nothing of {run.name} was stored"


def _stopped(run: _Run, manager: CManager, args: argparse.Namespace, exc: BaseException) -> str:
    """The note of an import stopped by ``exc``: how far it got, what to do next."""
    cause = exc.error if isinstance(exc, BulkWriteError) else exc
    # Writes refused (a taken value, a bad item) clean up after themselves; a
    # cancelled write, or one whose answer was lost, leaves what it wrote.
    leftovers = run.cut_off and not (
        isinstance(cause, SSShelfError) and not isinstance(cause, StorageError)
    )
    if not leftovers:
        return f"import stopped: {_how_far(run)}; fix the problem and run the same import again"
    lines = f"lines {run.stored_through + 1} to {run.writing_through}"
    if run.stored_through:
        text = f"{_how_far(run)}, and {lines} were being written"
    else:
        text = f"{lines} of {run.name} were being written"
    lease = manager.unique_lease
    return (
        f"import stopped: {text} when the writes in flight were cut off mid-way: some of "
        "those lines may be stored, some not. The writes cut off can leave index entries "
        f"and unique-value claims behind, which reads ignore: {_check_and_repair(manager, args)} "
        "Run the same import again to go on (--skip-existing skips what is stored); it waits "
        f"up to {lease:g} s for those claims to expire. A single Ctrl-C stops an import "
        "after the writes in flight instead, leaving nothing behind."
    )


def _check_and_repair(manager: CManager, args: argparse.Namespace) -> str:
    lease = manager.unique_lease
    return (
        f"`{command_line(args, ['check'])}` reports them as problems once they are older than "
        f"the grace period ({lease:g} s, in flight until then), until "
        f"`{command_line(args, ['repair'])}` removes them."
    )


def count_lines(stream: IO[Any]) -> int | None:
    """The lines of a regular file, read through once and rewound; ``None`` for
    anything else (a pipe, a terminal), whose length is unknown."""
    try:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            return None
        start = stream.tell()
    except (OSError, AttributeError, ValueError):
        return None
    count = 0
    last: bytes | str = "\n"
    for chunk in iter(lambda: stream.read(1 << 20), b"" if "b" in stream.mode else ""):
        count += chunk.count(b"\n" if isinstance(chunk, bytes) else "\n")
        last = chunk[-1:]
    stream.seek(start)
    return count + (0 if last in ("\n", b"\n") else 1)


def _read_batches(stream: IO[Any], name: str) -> Iterator[list[tuple[int, bytes]]]:
    """Non-blank lines of ``stream`` as (line number, bytes), checked to be JSON."""
    batch: list[tuple[int, bytes]] = []
    for number, text in _lines(stream, name):
        if not text:
            continue
        try:
            json.loads(text)
        except ValueError as exc:
            raise SerializationError(f"{name}, line {number}: not JSON ({exc})") from None
        batch.append((number, text.encode("utf-8")))
        if len(batch) >= IMPORT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _lines(stream: IO[Any], name: str) -> Iterator[tuple[int, str]]:
    """(number, stripped text) of each line; bytes that are not UTF-8 are a
    :class:`SerializationError` naming the line."""
    for number, line in enumerate(stream, start=1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise SerializationError(
                    f"{name}, line {number}: not UTF-8 text ({exc.reason} at byte {exc.start + 1})"
                ) from None
        yield number, line.strip()


def _batch(manager: CManager, lines: list[tuple[int, bytes]], name: str) -> _Batch:
    """Deserialise a batch of lines into items keyed by pk."""
    im = manager.item_manager
    batch = _Batch({}, {}, lines[-1][0])
    for number, data in lines:
        try:
            item = im.deserialize_item(data)
            pk = str(im.get_pk(item))
        except Exception as exc:
            why = str(exc) if isinstance(exc, SSShelfError) else repr(exc)
            raise SerializationError(
                f"{name}, line {number}: not an item of {type(manager).__name__}: {why}"
            ) from None
        batch.items.pop(pk, None)
        batch.items[pk] = item
        batch.first_line.setdefault(pk, number)
    return batch


async def _stored(manager: CManager, pks: list[str]) -> set[str]:
    """Which of ``pks`` exist now (a corrupt item counts as existing)."""
    keys = [manager.layout.item_key(pk) for pk in pks]
    results = await map_bounded(manager.storage.get, keys, manager.max_concurrency)
    found: set[str] = set()
    for pk, result in zip(pks, results, strict=True):
        if isinstance(result, Exception):
            raise result
        if result is not None:
            found.add(pk)
    return found
