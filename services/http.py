"""The one small HTTP layer under the Cloudflare, Stripe and Mailgun clients.

What it adds to ``requests``:

- connect and read timeouts on every call;
- retries with jittered exponential backoff on 429, 5xx and connection failures, honouring
  ``Retry-After`` (seconds or an HTTP date, capped) and Stripe's ``Stripe-Should-Retry``. Only
  requests that are safe to repeat are retried: idempotent methods, POSTs that carry an
  ``Idempotency-Key``, and any request the server provably did not process (a 429, a refused
  connection);
- cancellation through :class:`~services.cancel.CancelToken`: waits use ``token.wait`` and a
  cancel closes the session's sockets, so a blocked read ends at once;
- each vendor's error body turned into a typed :class:`VendorError` with an operator message;
  a body that is not the documented JSON becomes :class:`ApiBadResponse`, never a JSONDecodeError;
- the key is held in a :class:`Secret` and never appears in a message, a repr or a log record;
- request counting (:class:`RequestStats`), so a bench can check how many round trips it took;
- pagination helpers for each vendor's style.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
import requests.auth
import urllib3.connection
import urllib3.connectionpool
from urllib3.exceptions import NewConnectionError

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import ApiError, Cancelled

log = logging.getLogger(__name__)

VENDOR_LABELS = {"cloudflare": "Cloudflare", "stripe": "Stripe", "mailgun": "Mailgun"}
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "operator-panel/0.1"


# -- errors ------------------------------------------------------------------------------------------


class VendorError(ApiError):
    """A vendor call failed. ``message`` is for the operator; the rest is for code and logs."""

    def __init__(self, message: str, *, vendor: str, status: int | None = None, code: str | None = None,
                 request_id: str | None = None, param: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, vendor=vendor, status=status, code=code)
        self.request_id = request_id
        self.param = param
        self.retry_after = retry_after
        self.attempts = 1  # how many tries the failed request took (>1: an earlier try may have acted)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, vendor={self.vendor!r}, status={self.status!r})"


class ApiAuthError(VendorError):
    """401/403: the key is wrong, revoked, or lacks the permission for this call."""


class ApiNotFound(VendorError):
    """404: the object (zone, record, customer, domain, ...) does not exist."""


class ApiValidationError(VendorError):
    """The vendor (or our own check before sending) refused the request as it stands."""


class ApiPaymentError(VendorError):
    """Stripe 402: the card was declined. ``code`` is e.g. card_declined; ``decline_code`` says why."""

    decline_code: str | None = None


class ApiRateLimited(VendorError):
    """429 still after retries, or a Retry-After longer than we are willing to wait."""


class ApiServerError(VendorError):
    """5xx still after retries: the vendor's trouble, not ours."""


class ApiConnectionError(VendorError):
    """The vendor could not be reached, or the connection broke before an answer came."""


class ApiTimeout(VendorError):
    """No answer within the read timeout."""


class ApiBadResponse(VendorError):
    """The answer is not the JSON the vendor documents (truncated, HTML from a proxy, wrong shape)."""


# -- small value types -------------------------------------------------------------------------------


