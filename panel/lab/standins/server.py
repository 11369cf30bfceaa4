"""The HTTP machinery the three stand-ins share: a threaded server, a request object, a handler
that applies faults, answers the ``/__lab__`` control endpoint and dispatches to vendor routes."""

from __future__ import annotations

import gc
import json
import pickle
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from panel.lab.standins.faults import Decision, Faults
from panel.lab.standins.forms import parse_brackets, parse_multipart


@dataclass
class Request:
    method: str
    path: str  # without the query
    query_pairs: list[tuple[str, str]]
    headers: Any  # http.client.HTTPMessage
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern
    listener: str = ""  # the label of the server that took it: "mailgun" or "mailgun-eu"

    def query(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query_pairs:
            if key == name:
                return value
        return default

    def query_all(self, name: str) -> list[str]:
        return [value for key, value in self.query_pairs if key == name]

    @property
    def content_type(self) -> str:
        return str(self.headers.get("Content-Type") or "")

    def form_pairs(self) -> list[tuple[str, str]]:
        """A form body, urlencoded or multipart (files are left out)."""
        if self.content_type.startswith("multipart/form-data"):
            return [(k, v) for k, v in parse_multipart(self.content_type, self.body) if isinstance(v, str)]
        return parse_qsl(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)

    def nested_params(self) -> dict[str, Any]:
        """Stripe style: the query string for GET and DELETE, the form body otherwise."""
        pairs = self.query_pairs if self.method in ("GET", "DELETE") else self.form_pairs()
        return parse_brackets(pairs)

    def json(self) -> Any:
        """The JSON body; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), "application/json",
                    list(headers))


def format_seconds(seconds: float) -> str:
    """Retry-After is whole seconds on the wire; a lab may ask for less to keep tests fast."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.2f}".rstrip("0")


Route = tuple[str, "re.Pattern[str]", Callable[[Any, Request], Response]]


def route(method: str, pattern: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Mark a handler method as serving ``method`` on ``pattern`` (``{name}`` captures one segment)."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def mark(function: Callable[..., Response]) -> Callable[..., Response]:
        function.__dict__.setdefault("_routes", []).append((method, regex))
        return function

    return mark


class StandinServer(ThreadingHTTPServer):
    """One vendor's stand-in. ``app`` holds the vendor state and the routes."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: VendorApp, *, label: str = "") -> None:
        self.app = app
        self.label = label or app.vendor  # "mailgun-eu" for the second Mailgun listener
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.stopping = threading.Event()
        super().__init__(address, StandinHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a cancel, a timeout) is normal here; anything else is printed."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stop serving and cut idle keep-alive connections, so no handler thread lingers."""
        self.stopping.set()
        self.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()


class VendorApp:
    """A vendor's state and routes. Subclasses add ``@route`` methods and the vendor's error shapes."""

    vendor: ClassVar[str] = "vendor"

    def __init__(self) -> None:
        self.faults = Faults()
        self.lock = threading.RLock()  # one lock over the vendor state: simple and plenty fast
        self.request_log: list[tuple[str, str, str]] = []  # (listener label, method, path)
        self._routes: list[tuple[str, re.Pattern[str], Callable[[Request], Response]]] = []
        for name in dir(type(self)):
            function = getattr(type(self), name)
            for method, regex in getattr(function, "_routes", []):
                self._routes.append((method, regex, getattr(self, name)))
        # Literal paths win over captures: /v1/customers/search before /v1/customers/{id}.
        self._routes.sort(key=lambda entry: entry[1].groups)

    # Vendor hooks -------------------------------------------------------------------------------

    def check_auth(self, request: Request) -> Response | None:
        """None when the credentials are good, else the vendor's refusal."""
        raise NotImplementedError

    def rate_limited(self, retry_after: float) -> Response:
        raise NotImplementedError

    def server_error(self, status: int) -> Response:
        return json_response(status, {"message": "Internal server error"})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"message": "Not found"})

    def method_not_allowed(self, request: Request) -> Response:
        return json_response(405, {"message": "Method not allowed"})

    def decorate(self, request: Request, response: Response) -> Response:
        """Add headers every answer of this vendor carries."""
        return response

    def reset_state(self) -> None:
        """Put the demo data back as it was at start."""

    # Generating the demo data takes a few hundred ms; tests reset it often. A pickled snapshot
    # restores it in a few ms, and is made anew once it is older than this (the data is relative
    # to "now": a demo left running for days must not serve stale times after a reset).
    # Shared by every app of a class in this process (tests start several), per snapshot_key().
    SNAPSHOT_MAX_AGE = 600.0
    _snapshots: ClassVar[dict[tuple[object, ...], tuple[float, bytes]]] = {}
    _snapshots_lock: ClassVar[threading.Lock] = threading.Lock()

    def snapshot_key(self) -> tuple[object, ...]:
        """What the generated data depends on, besides the time."""
        return (type(self).__name__,)

    def restore_snapshot(self, fields: tuple[str, ...]) -> bool:
        """Load ``fields`` from the snapshot if one is fresh enough; False if the caller must generate."""
        with self._snapshots_lock:
            snapshot = self._snapshots.get(self.snapshot_key())
        if snapshot is None or time.monotonic() - snapshot[0] > self.SNAPSHOT_MAX_AGE:
            return False
        # Tens of thousands of small dicts: the cyclic GC would run over them again and again. In the
        # panel's own process (the tests) it is already off, run by the GUI thread (views/garbage.py).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            values = pickle.loads(snapshot[1])  # noqa: S301 - our own bytes, made in save_snapshot
        finally:
            if was_enabled:
                gc.enable()
        for name in fields:
            setattr(self, name, values[name])
        return True

    def save_snapshot(self, fields: tuple[str, ...]) -> None:
        data = pickle.dumps({name: getattr(self, name) for name in fields})
        with self._snapshots_lock:
            self._snapshots[self.snapshot_key()] = (time.monotonic(), data)

    # Dispatch -----------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            path_matched = True
            if method != request.method:
                continue
            request.params = match.groupdict()
            with self.lock:
                return handler(request)
        return self.method_not_allowed(request) if path_matched else self.not_found(request)


