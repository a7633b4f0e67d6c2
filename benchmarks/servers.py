"""The S3 server of a benchmark run: Ceph RGW (single node) or moto, on 127.0.0.1.

Ceph's RADOS Gateway is the production server of a distributed store (C++):
S3 figures are measured on it.  moto (single-threaded Python, ~2-3 ms of
server CPU a request) is the fallback where Ceph cannot be started; figures
from it measure moto, not ssshelf.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

#: Any credentials work with moto; both libraries sign with these.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: ``moto_server`` with one memo.  For a request to ``127.0.0.1`` moto looks
#: the host up in ``moto.backends.list_of_moto_modules()``, which lists moto's
#: package directory (about 170 ``stat`` calls) every time, twice a request.
#: Listing it once cuts the server's CPU per request by about a third; nothing
#: it answers changes.  Both libraries talk to the same server.
MOTO_LAUNCHER = """
import sys

import moto.backends
import moto.server

_modules = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: iter(_modules)
sys.argv[0] = "moto_server"
moto.server.main(sys.argv[1:])
"""


def moto_command() -> list[str]:
    """moto's standalone server, run by this interpreter (the project's virtualenv)."""
    if importlib.util.find_spec("moto.server") is None:
        raise RuntimeError("moto's server is not installed: pip install 'moto[server]'")
    return [sys.executable, "-c", MOTO_LAUNCHER]


class MotoServer:
    """moto's ``moto_server -H 127.0.0.1 -p PORT`` in a child process, stopped by :meth:`stop`."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it answers HTTP."""
        env = {**os.environ, **CREDENTIALS}
        argv = [*moto_command(), "-H", "127.0.0.1", "-p", str(self.port)]
        if self._log_path is None:
            self._process = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env
            )
        else:
            with open(self._log_path, "wb") as log:
                self._process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, env=env
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # it answers: up
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        """Terminate the server (by its own pid) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


ROOT = Path(__file__).resolve().parent.parent
CEPH_SCRIPTS = ROOT / "scripts" / "ceph"


#: Ceph settings: section (``global``, ``osd``, ``client.rgw.a``, …) -> option -> value.
CephSettings = dict[str, dict[str, str]]


def apply_settings(template: str, settings: CephSettings) -> str:
    """``ceph.conf.in``'s text with ``settings`` applied.

    An option already in its section is replaced in place (Ceph warns about
    an option set twice in one section); others are added at the end of the
    section, which is created when the template has none.
    """
    lines = template.splitlines()
    for section, options in settings.items():
        header = f"[{section}]"
        if header not in lines:
            lines += ["", header]
        start = lines.index(header) + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
        for option, value in options.items():
            name = option.replace("_", " ")
            found = [
                i
                for i in range(start, end)
                if lines[i].split("=", 1)[0].strip().replace("_", " ") == name
            ]
            if found:
                lines[found[0]] = f"{name} = {value}"
            else:
                while end > start and not lines[end - 1].strip():
                    end -= 1  # keep the blank line that ends the section after it
                lines.insert(end, f"{name} = {value}")
                end += 1
    return "\n".join(lines) + "\n"


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CephServer:
    """A throwaway single-node Ceph RADOS Gateway (``scripts/ceph/start.sh``) on 127.0.0.1.

    :meth:`start` installs Ceph first when it is missing and this process is
    root (``scripts/ceph/install.sh``); :attr:`credentials` are the S3 user's
    keys in the form of :data:`CREDENTIALS`.  :meth:`stop` stops the daemons
    by their PIDs and removes the cluster's directory.  With ``settings``, the
    cluster runs ``scripts/ceph``'s scripts on a copy of ``ceph.conf.in`` with
    those settings applied (:func:`apply_settings`): how server tunings are tried.
    """

    def __init__(self, work: Path, settings: CephSettings | None = None) -> None:
        self._work = work
        self._settings = settings or {}
        self._dir: Path | None = None
        self.url = ""
        self.credentials: dict[str, str] = {}

    @staticmethod
    def available() -> bool:
        """Whether a cluster can be started here (installed, or installable as root)."""
        installed = all(
            any((Path(p) / b).exists() for p in os.environ.get("PATH", "").split(":"))
            for b in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
        )
        return installed or os.geteuid() == 0

    def start(self) -> None:
        subprocess.run(["bash", str(CEPH_SCRIPTS / "install.sh")], check=True)
        self._work.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="ceph-", dir=self._work))
        scripts = CEPH_SCRIPTS
        if self._settings:
            scripts = self._dir / "scripts"
            scripts.mkdir()
            for name in ("start.sh", "stop.sh"):
                shutil.copy(CEPH_SCRIPTS / name, scripts / name)
            template = (CEPH_SCRIPTS / "ceph.conf.in").read_text()
            (scripts / "ceph.conf.in").write_text(apply_settings(template, self._settings))
        # memstore keeps every object in RAM: room for a full run's objects.
        env = {**os.environ, "PYTHON": sys.executable, "CEPH_MEMSTORE_BYTES": str(4 << 30)}
        # start.sh leaves the daemons running when it exits successfully.
        subprocess.run(
            ["bash", str(scripts / "start.sh"), str(self._dir / "cluster")],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        values = {}
        for line in (self._dir / "cluster" / "env").read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            values[name.strip()] = value.strip().strip("'\"")
        self.url = values["SSSHELF_TEST_S3_ENDPOINT"]
        self.credentials = {
            "AWS_ACCESS_KEY_ID": values["SSSHELF_TEST_S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": values["SSSHELF_TEST_S3_SECRET_KEY"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def daemon_pids(self) -> dict[str, int]:
        """The running daemons' PIDs by name (``mon``, ``osd``, ``rgw``)."""
        if self._dir is None:
            return {}
        run = self._dir / "cluster" / "run"
        return {name: int((run / f"{name}.pid").read_text()) for name in ("mon", "osd", "rgw")}

    def cpu_seconds(self) -> float:
        """CPU seconds the three daemons have used so far, together."""
        return sum(process_cpu_seconds(pid) for pid in self.daemon_pids().values())

    def stop(self) -> None:
        directory, self._dir = self._dir, None
        if directory is None:
            return
        subprocess.run(
            ["bash", str(CEPH_SCRIPTS / "stop.sh"), str(directory / "cluster")],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(directory, ignore_errors=True)