class Secret:
    """Holds an API key. Its repr and str never show it; only :meth:`reveal` does, at the wire."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()  # a key pasted with its line break is still the key
        if not value:
            raise ValueError("an empty API key")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, the first included
    backoff_base: float = 0.5  # seconds before the 2nd try; doubled each time (stripe-python's numbers)
    backoff_cap: float = 8.0
    retry_after_cap: float = 60.0  # a longer Retry-After fails at once: better than freezing a screen

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential with jitter: between half and all of ``base * 2**(attempt-1)``, capped."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * (0.5 + rng.random() / 2)


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)


@dataclass
class RequestStats:
    """Counts of what went over the wire, for benches and the status bar. Thread-safe."""

    requests: int = 0  # every attempt sent, retries included
    retries: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, status: int | None, retry: bool) -> None:
        with self._lock:
            self.requests += 1
            self.retries += int(retry)
            if status is not None:
                self.by_status[status] += 1

    def reset(self) -> None:
        with self._lock:
            self.requests = self.retries = 0
            self.by_status.clear()


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]
    data: Any  # the decoded JSON body (None for an empty body)
    attempts: int
    request_id: str | None = None


# -- auth --------------------------------------------------------------------------------------------


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, secret: Secret) -> None:
        self._secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self._secret.reveal()
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


class BasicAuth(requests.auth.AuthBase):
    def __init__(self, user: str, secret: Secret) -> None:
        self._user = user
        self._secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        pair = f"{self._user}:{self._secret.reveal()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return request

    def __repr__(self) -> str:
        return f"BasicAuth({self._user!r}, ***)"


# -- Retry-After -------------------------------------------------------------------------------------


def http_date(text: Any) -> datetime | None:
    """An RFC 2822 date (a Retry-After, Mailgun's timestamps) as an aware datetime, UTC when it names
    no zone. None if absent or bad."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta seconds or an HTTP date. None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        moment = http_date(text)
        if moment is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


# -- error mapping per vendor ------------------------------------------------------------------------

ErrorMapper = Callable[[int, Any, str, Mapping[str, str]], VendorError]
"""(status, decoded JSON body or None, raw text, headers) -> the typed error to raise."""


def _class_for(status: int) -> type[VendorError]:
    if status in (401, 403):
        return ApiAuthError
    if status == 404:
        return ApiNotFound
    if status == 429:
        return ApiRateLimited
    if status == 402:
        return ApiPaymentError
    if status >= 500:
        return ApiServerError
    return ApiValidationError


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:120] + ("…" if len(flat) > 120 else "")


def cloudflare_error(status: int, body: Any, text: str, headers: Mapping[str, str]) -> VendorError:
    raw_errors = body.get("errors") if isinstance(body, dict) else None
    errors: list[Any] = raw_errors if isinstance(raw_errors, list) else []
    first: dict[str, Any] = errors[0] if errors and isinstance(errors[0], dict) else {}
    code = str(first.get("code")) if first.get("code") is not None else None
    detail = str(first.get("message") or "").strip()
    raw_chain = first.get("error_chain")
    chain: list[Any] = raw_chain if isinstance(raw_chain, list) else []
    details = [detail] + [str(c.get("message")) for c in chain if isinstance(c, dict) and c.get("message")]
    if len(errors) > 1:
        details += [str(e.get("message")) for e in errors[1:] if isinstance(e, dict)]
    fallback = f"HTTP {status}, body: {_snippet(text)}" if text else f"HTTP {status}"
    said = "; ".join(d for d in details if d) or fallback
    with_code = f"{said} (code {code})" if code else said
    if status == 401:
        message = f"Cloudflare refused the API token: {with_code}. Check the 'cloudflare' entry in the keyring."
    elif status == 403:
        message = (f"The Cloudflare token may not do this: {with_code}. Give the token the permission "
                   "(e.g. Zone DNS Edit, Zone Settings Edit, Cache Purge) in the Cloudflare dashboard.")
    elif status == 429:
        message = f"Cloudflare is rate limiting this token: {with_code}."
    elif status >= 500:
        message = f"Cloudflare had an internal error (HTTP {status}): {with_code}. Try again in a minute."
    else:
        message = f"Cloudflare refused the request: {with_code}."
    return _class_for(status)(message, vendor="cloudflare", status=status, code=code,
                              request_id=headers.get("cf-ray"))


def stripe_error(status: int, body: Any, text: str, headers: Mapping[str, str]) -> VendorError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") or error.get("type")
    detail = str(error.get("message") or (f"HTTP {status}, body: {_snippet(text)}" if text else f"HTTP {status}"))
    param = error.get("param")
    request_id = headers.get("Request-Id")
    where = f" (request {request_id})" if request_id else ""
    if status == 401:
        # Stripe echoes part of the key in this message, so the message is ours alone.
        message = "Stripe refused the API key (401). Check the 'stripe' entry in the keyring."
    elif status == 402:
        decline = error.get("decline_code")
        message = f"The payment failed: {detail}" + (f" ({decline})" if decline else "") + where
    elif status == 403:
        message = f"The Stripe key may not do this (a restricted key?): {detail}{where}"
    elif status == 429:
        message = f"Stripe is rate limiting this key: {detail}{where}"
    elif status >= 500:
        message = f"Stripe had an internal error (HTTP {status}){where}. Try again in a minute."
    elif error.get("type") == "idempotency_error":
        message = f"Stripe refused a reused idempotency key: {detail}{where}"
    else:
        message = f"Stripe refused the request: {detail}" + (f" [{param}]" if param else "") + where
    result = _class_for(status)(message, vendor="stripe", status=status, code=str(code) if code else None,
                                request_id=request_id, param=str(param) if param else None)
    if isinstance(result, ApiPaymentError):
        result.decline_code = error.get("decline_code")
    return result


