"""The ``ssshelf`` command line, run in-process through ``main(argv)``.

Each test works in its own directory holding ``cli_links.py`` (the user's
manager module, imported by ``--manager cli_links:Links``) and an SQLite
store; one test runs the real console script in a subprocess.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ssshelf.cli import main
from ssshelf.cli.console import Console
from ssshelf.managers import CManager
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.url import open_storage
from ssshelf.testing import FaultyStorage, SimulatedCrash

MANAGER_MODULE = textwrap.dedent(
    '''
    """A user's manager module, as the CLI imports it."""
    from datetime import datetime

    from ssshelf import CManager, Collection, Desc, IManager


    class NewestFirst(Collection):
        def key(self, item):
            return (Desc(datetime.fromisoformat(item["created_at"])),)


    class ByTag(Collection):
        def key(self, item):
            return [(t,) for t in item.get("tags", [])]


    class ByRank(Collection):
        def key(self, item):
            return (item["rank"],)


    class Alias(Collection):
        unique = True

        def key(self, item):
            return item.get("alias")


    class Links(CManager):
        item_manager = IManager()
        namespace = "links"
        by_created = NewestFirst()
        by_tag = ByTag()
        by_rank = ByRank()
        by_alias = Alias()


    class ByNegativeRank(Collection):
        def key(self, item):
            return (-item["rank"],)


    class Reranked(Links):
        by_rank = ByNegativeRank()


    class Pickled(IManager):
        def serialize_item(self, item):
            return repr(item).encode()

        def deserialize_item(self, data):
            return {"pk": "x"}


    class Opaque(CManager):
        item_manager = Pickled()
        namespace = "links"


    class BadNamespace(Links):
        namespace = "has spaces"


    class Fussy(Links):
        def __init__(self, storage):
            raise TypeError("Fussy needs a colour")


    NOT_A_MANAGER = 42
    '''
)

ITEMS = [
    {
        "pk": f"p{n}",
        "url": f"https://example.com/{n}",
        "created_at": f"2024-05-0{n}T10:00:00",
        "tags": ["py", "news"] if n % 2 else ["py"],
        "rank": n,
        **({"alias": f"alias{n}"} if n <= 2 else {}),
    }
    for n in range(1, 6)
]


class CLI:
    """Runs ``main(argv)`` against this test's store and captures its output."""

    def __init__(self, directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.directory = directory
        self.url = f"sqlite:///{directory / 'store.db'}"
        self.capsys = capsys

    def __call__(self, *argv: str, manager: bool = True) -> tuple[int, str, str]:
        args = [*argv, "--url", self.url]
        if manager:
            args += ["--manager", "cli_links:Links"]
        code = main(args)
        out, err = self.capsys.readouterr()
        return code, out, err

    def run_hint(self, err: str) -> tuple[int, str, str]:
        """Run the command a "more follow" hint on stderr spells out, as pasted."""
        hint = err.strip().rsplit("follow: ", 1)[1]
        words = shlex.split(hint)
        assert words[0] == "ssshelf"
        code = main(words[1:])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json_lines(self, text: str) -> list[Any]:
        return [json.loads(line) for line in text.splitlines()]

    def create_store(self, path: Path | None = None) -> None:
        """An empty ssshelf store at ``path`` (default: this test's store)."""
        asyncio.run(SQLiteStorage(path or self.directory / "store.db").close())

    def seed(self, items: list[dict[str, Any]] = ITEMS) -> None:
        source = self.directory / "seed.jsonl"
        source.write_text("".join(json.dumps(i) + "\n" for i in items))
        code, _, err = self("import", str(source))
        assert code == 0, err

    def manager(self) -> CManager:
        import cli_links  # type: ignore[import-not-found]

        links: type[CManager] = cli_links.Links
        return links(open_storage(self.url))

    def storage_call(self, method: str, *args: Any) -> Any:
        async def go() -> Any:
            storage = open_storage(self.url)
            try:
                return await getattr(storage, method)(*args)
            finally:
                await storage.close()

        return asyncio.run(go())


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[CLI]:
    (tmp_path / "cli_links.py").write_text(MANAGER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("SSSHELF_MANAGER", raising=False)
    sys.modules.pop("cli_links", None)
    yield CLI(tmp_path, capsys)
    sys.modules.pop("cli_links", None)


# -- raw storage: ls and cat ------------------------------------------------------


def test_ls_lists_every_object_in_byte_order(cli: CLI) -> None:
    cli.seed()
    code, out, err = cli("ls", "--all", manager=False)
    keys = out.splitlines()
    assert code == 0 and err == ""
    assert keys == sorted(keys, key=lambda k: k.encode())
    assert [k for k in keys if k.startswith("links/items/")] == [
        f"links/items/p{n}" for n in range(1, 6)
    ]
    assert "links/u/by_alias/salias1!" in keys


def test_ls_pages_with_a_hint_for_the_next_page(cli: CLI) -> None:
    cli.seed()
    code, first, err = cli("ls", "links/items/", "--limit", "2", manager=False)
    assert code == 0
    assert first.splitlines() == ["links/items/p1", "links/items/p2"]
    assert err == (
        "more keys follow: ssshelf ls links/items/ --limit 2 "
        f"--url {cli.url} --after links/items/p2\n"
    )
    code, second, err = cli.run_hint(err)
    assert second.splitlines() == ["links/items/p3", "links/items/p4"]
    code, rest, err = cli.run_hint(err)
    assert (code, rest, err) == (0, "links/items/p5\n", "")


def test_ls_json_gives_keys_and_cursor(cli: CLI) -> None:
    cli.seed()
    code, out, _ = cli("ls", "links/items/", "--limit", "3", "--json", manager=False)
    assert code == 0
    assert json.loads(out) == {
        "keys": ["links/items/p1", "links/items/p2", "links/items/p3"],
        "after": "links/items/p3",
    }
    _, out, _ = cli("ls", "links/u/", "--json", manager=False)
    assert json.loads(out)["after"] is None


def test_cat_shows_an_item_object_as_header_and_item(cli: CLI) -> None:
    cli.seed()
    code, out, _ = cli("cat", "links/items/p1", manager=False)
    document = json.loads(out)
    assert code == 0
    assert document["item"] == ITEMS[0]
    assert document["ssshelf"]["pk"] == "p1"
    assert set(document["ssshelf"]["e"]) == {"by_created", "by_tag", "by_rank", "by_alias"}
    assert out.startswith('{\n  "ssshelf"'), "pretty-printed"


def test_cat_pretty_prints_json_and_passes_other_bytes_through(cli: CLI) -> None:
    cli.storage_call("put", "plain.json", b'{"b": [1, 2]}')
    cli.storage_call("put", "blob.bin", b"\x00\xffnot json")
    cli.storage_call("put", "odd-header", b"ssshelf:1 {broken\npayload")
    cli.storage_call("put", "no-newline", b"ssshelf:1 {}")
    cli.storage_call("put", "text-payload", b'ssshelf:1 {"pk": "t"}\nplain text')

    def cat(*argv: str) -> bytes:
        raw = io.BytesIO()
        out = io.TextIOWrapper(raw, encoding="utf-8")
        assert main(["cat", *argv, "--url", cli.url], Console(out=out)) == 0
        out.flush()
        return raw.getvalue()

    assert cat("plain.json") == b'{\n  "b": [\n    1,\n    2\n  ]\n}\n'
    assert cat("blob.bin") == b"\x00\xffnot json"
    assert cat("plain.json", "--raw") == b'{"b": [1, 2]}'
    assert cat("odd-header") == b"ssshelf:1 {broken\npayload"
    assert cat("no-newline") == b"ssshelf:1 {}"
    assert json.loads(cat("text-payload")) == {"ssshelf": {"pk": "t"}, "item": "plain text"}


def test_cat_of_a_missing_key_exits_1(cli: CLI) -> None:
    cli.create_store()
    code, out, err = cli("cat", "no/such/key", manager=False)
    assert (code, out) == (1, "")
    assert err == "ssshelf: error: no object with key 'no/such/key'\n"


# -- through the manager: get, list, stats ----------------------------------------


def test_get_prints_the_item_by_pk_or_unique_value(cli: CLI) -> None:
    cli.seed()
    code, out, _ = cli("get", "p3")
    assert code == 0 and json.loads(out) == ITEMS[2]
    code, out, _ = cli("get", "--by", "by_alias", "alias2")
    assert code == 0 and json.loads(out) == ITEMS[1]


def test_get_of_nothing_exits_1_and_says_so(cli: CLI) -> None:
    cli.seed()
    assert cli("get", "nope")[::2] == (1, "ssshelf: error: no item with pk 'nope'\n")
    code, _, err = cli("get", "--by", "by_alias", "nope")
    assert code == 1 and "no item holds 'nope' in 'by_alias'" in err
    code, _, err = cli("get", "--by", "by_tag", "py")
    assert code == 2 and "collection 'by_tag' is not unique" in err


def test_list_prints_json_lines_in_index_order_and_pages(cli: CLI) -> None:
    cli.seed()
    code, out, err = cli("list", "by_created", "--limit", "2")
    assert code == 0
    assert [i["pk"] for i in cli.json_lines(out)] == ["p5", "p4"]
    seen = ["p5", "p4"]
    while err:
        code, out, err = cli.run_hint(err)
        assert code == 0
        seen += [i["pk"] for i in cli.json_lines(out)]
    assert seen == ["p5", "p4", "p3", "p2", "p1"]


def test_list_with_prefix_parts_keys_and_json(cli: CLI) -> None:
    cli.seed()
    _, out, _ = cli("list", "by_tag", "--prefix", "news")
    assert [i["pk"] for i in cli.json_lines(out)] == ["p1", "p3", "p5"]
    _, out, _ = cli("list", "by_rank", "--prefix", "int:4")
    assert [i["pk"] for i in cli.json_lines(out)] == ["p4"]
    code, out, err = cli("list", "by_rank", "--prefix", "4")
    assert out == "", "an untagged part is a string, and ranks are ints"
    assert code == 2 and "of type int" in err and "'4' is of type str" in err, err
    code, out, err = cli("list", "by_created", "--prefix", "desc:2024-05-05T10:00:00")
    assert out == "", "a datetime part needs its tag: desc:datetime:..."
    assert code == 2 and "of type datetime" in err and "is of type str" in err, err
    _, out, _ = cli("list", "by_created", "--keys", "--limit", "1", "--json")
    document = json.loads(out)
    assert document["entries"] == [{"key": [{"desc": "2024-05-05T10:00:00+00:00"}], "pk": "p5"}]
    assert document["after"]
    _, out, _ = cli("list", "by_tag", "--prefix", "py", "--json")
    assert [i["pk"] for i in json.loads(out)["items"]] == [f"p{n}" for n in range(1, 6)]
    assert json.loads(out)["after"] is None


def test_list_hint_repeats_the_prefix(cli: CLI) -> None:
    cli.seed()
    _, out, err = cli("list", "by_tag", "--prefix", "py", "--limit", "1")
    assert [i["pk"] for i in cli.json_lines(out)] == ["p1"]
    assert err.startswith(
        f"more follow: ssshelf list by_tag --prefix py --limit 1 --url {cli.url} "
        "--manager cli_links:Links --after "
    )
    _, out, err = cli.run_hint(err)
    assert [i["pk"] for i in cli.json_lines(out)] == ["p2"], "the same prefix, one a page"
    _, out, err = cli("list", "by_rank", "--keys", "--limit", "3")
    _, out, err = cli.run_hint(err)
    assert [row["pk"] for row in cli.json_lines(out)] == ["p4", "p5"], "entries again"


def test_hints_leave_out_what_the_environment_gives(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.seed()
    monkeypatch.setenv("SSSHELF_URL", cli.url)
    monkeypatch.setenv("SSSHELF_MANAGER", "cli_links:Links")
    assert main(["list", "by_created", "--limit", "4"]) == 0
    err = cli.capsys.readouterr().err
    assert err.startswith("more follow: ssshelf list by_created --limit 4 --after ")
    assert [i["pk"] for i in cli.json_lines(cli.run_hint(err)[1])] == ["p1"]


def test_list_of_an_unknown_collection_names_the_known_ones(cli: CLI) -> None:
    cli.create_store()
    code, _, err = cli("list", "nope")
    assert code == 2
    assert "Links has no collection 'nope' (it has: by_alias, by_created, by_rank, by_tag)" in err


def test_list_rejects_a_bad_typed_part(cli: CLI) -> None:
    cli.create_store()
    code, _, err = cli("list", "by_rank", "--prefix", "int:four")
    assert code == 2 and "key part 'int:four'" in err


def test_stats_counts_items_entries_and_reservations(cli: CLI) -> None:
    cli.seed()
    code, out, _ = cli("stats", "--json")
    assert code == 0
    assert json.loads(out) == {
        "namespace": "links",
        "items": 5,
        "item_objects": 5,
        "collections": {
            "by_created": {"items": 5, "entries": 5, "unique": False},
            "by_tag": {"items": 8, "entries": 8, "unique": False},
            "by_rank": {"items": 5, "entries": 5, "unique": False},
            "by_alias": {"items": 2, "entries": 2, "unique": True, "reservations": 2},
        },
    }
    code, out, err = cli("stats")
    assert out.splitlines() == [
        "namespace links",
        "items              5 items (5 item objects)",
        "by_created         5 items, 5 entries",
        "by_tag             8 items, 8 entries",
        "by_rank            5 items, 5 entries",
        "by_alias           2 items, 2 entries, 2 reservations (unique)",
    ]
    assert err == ""


def test_stats_counts_items_apart_from_what_removals_and_crashes_left(cli: CLI) -> None:
    cli.seed()
    links = cli.manager()
    crashing = type(links)(FaultyStorage(links.storage, crash_after=2))

    async def leave_garbage() -> None:
        await links.remove_item("p1")  # a tombstone stays, and no entries
        with pytest.raises(SimulatedCrash):  # entries land, the item never does
            await crashing.add_item({"pk": "p9", "created_at": "2024-06-01T00:00:00", "rank": 9})
        await links.storage.close()

    asyncio.run(leave_garbage())
    code, out, err = cli("stats", "--json")
    counts = json.loads(out)
    assert code == 0 and err == ""
    assert (counts["items"], counts["item_objects"]) == (4, 5)
    assert counts["collections"]["by_created"] == {"items": 4, "entries": 5, "unique": False}
    code, out, err = cli("stats")
    assert code == 0 and "items              4 items (5 item objects)" in out
    assert "ssshelf repair" in err


# -- check, repair, reindex -------------------------------------------------------


def _damage(cli: CLI) -> tuple[str, str]:
    """Delete item p3 (its entries dangle) and one entry of p2 (it goes missing)."""
    cli.storage_call("delete", "links/items/p3")
    page = cli.storage_call("list", "links/c/by_rank/i12/p2")
    cli.storage_call("delete", page.keys[0])
    dangling = cli.storage_call("list", "links/c/by_rank/i13/p3").keys[0]
    return dangling, page.keys[0]


def test_check_of_a_sound_store_says_ok(cli: CLI) -> None:
    cli.seed()
    code, out, _ = cli("check")
    assert code == 0
    assert out.splitlines()[0] == "items scanned          5"
    assert out.splitlines()[-1] == "OK"


def test_check_finds_injected_damage_and_repair_fixes_it(cli: CLI) -> None:
    cli.seed()
    dangling, missing = _damage(cli)
    code, out, _ = cli("check")  # the damage is seconds old: the dangling entries could
    assert code == 1  # be a write's in flight; the missing entry is damage whatever its age
    lines = out.splitlines()
    assert "dangling entries       0" in lines and "in flight entries      4" in lines
    assert f"    {dangling}" in lines
    assert "missing entries        1" in lines
    assert f"    {missing}" in lines
    assert lines[-1] == "PROBLEMS FOUND - run: ssshelf repair"

    code, out, _ = cli("check", "--grace", "0")  # on a quiet store nothing is in flight
    lines = out.splitlines()
    assert code == 1 and "dangling entries       4" in lines
    assert lines[-1] == "PROBLEMS FOUND - run: ssshelf repair --grace 0"

    code, out, _ = cli("check", "--grace", "0", "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert (report["dangling_entries"], report["missing_entries"]) == (4, 1)
    assert report["stale_reservations"] == 0

    code, out, err = cli("repair")
    assert code == 0
    assert "restored entries       1" in out.splitlines()
    assert "left alone: younger than the grace period" in err
    code, out, _ = cli("check")  # what repair leaves alone, check calls in flight: exit 0
    assert code == 0 and out.splitlines()[-1].startswith("OK (4 in flight")

    code, out, _ = cli("repair", "--grace", "0", "--json")
    assert code == 0 and json.loads(out)["deleted_entries"] == 4
    assert cli("check", "--grace", "0")[0] == 0


def test_check_lists_at_most_ten_examples_per_kind(cli: CLI) -> None:
    items = [{"pk": f"q{n:02d}", "created_at": "2024-01-01T00:00:00", "rank": n} for n in range(12)]
    cli.seed(items)
    for item in items:
        cli.storage_call("delete", f"links/items/{item['pk']}")
    code, out, _ = cli("check", "--grace", "0")
    assert code == 1
    assert "    ... and 14 more (--json lists up to 24)" in out.splitlines()


def test_reindex_rebuilds_a_collection_whose_key_changed(cli: CLI) -> None:
    cli.seed()
    argv = ["--url", cli.url, "--manager", "cli_links:Reranked"]
    assert main(["reindex", "by_rank", *argv]) == 0
    assert cli.capsys.readouterr().out.splitlines() == [
        "collection             by_rank",
        "items scanned          5",
        "reindexed              5",
        "failed                 0",
    ]
    assert main(["list", "by_rank", *argv]) == 0
    listed = cli.json_lines(cli.capsys.readouterr().out)
    assert [i["pk"] for i in listed] == ["p5", "p4", "p3", "p2", "p1"]
    assert main(["reindex", "by_rank", "--json", *argv]) == 0
    assert json.loads(cli.capsys.readouterr().out)["reindexed"] == 0, "already right"
    code, _, err = cli("reindex", "nope")
    assert code == 2 and "Links has no collection 'nope'" in err


def test_reindex_reports_items_it_could_not_read(cli: CLI) -> None:
    cli.seed()
    cli.storage_call("put", "links/items/broken", b"not an item")
    code, out, _ = cli("reindex", "by_rank")
    assert code == 1
    assert "failed                 1" in out.splitlines()


# -- export and import ------------------------------------------------------------


def test_export_then_import_round_trips_into_another_store(cli: CLI, tmp_path: Path) -> None:
    cli.seed()
    code, out, _ = cli("export")
    assert code == 0
    assert cli.json_lines(out) == ITEMS, "pk order, one item a line"
    dump = tmp_path / "dump.jsonl"
    code, _, err = cli("export", "--output", str(dump), "--page-size", "2")
    assert code == 0 and err == f"exported 5 items to {dump}\n"
    assert dump.read_text() == out

    other = f"sqlite:///{tmp_path / 'other.db'}"
    code = main(["import", str(dump), "--url", other, "--manager", "cli_links:Links"])
    assert code == 0
    assert cli.capsys.readouterr().err == "imported 5 items (0 skipped)\n"
    assert (
        main(["list", "by_tag", "--prefix", "news", "--url", other, "--manager", "cli_links:Links"])
        == 0
    )
    assert [i["pk"] for i in cli.json_lines(cli.capsys.readouterr().out)] == ["p1", "p3", "p5"]


def test_import_from_stdin_skips_blank_lines(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(ITEMS[0]) + "\n\n"))
    code, _, err = cli("import", "-")
    assert (code, err) == (0, "imported 1 items (0 skipped)\n")


def test_rerunning_an_interrupted_import_finishes_without_duplicates(
    cli: CLI, tmp_path: Path
) -> None:
    many = [
        {"pk": f"m{n:04d}", "created_at": "2024-01-01T00:00:00", "rank": n, "tags": ["t"]}
        for n in range(1200)
    ]
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps(i) + "\n" for i in many))
    # The "interrupted" run got through the first 700 lines.
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(json.dumps(i) + "\n" for i in many[:700]))
    assert cli("import", str(partial))[0] == 0

    code, _, err = cli("import", str(source), "--skip-existing")
    assert (code, err) == (0, "imported 500 items (700 skipped)\n")
    code, _, err = cli("import", str(source))
    assert (code, err) == (0, "imported 1200 items (0 skipped)\n")

    _, out, _ = cli("stats", "--json")
    counts = json.loads(out)
    assert counts["items"] == 1200
    assert counts["collections"]["by_rank"]["entries"] == 1200
    assert counts["collections"]["by_tag"]["entries"] == 1200
    assert cli("check")[0] == 0


def test_skip_existing_keeps_items_changed_since_the_export(cli: CLI, tmp_path: Path) -> None:
    cli.seed()
    dump = tmp_path / "dump.jsonl"
    assert cli("export", "-o", str(dump))[0] == 0
    changed = {**ITEMS[0], "url": "https://example.com/changed"}
    cli.seed([changed])
    assert cli("import", str(dump), "--skip-existing")[0] == 0
    assert json.loads(cli("get", "p1")[1])["url"] == "https://example.com/changed"
    assert cli("import", str(dump))[0] == 0
    assert json.loads(cli("get", "p1")[1])["url"] == "https://example.com/1", "the file wins"


def test_import_keeps_the_last_line_of_a_repeated_pk(cli: CLI) -> None:
    cli.seed([{**ITEMS[0], "rank": 1}, {**ITEMS[0], "rank": 9}])
    assert json.loads(cli("get", "p1")[1])["rank"] == 9


def test_import_stops_at_a_bad_line_naming_it(cli: CLI, tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps(ITEMS[0]) + "\n{oops\n")
    code, _, err = cli("import", str(source))
    assert code == 2 and f"{source}, line 2: not JSON" in err
    source.write_text('{"no_pk": 1}\n')
    code, _, err = cli("import", str(source))
    assert code == 2 and "line 1: not an item of Links: item has no 'pk' key (keys: 'no_pk')" in err
    source.write_text('{"pk": null}\n')
    code, _, err = cli("import", str(source))
    assert "line 1: not an item of Links: item pk must be a non-empty str or an int, got" in err


def test_a_failed_import_says_how_far_it_got(cli: CLI, tmp_path: Path) -> None:
    lines = [
        json.dumps({"pk": f"m{n:04d}", "created_at": "2024-01-01T00:00:00", "rank": n})
        for n in range(600)
    ]
    lines[549] = json.dumps({"pk": "clash", "created_at": "2024-01-01T00:00:00", "rank": 0,
                             "alias": "alias1"})  # fmt: skip
    source = tmp_path / "clash.jsonl"
    source.write_text("\n".join(lines) + "\n")
    cli.seed(ITEMS[:1])
    code, _, err = cli("import", str(source))
    assert code == 2
    assert f"import stopped: {source} is stored up to line 500;" in err
    assert err.splitlines()[-1].startswith("ssshelf: error: by_alias 'alias1' is already taken")
    assert json.loads(cli("stats", "--json")[1])["items"] >= 501


def test_import_of_a_missing_file_is_a_usage_error(cli: CLI) -> None:
    code, _, err = cli("import", "missing.jsonl")
    assert code == 2
    assert err == "ssshelf: error: No such file or directory: missing.jsonl\n"


def test_export_skips_unreadable_items_and_exits_1(cli: CLI) -> None:
    cli.seed(ITEMS[:2])
    cli.storage_call("put", "links/items/broken", b"garbage")
    code, out, err = cli("export")
    assert code == 1
    assert [i["pk"] for i in cli.json_lines(out)] == ["p1", "p2"]
    assert "skipped unreadable item 'broken'" in err


def test_export_needs_json_payloads(cli: CLI) -> None:
    cli.seed(ITEMS[:1])
    code = main(["export", "--url", cli.url, "--manager", "cli_links:Opaque"])
    err = cli.capsys.readouterr().err
    assert code == 2 and "item 'p1' does not serialise to JSON" in err


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["get", "x"], "this command needs the manager: pass --manager module:Class"),
        (
            ["get", "x", "--manager", "cli_links"],
            "--manager 'cli_links' must look like module:Class",
        ),
        (["get", "x", "--manager", "nomodule:X"], "cannot import module 'nomodule'"),
        (["get", "x", "--manager", "cli_links:Nope"], "module 'cli_links' has no attribute 'Nope'"),
        (["get", "x", "--manager", "cli_links:NOT_A_MANAGER"], "is not a CManager subclass"),
        (["get", "x", "--manager", "cli_links:BadNamespace"], "namespace name 'has spaces'"),
        (["ls", "--url", "ftp://x"], "unknown storage URL 'ftp://x'"),
        (["ls", "--url", "sqlite:///no/such/dir/x.db"], "directory"),
        (["ls", "--limit", "5000"], "argument --limit: must be between 1 and 1000"),
        (["ls", "--limit", "many"], "argument --limit: not a number: 'many'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_expected_errors_are_one_line_and_exit_2(cli: CLI, argv: list[str], message: str) -> None:
    cli.create_store(cli.directory / "ssshelf.db")  # the default store, so that URLs are not why
    code = main(argv)
    out, err = cli.capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("ssshelf: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_manager_and_url_come_from_the_environment(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.seed(ITEMS[:1])
    monkeypatch.setenv("SSSHELF_URL", cli.url)
    monkeypatch.setenv("SSSHELF_MANAGER", "cli_links:Links")
    assert main(["get", "p1"]) == 0
    assert json.loads(cli.capsys.readouterr().out)["pk"] == "p1"


def test_the_default_store_is_ssshelf_db_in_the_current_directory(cli: CLI) -> None:
    source = cli.directory / "one.jsonl"
    source.write_text(json.dumps(ITEMS[0]) + "\n")
    assert main(["ls"]) == 2, "readers never create the default store"
    assert not (cli.directory / "ssshelf.db").exists()
    assert main(["import", str(source), "--manager", "cli_links:Links"]) == 0
    assert (cli.directory / "ssshelf.db").exists()
    cli.capsys.readouterr()
    assert main(["ls", "links/items/"]) == 0
    assert cli.capsys.readouterr().out == "links/items/p1\n"


def test_help_exits_0(cli: CLI) -> None:
    assert main(["--help"]) == 0
    assert "check" in cli.capsys.readouterr().out


def test_a_closed_stdout_ends_quietly(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.seed(ITEMS[:1])

    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["export", "--url", cli.url, "--manager", "cli_links:Links"]) == 0


def test_ctrl_c_exits_130(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("ssshelf.cli.app._run", interrupted)
    assert main(["ls"]) == 130
    assert cli.capsys.readouterr().err == "ssshelf: error: interrupted\n"


def test_the_console_script_runs_in_a_subprocess(cli: CLI) -> None:
    cli.seed(ITEMS[:2])
    env = {**os.environ, "SSSHELF_URL": cli.url, "SSSHELF_MANAGER": "cli_links:Links"}
    done = subprocess.run(
        [sys.executable, "-m", "ssshelf", "list", "by_created"],
        cwd=cli.directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["pk"] for line in done.stdout.splitlines()] == ["p2", "p1"]
    script = Path(sys.executable).with_name("ssshelf")
    done = subprocess.run(
        [str(script), "check"],
        cwd=cli.directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.endswith("OK\n")
    done = subprocess.run(
        [str(script), "get", "p1", "--manager", "nomodule:X"],
        cwd=cli.directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "ssshelf: error: cannot import module 'nomodule' for --manager: "
        "No module named 'nomodule'\n"
    )


def test_python_dash_m_ssshelf_runs_main(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    cli.create_store()
    monkeypatch.setattr(sys, "argv", ["ssshelf", "ls", "--url", cli.url])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("ssshelf", run_name="__main__")
    assert done.value.code == 0


def test_key_parts_are_shown_as_json() -> None:
    from datetime import date

    from ssshelf.cli.render import key_json
    from ssshelf.keys import Desc

    assert key_json(("a", 1, True, b"\x01\xff", date(2024, 5, 1), Desc(b"\x00"))) == [
        "a",
        1,
        True,
        "01ff",
        "2024-05-01",
        {"desc": "00"},
    ]


# -- in-process checks of what tests/test_cli_edges.py runs as processes -------------


def test_ls_with_no_match_names_the_top_level_prefixes(cli: CLI) -> None:
    cli.seed(ITEMS[:1])
    cli.storage_call("put", "plain.json", b"{}")
    cli.storage_call("put", "zeta/x", b"")
    code, out, err = cli("ls", "bookmarks/", manager=False)
    assert (code, out) == (0, "")
    assert err == (
        "no keys starting with 'bookmarks/'; "
        "the store's keys start with: links/, plain.json, zeta/\n"
    )
    code, out, err = cli("ls", "--after", "zz", manager=False)
    assert err.startswith("no keys after 'zz'; the store's keys start with: links/")


def test_ls_names_at_most_ten_prefixes(cli: CLI) -> None:
    cli.create_store()
    for n in range(12):
        cli.storage_call("put", f"ns{n:02d}/k", b"")
    _, _, err = cli("ls", "nothing/", manager=False)
    assert err.endswith("ns07/, ns08/, ns09/, …\n") and "ns10/" not in err


def test_cat_describes_entries_and_reservations(cli: CLI) -> None:
    cli.seed(ITEMS[:1])
    entry = cli.storage_call("list", "links/c/by_rank/").keys[0]
    code, out, _ = cli("cat", entry, manager=False)
    assert code == 0
    assert json.loads(out)["index_entry"] == {
        "namespace": "links",
        "collection": "by_rank",
        "key": [1],
        "pk": "p1",
        "write": entry.rsplit("!", 1)[1],
    }
    _, out, _ = cli("cat", "links/u/by_alias/salias1!", manager=False)
    document = json.loads(out)
    assert document["reservation"]["value"] == ["alias1"]
    assert document["holder"]["pk"] == "p1"


def test_describe_key_leaves_other_objects_alone() -> None:
    from ssshelf.cli.render import describe_key

    assert describe_key("links/c/by_rank/i11/p1!abc", b"not empty") is None
    assert describe_key("links/c/by_rank/garbage", b"") is None
    assert describe_key("links/u/by_alias/salias1!", b"not json") is None
    assert describe_key("has spaces/c/x/i11/p1!ab", b"") is None
    assert describe_key("links/items/p1", b"") is None
    assert describe_key("links", b"") is None


def test_an_export_that_fails_leaves_the_old_file(cli: CLI, tmp_path: Path) -> None:
    cli.seed(ITEMS[:2])
    target = tmp_path / "backup.jsonl"
    target.write_text("old\n")
    argv = ["export", "-o", str(target), "--url", cli.url, "--manager", "cli_links:Opaque"]
    assert main(argv) == 2
    assert "does not serialise to JSON" in cli.capsys.readouterr().err
    assert target.read_text() == "old\n"
    assert not list(tmp_path.glob("*.partial"))


def test_a_manager_that_cannot_be_made_or_imported_is_one_line(cli: CLI) -> None:
    cli.create_store()
    assert main(["stats", "--url", cli.url, "--manager", "cli_links:Fussy"]) == 2
    assert cli.capsys.readouterr().err == (
        "ssshelf: error: cannot create cli_links:Fussy over the store: "
        "TypeError: Fussy needs a colour\n"
    )
    (cli.directory / "raising.py").write_text("raise RuntimeError('no config here')\n")
    assert main(["stats", "--url", cli.url, "--manager", "raising:X"]) == 2
    assert cli.capsys.readouterr().err == (
        "ssshelf: error: module 'raising' for --manager failed while importing: "
        "RuntimeError: no config here\n"
    )


def test_an_import_that_is_not_utf8_or_not_json_names_the_line(cli: CLI, tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b'{"pk": "a", "created_at": "2024-01-01T00:00:00", "rank": 1}\n\xff\n')
    code, _, err = cli("import", str(source))
    assert code == 2
    assert err.splitlines() == [
        f"import stopped: nothing of {source} was stored; fix the problem and run the same "
        "import again",
        f"ssshelf: error: {source}, line 2: not UTF-8 text (invalid start byte at byte 1)",
    ]


def test_console_errors_are_one_line() -> None:
    err = io.StringIO()
    Console(err=err).error("first\n  second\n")
    assert err.getvalue() == "ssshelf: error: first second\n"
