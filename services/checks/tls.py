"""Certificates of the configured domains, checked from this laptop (ssl + socket, with a timeout)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from services.cancel import NEVER_CANCELLED, CancelToken
from services.checks import ids
from services.checks.model import PAGE_CLOUDFLARE, Action, CheckResult, Severity
from services.errors import ConnectError, OperationTimeout


@dataclass(frozen=True)
class CertificateInfo:
    host: str
    port: int
    not_after: dt.datetime
    subject: str
    issuer: str
    verified: bool
    verify_error: str = ""

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


def split_domain(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` -> (host, port); 443 by default."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port.isdigit() else 443
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, 443


def _name(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common:
        return str(common[0].value)
    return name.rfc4514_string()


def _handshake(host: str, port: int, context: ssl.SSLContext, timeout: float, cancel: CancelToken) -> bytes:
    cancel.raise_if_cancelled(f"The certificate check of {host}:{port}")
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise OperationTimeout(f"{host}:{port} did not accept a connection within {timeout:g} s.") from None
    except OSError as error:
        raise ConnectError(f"Cannot connect to {host}:{port}: {error.strerror or error}.") from None
    unregister = cancel.on_cancel(raw.close)
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except TimeoutError:
        raise OperationTimeout(f"The TLS handshake with {host}:{port} did not finish within {timeout:g} s.") from None
    finally:
        unregister()
        raw.close()
    if not der:
        raise ConnectError(f"{host}:{port} sent no certificate.")
    return der


def fetch_certificate(
    host: str, port: int = 443, *, timeout: float = 10.0, cafile: str | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> CertificateInfo:
    """The certificate ``host:port`` serves, verified against the system's CAs (or ``cafile``).

    A certificate that does not verify is still read (without verification) so its dates show.
    Raises ConnectError or OperationTimeout when no handshake is possible.
    """
    context = ssl.create_default_context(cafile=cafile)
    verified, verify_error = True, ""
    try:
        der = _handshake(host, port, context, timeout, cancel)
    except ssl.SSLCertVerificationError as error:
        verified, verify_error = False, str(error.verify_message or error.reason or error)
        loose = ssl.create_default_context()
        loose.check_hostname = False
        loose.verify_mode = ssl.CERT_NONE
        try:
            der = _handshake(host, port, loose, timeout, cancel)
        except ssl.SSLError as again:
            raise ConnectError(f"The TLS handshake with {host}:{port} failed: {again.reason or again}.") from None
    except ssl.SSLError as error:
        raise ConnectError(f"The TLS handshake with {host}:{port} failed: {error.reason or error}.") from None
    certificate = x509.load_der_x509_certificate(der)
    return CertificateInfo(host, port, certificate.not_valid_after_utc, _name(certificate.subject),
                           _name(certificate.issuer), verified, verify_error)


def check_tls(
    server: str, domain: str, *, warning_days: float = 20.0, critical_days: float = 3.0, timeout: float = 10.0,
    cafile: str | None = None, now: dt.datetime | None = None, cancel: CancelToken = NEVER_CANCELLED,
) -> CheckResult:
    """One domain's certificate as a check result (subject "host:port")."""
    now = now or dt.datetime.now(dt.UTC)
    host, port = split_domain(domain)
    subject = f"{host}:{port}"
    action = Action("Show Cloudflare", PAGE_CLOUDFLARE, server or None)
    try:
        info = fetch_certificate(host, port, timeout=timeout, cafile=cafile, cancel=cancel)
    except (ConnectError, OperationTimeout) as error:
        return CheckResult(server, ids.TLS, Severity.UNKNOWN, f"The certificate of {subject} can't be checked from "
                           f"this laptop: {error}", subject, (str(error),), action)
    days = info.days_left(now)
    evidence = (f"subject {info.subject}, issuer {info.issuer}",
                f"valid until {info.not_after:%Y-%m-%d %H:%M} UTC ({days:.1f} days left)",
                "verified" if info.verified else f"NOT verified: {info.verify_error}")
    data = {"days_left": round(days, 2), "not_after": info.not_after.isoformat(), "verified": info.verified}
    if days <= 0:
        return CheckResult(server, ids.TLS, Severity.CRITICAL, f"The certificate of {subject} EXPIRED on "
                           f"{info.not_after:%Y-%m-%d}.", subject, evidence, action, data)
    if not info.verified:
        return CheckResult(server, ids.TLS, Severity.CRITICAL, f"The certificate of {subject} is not trusted: "
                           f"{info.verify_error}.", subject, evidence, action, data)
    if days <= critical_days:
        severity = Severity.CRITICAL
    elif days <= warning_days:
        severity = Severity.WARNING
    else:
        return CheckResult(server, ids.TLS, Severity.OK, f"The certificate of {subject} is valid for "
                           f"{days:.0f} more days.", subject, evidence, None, data)
    return CheckResult(server, ids.TLS, severity, f"The certificate of {subject} expires in {days:.1f} days "
                       f"({info.not_after:%Y-%m-%d}).", subject, evidence, action, data)