def mailgun_error(status: int, body: Any, text: str, headers: Mapping[str, str]) -> VendorError:
    detail = body.get("message") if isinstance(body, dict) else None
    said = str(detail) if detail else (_snippet(text) or f"HTTP {status}")
    if status == 401:
        # Mailgun answers a plain-text "Forbidden" here.
        message = ("Mailgun refused the API key (401 Forbidden). Check the 'mailgun' entry in the keyring; "
                   "use a private API key, not a sending key.")
    elif status == 404 and said == "Domain not found":
        message = ("Mailgun does not know this domain here. If the domain is in the EU region, the base URL "
                   "must be https://api.eu.mailgun.net (and https://api.mailgun.net for the US).")
    elif status == 429:
        message = f"Mailgun is rate limiting this key: {said}."
    elif status >= 500:
        message = f"Mailgun had an internal error (HTTP {status}). Try again in a minute."
    else:
        message = f"Mailgun refused the request (HTTP {status}): {said}."
    return _class_for(status)(message, vendor="mailgun", status=status, code=str(status))


ERROR_MAPPERS: dict[str, ErrorMapper] = {"cloudflare": cloudflare_error, "stripe": stripe_error,
                                         "mailgun": mailgun_error}


def stripe_retry_hint(response: requests.Response) -> bool | None:
    """Stripe says outright whether a retry can help; otherwise 409 (a lock) is worth one more go."""
    header = response.headers.get("Stripe-Should-Retry")
    if header == "true":
        return True
    if header == "false":
        return False
    return True if response.status_code == 409 else None


# -- cancellable sockets -----------------------------------------------------------------------------


