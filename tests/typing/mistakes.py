"""Mistakes both type checkers must refuse (checked, never run).

Each line carries the error each checker must raise there, as an ignore
comment: ``# type: ignore[code]`` for mypy, ``# pyright: ignore[rule]`` for
pyright.  Both checkers report an ignore that is not needed, so a mistake
that stops being caught fails the check.
"""

from __future__ import annotations

from ssshelf import CManager, Collection
from ssshelf.items import DataclassItems

from .models import B1, Bookmark, Bookmarks, ByUrl, Note, Notes


class NoteItemsForBookmarks(CManager[Bookmark]):
    item_manager = DataclassItems(Note, pk="id")  # type: ignore[arg-type]  # pyright: ignore[reportAssignmentType]


class BookmarkIndexOnNotes(CManager[Note]):
    item_manager = DataclassItems(Note, pk="id")
    by_url = ByUrl()  # a Collection[Bookmark]: reading it is the mistake


class NotesByText(Collection[Note]):
    def key(self, item: Note) -> str:
        return item.text


def edit_note(note: Note) -> Note:
    return note


async def mistakes(m: Bookmarks, notes: Notes, misplaced: BookmarkIndexOnNotes) -> None:
    await m.add_item(42)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await m.create_item(Note("n1", "a note"))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await m.add_items([42])  # type: ignore[list-item]  # pyright: ignore[reportArgumentType]
    await notes.add_item(B1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await m.add_item(B1, if_version=3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await m.update_item("b1", lambda b: 42)  # type: ignore[arg-type, return-value]  # pyright: ignore[reportArgumentType]
    await m.update_item("b1", edit_note)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    page = await m.newest.get_items()
    note: Note = page["items"][0]  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    found: Bookmark = await m.get_item("b1")  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    NotesByText().key(B1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await misplaced.by_url.get_item("x")  # type: ignore[arg-type]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    print(note, found)


def blocking_mistakes() -> None:
    twin = Bookmarks.sync("memory://")
    twin.add_item(42)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    twin.add_items([42])  # type: ignore[list-item]  # pyright: ignore[reportArgumentType]
    twin.update_item("b1", lambda b: 42)  # type: ignore[arg-type, return-value]  # pyright: ignore[reportArgumentType]
    twin.update_item("b1", edit_note)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    url: str = twin.get_item("b1").url  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess]
    note: Note = next(twin.newest.iter_items())  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    twin.newest.get_items(max_keys="ten")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    print(url, note)
