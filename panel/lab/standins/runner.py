"""Running the three stand-ins: in this process for tests (:class:`StandinServers`), or in one
detached child process for the demo (:func:`start_standins`), which outlives its caller."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from panel.lab.standins.cloudflare import CloudflareApp
from panel.lab.standins.mailgun import MailgunApp
from panel.lab.standins.server import StandinServer, VendorApp
from services.errors import PanelError

PORT_FILE = "standins.json"
LOG_FILE = "standins.log"
HOST = "127.0.0.1"


def _urls(ports: dict[str, int], host: str = HOST) -> dict[str, str]:
    return {
        "cloudflare_url": f"http://{host}:{ports['cloudflare']}/client/v4",
        "stripe_url": f"http://{host}:{ports['stripe']}",
        "mailgun_url": f"http://{host}:{ports['mailgun']}",
        "mailgun_eu_url": f"http://{host}:{ports['mailgun_eu']}",
    }


def _origin(url: str) -> str:
    return url.removesuffix("/client/v4")


def post_faults(base_url: str, **settings: Any) -> dict[str, Any]:
    """Flip a stand-in's fault switches over HTTP (see ``Faults.configure`` for the keys)."""
    url = _origin(base_url) + "/__lab__/faults"
    if not url.startswith("http://"):
        raise ValueError(f"not a stand-in URL: {url}")
    request = urllib.request.Request(url, data=json.dumps(settings).encode(),  # noqa: S310 - checked above
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - checked above
        result: dict[str, Any] = json.load(answer)
        return result


class StandinServers:
    """The three stand-ins on loopback ports, in this process, each served by a thread.

    ``with StandinServers() as lab:`` then ``lab.cloudflare_url`` etc.; the apps (``lab.stripe``,
    ...) give tests the vendor state and ``.faults`` switches directly.
    """

    def __init__(self, host: str = HOST, ports: dict[str, int] | None = None) -> None:
        from panel.lab.standins.stripe import StripeApp

        self.cloudflare = CloudflareApp()
        self.stripe = StripeApp()
        self.mailgun = MailgunApp()
        self._host = host
        self._ports = ports or {}
        self._servers: dict[str, StandinServer] = {}
        self._threads: list[threading.Thread] = []

    @property
    def apps(self) -> dict[str, VendorApp]:
        return {"cloudflare": self.cloudflare, "stripe": self.stripe, "mailgun": self.mailgun}

    def start(self) -> StandinServers:
        plan: list[tuple[str, VendorApp, str]] = [
            ("cloudflare", self.cloudflare, "cloudflare"), ("stripe", self.stripe, "stripe"),
            ("mailgun", self.mailgun, "mailgun"), ("mailgun_eu", self.mailgun, "mailgun-eu"),
        ]
        try:
            for name, app, label in plan:
                server = StandinServer((self._host, self._ports.get(name, 0)), app, label=label)
                self._servers[name] = server
                thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                          name=f"standin-{label}", daemon=True)
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def reset(self) -> None:
        """Faults off and demo data as at start, between tests."""
        for app in self.apps.values():
            app.faults.reset()
            with app.lock:
                app.reset_state()
                app.request_log.clear()

    def reset_faults(self) -> None:
        for app in self.apps.values():
            app.faults.reset()

    @property
    def ports(self) -> dict[str, int]:
        return {name: server.port for name, server in self._servers.items()}

    @property
    def cloudflare_url(self) -> str:
        return _urls(self.ports, self._host)["cloudflare_url"]

    @property
    def stripe_url(self) -> str:
        return _urls(self.ports, self._host)["stripe_url"]

    @property
    def mailgun_url(self) -> str:
        return _urls(self.ports, self._host)["mailgun_url"]

    @property
    def mailgun_eu_url(self) -> str:
        return _urls(self.ports, self._host)["mailgun_eu_url"]

    def __enter__(self) -> StandinServers:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class StandinsHandle:
    """The stand-ins' child process: its URLs and pid. ``stop()`` ends it (and only it)."""

    cloudflare_url: str
    stripe_url: str
    mailgun_url: str
    mailgun_eu_url: str
    pid: int
    port_file: Path

    @classmethod
    def from_port_file(cls, port_file: Path) -> StandinsHandle:
        data = json.loads(port_file.read_text())
        return cls(**_urls(data["ports"], data.get("host", HOST)), pid=int(data["pid"]), port_file=port_file)

    def faults(self, vendor: str, **settings: Any) -> dict[str, Any]:
        """Flip one stand-in's fault switches: ``handle.faults("stripe", fail_next=2)``."""
        url = {"cloudflare": self.cloudflare_url, "stripe": self.stripe_url, "mailgun": self.mailgun_url,
               "mailgun_eu": self.mailgun_eu_url}[vendor]
        return post_faults(url, **settings)

    def alive(self) -> bool:
        return _is_our_child(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child (after checking the pid is still a stand-ins process), then wait."""
        child = _CHILDREN.pop(self.pid, None)
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        elif _is_our_child(self.pid):  # started by another process (``lab down`` after ``lab up``)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _is_our_child(self.pid) and time.monotonic() < deadline:
                _reap(self.pid)
                threading.Event().wait(0.05)
            if _is_our_child(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                _reap(self.pid)
        with contextlib.suppress(FileNotFoundError):
            self.port_file.unlink()


# The children this process started. A daemon thread waits on each, so that its exit status is
# collected as soon as it ends, whoever stops it (``handle.stop()`` or the fleet, by pid): no zombie
# that still looks alive, and no ResourceWarning for a Popen dropped while its child runs.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _adopt(process: subprocess.Popen[bytes]) -> None:
    _CHILDREN[process.pid] = process
    threading.Thread(target=process.wait, name=f"reap-standins-{process.pid}", daemon=True).start()


def _reap(pid: int) -> None:
    """Collect the child's exit status if it is ours, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _is_our_child(pid: int) -> bool:
    """True while ``pid`` runs the stand-ins module: a recycled pid must never be signalled."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return False
    return status != "Z" and b"panel.lab.standins" in command


def start_standins(folder: Path, timeout: float = 15.0) -> StandinsHandle:
    """Start the three stand-ins in one detached child process and wait for its ports.

    The child runs in its own session, so it survives the caller (the demo's ``lab up``); its
    output goes to ``folder/standins.log`` and its ports to ``folder/standins.json``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    port_file = folder / PORT_FILE
    with contextlib.suppress(FileNotFoundError):
        port_file.unlink()
    root = Path(__file__).resolve().parents[3]  # the checkout that holds panel/ and services/
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), environment.get("PYTHONPATH")]))
    with open(folder / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "panel.lab.standins", "--dir", str(folder), "--port-file", str(port_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=root, env=environment,
        )
    deadline = time.monotonic() + timeout
    waiter = threading.Event()
    while time.monotonic() < deadline:
        if port_file.exists():
            try:
                handle = StandinsHandle.from_port_file(port_file)
                _adopt(process)
                return handle
            except (ValueError, KeyError):
                pass  # written but not complete yet: the child renames it into place, but be safe
        if process.poll() is not None:
            tail = (folder / LOG_FILE).read_text(errors="replace")[-2000:]
            raise PanelError(f"The vendor stand-ins exited at start (status {process.returncode}). "
                             f"Log {folder / LOG_FILE}:\n{tail}")
        waiter.wait(0.05)
    process.terminate()
    process.wait(5)
    raise PanelError(f"The vendor stand-ins did not report their ports within {timeout:g} s; see {folder / LOG_FILE}.")


def serve_forever(folder: Path, port_file: Path, host: str = HOST) -> None:
    """The child's main: serve until SIGTERM or SIGINT, with the ports written atomically."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with StandinServers(host) as lab:
        temporary = port_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"pid": os.getpid(), "host": host, "ports": lab.ports,
                                         "folder": str(folder)}))
        os.replace(temporary, port_file)
        print(f"stand-ins up: {json.dumps(lab.ports)}", flush=True)
        while not stop.wait(1.0):
            pass
    with contextlib.suppress(FileNotFoundError):
        if json.loads(port_file.read_text()).get("pid") == os.getpid():
            port_file.unlink()