class _SocketRegistry:
    """The open sockets of one client, so that a cancel can shut them down: ``shutdown`` wakes a
    thread blocked in ``recv`` at once, which closing the session from another thread would not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[Any] = set()

    def add(self, sock: Any) -> None:
        with self._lock:
            self._sockets.add(sock)

    def discard(self, sock: Any) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def shutdown_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue  # already closed


class _TrackedConnection:
    """Mixed into urllib3's connection classes: registers the socket once connected."""

    registry: _SocketRegistry
    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.registry.add(self.sock)

    def close(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.registry.discard(self.sock)
        super().close()  # type: ignore[misc]


class _CancellableAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, registry: _SocketRegistry) -> None:
        self._registry = registry  # before super().__init__, which builds the pool manager
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        extra = {"registry": self._registry}
        http_conn = type("TrackedHTTPConnection", (_TrackedConnection, urllib3.connection.HTTPConnection), extra)
        https_conn = type("TrackedHTTPSConnection", (_TrackedConnection, urllib3.connection.HTTPSConnection), extra)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("TrackedPool", (urllib3.connectionpool.HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("TrackedHTTPSPool", (urllib3.connectionpool.HTTPSConnectionPool,),
                          {"ConnectionCls": https_conn}),
        }


# -- the client --------------------------------------------------------------------------------------


# Errors raised while building the request, before anything is sent. requests and http.client quote
# the offending value (a header: the key) in these messages, so they are never passed on.
def _short_path(path: str) -> str:
    """A path for messages: cursor tokens (Mailgun's paging URLs) cut to a few characters."""
    parts = urlsplit(path).path.split("/")
    return "/".join(p if len(p) <= 40 else p[:8] + "…" for p in parts)


_UNBUILDABLE = (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)


def _never_sent(error: requests.RequestException) -> bool:
    """True when the request provably never reached the server (so even a POST may be repeated)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    cause: BaseException | None = error
    seen = 0
    while cause is not None and seen < 10:
        if isinstance(cause, NewConnectionError | ConnectionRefusedError):
            return True
        cause = getattr(cause, "reason", None) or cause.__context__ or cause.__cause__
        seen += 1
    return False


class Closeable:
    """Closed by :meth:`close`, or at the end of its ``with`` block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class HttpClient(Closeable):
    """One vendor's session: base URL, auth, timeouts, retries, error mapping and counting.

    Safe to share between threads. A cancel shuts down this client's sockets: the cancelled call
    ends at once; another call in flight on the same client sees a dropped connection and, when
    it is safe to repeat, simply retries.
    """

    def __init__(self, *, vendor: str, base_url: str, auth: requests.auth.AuthBase, secret: Secret,
                 headers: Mapping[str, str] | None = None, error_mapper: ErrorMapper | None = None,
                 retry_hint: Callable[[requests.Response], bool | None] | None = None,
                 timeouts: Timeouts = DEFAULT_TIMEOUTS, retry: RetryPolicy = DEFAULT_RETRY,
                 session: requests.Session | None = None, rng: random.Random | None = None) -> None:
        self.vendor = vendor
        self.label = VENDOR_LABELS.get(vendor, vendor)
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.retry = retry
        self.stats = RequestStats()
        self._auth = auth
        self._secret = secret
        self._error_mapper = error_mapper or ERROR_MAPPERS.get(vendor, mailgun_error)
        self._retry_hint = retry_hint
        self._rng = rng or random.Random()
        self._sockets = _SocketRegistry()
        self._session = session or requests.Session()
        adapter = _CancellableAdapter(self._sockets)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})})
        # Vendor keys never come from ~/.netrc or proxy settings that could add their own auth.
        self._session.trust_env = False

    def __repr__(self) -> str:
        return f"HttpClient(vendor={self.vendor!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    # -- secrets ----------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """Remove the key, and its Basic-auth encodings, from any text we did not write ourselves."""
        key = self._secret.reveal()
        for form in (key, base64.b64encode(f"api:{key}".encode()).decode(),
                     base64.b64encode(f"{key}:".encode()).decode()):
            text = text.replace(form, "***")
        return text

    # -- requests ---------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The URL for a path, or for a vendor's absolute paging URL, always on our base origin so
        the key never goes to a host other than the configured one."""
        if "://" not in path:
            return f"{self.base_url}/{path.lstrip('/')}"
        given, base = urlsplit(path), urlsplit(self.base_url)
        if given.netloc == base.netloc and given.scheme == base.scheme:
            return path
        prefix = base.path.rstrip("/")
        joined = given.path if given.path.startswith(prefix + "/") else prefix + given.path
        return urlunsplit((base.scheme, base.netloc, joined, given.query, ""))

    def request(self, method: str, path: str, *, params: Any = None, data: Any = None, json_body: Any = None,
                files: Any = None, headers: Mapping[str, str] | None = None, idempotency_key: str | None = None,
                cancel: CancelToken = NEVER_CANCELLED, what: str | None = None) -> ApiResponse:
        """Send one logical request (with retries) and return its decoded JSON answer.

        ``idempotency_key`` makes a POST safe to retry: generate it once per logical operation
        and it is sent unchanged on every try. Raises a :class:`VendorError` subclass or
        :class:`~services.errors.Cancelled`.
        """
        method = method.upper()
        what = what or f"{self.label} {method} {_short_path(path)}"
        url = self.url(path)
        extra = dict(headers or {})
        if idempotency_key is not None:
            extra["Idempotency-Key"] = idempotency_key
        repeatable = method in IDEMPOTENT_METHODS or idempotency_key is not None
        attempt = 0
        while True:
            attempt += 1
            cancel.raise_if_cancelled(what)
            started = time.monotonic()
            unregister = cancel.on_cancel(self._sockets.shutdown_all)
            try:
                response = self._session.request(
                    method, url, params=params, data=data, json=json_body, files=files, headers=extra,
                    auth=self._auth, timeout=(self.timeouts.connect, self.timeouts.read), allow_redirects=False)
            except (*_UNBUILDABLE, ValueError) as error:
                # requests puts the offending header value, i.e. the key, in this message: never pass it on.
                raise ApiValidationError(
                    f"{what}: the request could not be built ({type(error).__name__}). Check the API key for "
                    "stray spaces or line breaks, and the base URL in the config.", vendor=self.vendor,
                    code="bad_request") from None
            except requests.RequestException as error:
                self.stats.record(None, attempt > 1)
                if cancel.cancelled:
                    raise Cancelled(what) from None
                failure = self._transport_error(error, what)
                failure.attempts = attempt
                if attempt < self.retry.attempts and (repeatable or _never_sent(error)):
                    self._pause(self.retry.backoff(attempt, self._rng), failure.message, attempt, cancel, what)
                    continue
                raise failure from None
            finally:
                unregister()
            self.stats.record(response.status_code, attempt > 1)
            elapsed_ms = (time.monotonic() - started) * 1000
            log.debug("%s %s %s -> %d in %.0f ms (try %d)", self.label, method, urlsplit(url).path,
                      response.status_code, elapsed_ms, attempt)
            if response.status_code < 400:
                return ApiResponse(response.status_code, response.headers, self._decode(response, what), attempt,
                                   response.headers.get("Request-Id"))
            delay = self._retry_delay(response, attempt, repeatable)
            if delay is None:
                refusal = self._error(response)
                refusal.attempts = attempt
                raise refusal
            self._pause(delay, f"HTTP {response.status_code}", attempt, cancel, what)

    def get(self, path: str, *, params: Any = None, cancel: CancelToken = NEVER_CANCELLED) -> Any:
        """GET and return the decoded body."""
        return self.request("GET", path, params=params, cancel=cancel).data

    # -- internals --------------------------------------------------------------------------------

    def _retry_delay(self, response: requests.Response, attempt: int, repeatable: bool) -> float | None:
        """Seconds to wait before the next try, or None when this answer is final."""
        status = response.status_code
        hint = self._retry_hint(response) if self._retry_hint else None
        if hint is False:
            return None
        retryable = status in RETRY_STATUSES or hint is True
        # A 429 means the server did not act, so even a POST without a key may be repeated.
        if not retryable or not (repeatable or status == 429) or attempt >= self.retry.attempts:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            return self.retry.backoff(attempt, self._rng)
        if retry_after > self.retry.retry_after_cap:
            return None  # _error() says how long the vendor asked us to wait
        return retry_after * (1 + self._rng.random() / 10)  # never earlier than asked

    def _pause(self, delay: float, reason: str, attempt: int, cancel: CancelToken, what: str) -> None:
        log.warning("%s: %s; try %d of %d in %.2f s", what, self.redact(reason), attempt + 1,
                    self.retry.attempts, delay)
        if cancel.wait(delay):
            raise Cancelled(what)

    def _decode(self, response: requests.Response, what: str) -> Any:
        if not response.content:
            return None
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise ApiBadResponse(
                f"{self.label} sent an answer that is not valid JSON for {what} (HTTP {response.status_code}, "
                f"{len(response.content)} bytes, {response.headers.get('Content-Type', 'no content type')}). "
                "It may have been cut off; try again.",
                vendor=self.vendor, status=response.status_code, code="bad_json",
                request_id=response.headers.get("Request-Id")) from None

    def _error(self, response: requests.Response) -> VendorError:
        text = response.content.decode("utf-8", errors="replace")
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = None
        error = self._error_mapper(response.status_code, body, text, response.headers)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        error.retry_after = retry_after
        if response.status_code == 429 and retry_after is not None and retry_after > self.retry.retry_after_cap:
            error.message = f"{error.message} It asks to wait {retry_after:.0f} s before trying again."
        error.message = self.redact(error.message)
        error.args = (error.message,)
        return error

    def _transport_error(self, error: requests.RequestException, what: str) -> VendorError:
        where = urlsplit(self.base_url).netloc
        if isinstance(error, requests.ConnectTimeout):
            return ApiTimeout(f"{what}: {self.label} ({where}) did not accept a connection within "
                              f"{self.timeouts.connect:g} s.", vendor=self.vendor)
        if isinstance(error, requests.Timeout):
            return ApiTimeout(f"{what}: {self.label} ({where}) did not answer within {self.timeouts.read:g} s.",
                              vendor=self.vendor)
        if _never_sent(error):
            return ApiConnectionError(f"{what}: cannot connect to {self.label} at {where}. Check the network "
                                      "and the base URL in the config.", vendor=self.vendor)
        kind = type(error).__name__
        return ApiConnectionError(f"{what}: the connection to {self.label} ({where}) broke before an answer "
                                  f"came ({kind}).", vendor=self.vendor)