class StandinHandler(BaseHTTPRequestHandler):
    server: StandinServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the vendors and requests' pool expect
    timeout = 30  # an idle keep-alive connection is dropped after this
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK adds ~40 ms to
    # every keep-alive answer. The latency proxy, not the stand-ins, is where slowness belongs.
    disable_nagle_algorithm = True
    server_version = "standin"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests would drown in access logs. The app keeps its own request log."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_request(self) -> Request:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        return Request(self.command, parts.path, parse_qsl(parts.query, keep_blank_values=True),
                       self.headers, body, listener=self.server.label)

    def _handle(self) -> None:
        request = self._read_request()
        app = self.server.app
        if request.path.startswith("/__lab__/"):
            self._send(self._lab_control(request))
            return
        app.request_log.append((self.server.label, request.method, request.path))
        decision = app.faults.decide()
        if decision.delay_s and self.server.stopping.wait(decision.delay_s):
            return
        response = self._answer(app, request, decision)
        if decision.action == "drop" and decision.drop_mode == "close":
            # The request was applied but the answer never arrives.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(app.decorate(request, response))

    def _answer(self, app: VendorApp, request: Request, decision: Decision) -> Response:
        if decision.action == "throttle":
            return app.rate_limited(decision.retry_after)
        if decision.action == "fail":
            return app.server_error(decision.status)
        refusal = app.check_auth(request)
        if refusal is not None:
            return refusal
        response = app.dispatch(request)
        if decision.action == "drop":
            return app.server_error(500)
        if decision.action == "malformed":
            cut = max(1, len(response.body) // 2)
            return Response(response.status, response.body[:cut] or b"{", "application/json",
                            response.headers)
        return response

    def _lab_control(self, request: Request) -> Response:
        """``GET|POST /__lab__/faults`` and ``POST /__lab__/reset``. No auth: loopback lab only."""
        app = self.server.app
        if request.path == "/__lab__/faults":
            if request.method == "POST":
                try:
                    settings = request.json() if request.body else {}
                    if not isinstance(settings, dict):
                        raise ValueError("the body must be a JSON object")
                    app.faults.configure(settings)
                except ValueError as error:
                    return json_response(400, {"error": str(error)})
            return json_response(200, app.faults.snapshot())
        if request.path == "/__lab__/reset" and request.method == "POST":
            app.faults.reset()
            with app.lock:
                app.reset_state()
            return json_response(200, {"reset": True})
        return json_response(404, {"error": "unknown lab endpoint"})

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
