"""The phases ``make bench`` gained for issue 11: the server's floor, SQLite bulk load,
Ceph settings, and a report that says whether it came from one run.

Real parts only: the floor phase runs against the suite's S3 server, the bulk
load writes real SQLite files in processes of their own.  Nothing here is timed
against a threshold; the assertions are about what was measured and reported.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks import driver, report, sqlite_bulk
from benchmarks.config import QUICK
from benchmarks.machine import machine_info, versions
from benchmarks.run import merge
from benchmarks.servers import apply_settings, process_cpu_seconds
from tests.s3_server import S3Endpoint


def _meta(command: str = "make bench", runs: int = 1) -> dict[str, Any]:
    return {
        "command": command,
        "quick": False,
        "started": "now",
        "seconds": 60.0,
        "sizes": asdict(replace(QUICK, runs=1)),
        "machine": machine_info(),
        "load_average_end": [],
        "versions": versions(),
        "seed": {"versions": {}, "error": "not in this test"},
        "runs": runs,
    }


async def test_floor_phase_measures_the_servers_own_time(
    s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_endpoint.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_endpoint.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_endpoint.region)
    delay = 0.01
    floor = await driver.phase_floor(
        {
            "endpoint": s3_endpoint.url,
            "bucket": f"floor-{uuid.uuid4().hex[:12]}",
            "reps": 2,
            "delay": delay,
            "server_pids": [os.getpid()],
        }
    )
    for op in ("page100", "create"):
        assert len(floor["raw"][op]["samples"]) == 2
        # Two dependent round trips, each waiting the delay first.
        assert floor["raw_delayed"][op]["min"] >= 2 * delay
        assert floor["raw"][op]["server_cpu_ms"] >= 0.0
        assert floor["ssshelf"][op]["median"] > 0.0
    assert floor["round_trips"] == {"page100": 2, "create": 2}

    results: dict[str, Any] = {
        "errors": {},
        "s3_server": "ceph",
        "floor": floor,
        "latency": {
            "s3": {
                "ssshelf": {
                    "ops": {
                        op: {
                            "seconds": {"median": 0.2},
                            "requests": 1,
                            "round_trips": 2,
                            "by_kind": {},
                        }
                        for op in ("page100", "create")
                    }
                }
            }
        },
        "meta": _meta(),
    }
    expected = 2 * delay + floor["raw"]["page100"]["median"]
    assert report.floor(results, "page100") == pytest.approx(expected)
    text = report.markdown(results)
    assert "### The floor of this server" in text
    page_target = next(
        t
        for t in report.targets(results)
        if t.name.startswith("page of 100") and "on Ceph RGW" in t.name
    )
    assert page_target.verdict == "FAIL"  # 200 ms against a goal of 60 ms
    assert "this server's floor" in page_target.measured


def test_daemon_cpu_reads_proc_like_the_server_side() -> None:
    before = driver.daemon_cpu_seconds([os.getpid()])
    sum(i * i for i in range(300_000))
    after = driver.daemon_cpu_seconds([os.getpid()])
    assert after >= before
    assert process_cpu_seconds(os.getpid()) >= before


def test_sqlite_bulk_phase_reports_the_ratio_and_peak_memory(tmp_path: Path) -> None:
    said: list[str] = []
    measured = sqlite_bulk.measure(300, 1, tmp_path, False, said.append, ("put_many",))
    assert list(measured) == ["manager", "plain", "put_many"]
    assert {r["rows"] for r in measured.values()} == {1_200}  # 4 objects an item
    assert measured["plain"]["ratio_to_plain"] == 1.0
    assert all(r["max_rss_mib"] > 0 for r in measured.values())
    assert len(said) == 3
    with pytest.raises(ValueError, match="unknown variants"):
        sqlite_bulk.measure(10, 1, tmp_path, False, said.append, ("nope",))
    said.clear()
    twice = sqlite_bulk.measure(100, 2, tmp_path, False, said.append, ("put_many", "put"))
    order = [line.split()[4] for line in said]  # "   100 items  run 1  manager  ..."
    assert order == ["manager", "plain", "put_many", "put", "manager", "plain", "put", "put_many"]
    assert len(twice["put"]["paired_ratios_to_plain"]) == 2

    results: dict[str, Any] = {"errors": {}, "sqlite_bulk": {"300": measured}, "meta": _meta()}
    target = next(t for t in report.targets(results) if t.name.startswith("SQLite bulk"))
    paired = measured["manager"]["paired_ratios_to_plain"]
    assert len(paired) == 1 and paired[0] == measured["manager"]["paired_ratio_to_plain"]
    ratio = (
        measured["manager"]["median_items_per_second"]
        / measured["plain"]["median_items_per_second"]
    )
    assert paired[0] == pytest.approx(ratio)  # one run: the same two measurements
    assert target.passed is (ratio >= report.BULK_RATIO_TARGET)
    text = report.markdown(results)
    assert "## Bulk load on SQLite" in text
    assert "`SQLiteStorage.put_many` of the same rows (diagnostic)" in text
    assert "at 300 items, run by run (plain measured right after the manager)" in text


def test_report_says_whether_it_came_from_one_run() -> None:
    single = report.markdown({"errors": {}, "meta": _meta()})
    assert "every figure below from this one run" in single
    merged_meta = _meta("make bench, then python -m benchmarks.run --only scan", runs=2)
    merged = report.markdown({"errors": {}, "meta": merged_meta})
    assert "one run" not in merged
    # merge() keeps the new phases' figures when they are rerun alone
    fresh = merge({"floor": {"old": 1}, "errors": {}}, {"floor": {"new": 1}, "errors": {}})
    assert fresh["floor"] == {"new": 1}


def test_ceph_settings_replace_add_and_create_sections() -> None:
    template = "[global]\nfsid = x\ndebug rgw = 1/5\n\n[client.rgw.a]\nrgw thread pool size = 64\n"
    text = apply_settings(
        template,
        {
            "global": {"debug_rgw": "0/0", "debug ms": "0/0"},
            "client.rgw.a": {"rgw thread pool size": "8"},
            "osd": {"osd enable op tracker": "false"},
        },
    )
    lines = text.splitlines()
    assert lines[:5] == ["[global]", "fsid = x", "debug rgw = 0/0", "debug ms = 0/0", ""]
    assert "rgw thread pool size = 8" in lines and "rgw thread pool size = 64" not in lines
    assert lines[-2:] == ["[osd]", "osd enable op tracker = false"]