class ApiClient(Closeable):
    """What the Cloudflare, Stripe and Mailgun clients have in common: each owns an :class:`HttpClient`
    (``http``), and closing the client closes that one's connections."""

    http: HttpClient

    def close(self) -> None:
        self.http.close()


# -- shape checks ------------------------------------------------------------------------------------


def expect_dict(value: Any, vendor: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiBadResponse(f"{VENDOR_LABELS.get(vendor, vendor)} sent an unexpected answer for {what}: "
                             f"expected an object, got {type(value).__name__}.", vendor=vendor, code="bad_shape")
    return value


def expect_list(value: Any, vendor: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ApiBadResponse(f"{VENDOR_LABELS.get(vendor, vendor)} sent an unexpected answer for {what}: "
                             f"expected a list, got {type(value).__name__}.", vendor=vendor, code="bad_shape")
    return value


# -- pagination --------------------------------------------------------------------------------------

MAX_PAGES = 10_000  # a guard against a vendor (or a stand-in) that never says "last page"


def cloudflare_pages(client: HttpClient, path: str, params: Mapping[str, Any] | None = None, *,
                     per_page: int = 100, cancel: CancelToken = NEVER_CANCELLED) -> Iterator[list[Any]]:
    """Cloudflare's ``page``/``per_page``, stopping at ``result_info.total_pages``."""
    for page in range(1, MAX_PAGES + 1):
        body = expect_dict(client.get(path, params={**(params or {}), "page": page, "per_page": per_page},
                                      cancel=cancel), "cloudflare", path)
        result = expect_list(body.get("result"), "cloudflare", path)
        yield result
        info = body.get("result_info")
        total_pages = info.get("total_pages") if isinstance(info, dict) else None
        if not result or (isinstance(total_pages, int) and page >= total_pages) or \
                (total_pages is None and len(result) < per_page):
            return


def stripe_list(client: HttpClient, path: str, params: Mapping[str, Any] | None = None, *, limit: int = 100,
                cancel: CancelToken = NEVER_CANCELLED) -> Iterator[dict[str, Any]]:
    """Every object of a Stripe list, following ``has_more`` with ``starting_after``."""
    starting_after: str | None = None
    for _ in range(MAX_PAGES):
        query = {**(params or {}), "limit": limit}
        if starting_after:
            query["starting_after"] = starting_after
        body = expect_dict(client.get(path, params=query, cancel=cancel), "stripe", path)
        items = expect_list(body.get("data"), "stripe", path)
        yield from items
        if not body.get("has_more") or not items:
            return
        starting_after = str(expect_dict(items[-1], "stripe", path).get("id"))


def stripe_search(client: HttpClient, path: str, query: str, *, limit: int = 100,
                  params: Mapping[str, Any] | None = None,
                  cancel: CancelToken = NEVER_CANCELLED) -> Iterator[dict[str, Any]]:
    """Every object of a Stripe search, following ``next_page`` with ``page``."""
    page: str | None = None
    for _ in range(MAX_PAGES):
        arguments = {**(params or {}), "query": query, "limit": limit}
        if page:
            arguments["page"] = page
        body = expect_dict(client.get(path, params=arguments, cancel=cancel), "stripe", path)
        items = expect_list(body.get("data"), "stripe", path)
        yield from items
        page = body.get("next_page")
        if not body.get("has_more") or not page or not items:
            return


def mailgun_pages(client: HttpClient, path: str, params: Mapping[str, Any] | None = None, *,
                  cancel: CancelToken = NEVER_CANCELLED) -> Iterator[list[Any]]:
    """Mailgun's cursor paging: follow ``paging.next`` (always present) until a page is empty."""
    url, query = path, params
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        body = expect_dict(client.get(url, params=query, cancel=cancel), "mailgun", path)
        items = expect_list(body.get("items"), "mailgun", path)
        if not items:
            return
        yield items
        paging = body.get("paging")
        next_url = paging.get("next") if isinstance(paging, dict) else None
        if not isinstance(next_url, str) or not next_url or next_url in seen:
            return
        seen.add(next_url)
        url, query = next_url, None


def now_utc() -> datetime:
    return datetime.now(UTC)
