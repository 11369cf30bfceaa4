"""Certificates checked from this laptop against real TLS servers on loopback."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.checks import ids
from services.checks.model import Severity
from services.checks.tls import check_tls, split_domain
from tests.services.checks.check_helpers import free_port

Serve = Callable[[float], tuple[int, Path]]


def make_certificate(folder: Path, days_left: float) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=days_left))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / f"cert-{days_left}.pem"
    key_path = folder / f"key-{days_left}.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(days_left)`` starts a TLS server whose certificate expires in that many days."""
    stops: list[Callable[[], None]] = []

    def start(days_left: float) -> tuple[int, Path]:
        cert, key = make_certificate(tmp_path, days_left)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        stopped = threading.Event()

        def loop() -> None:
            while not stopped.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (OSError, ssl.SSLError):
                    conn.close()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()

        def stop() -> None:
            stopped.set()
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
            except OSError:
                pass
            listener.close()
            thread.join(5)

        stops.append(stop)
        return listener.getsockname()[1], cert

    yield start
    for stop in stops:
        stop()


@pytest.mark.parametrize(("days", "severity"), [(60, Severity.OK), (10, Severity.WARNING), (2, Severity.CRITICAL),
                                                (-1, Severity.CRITICAL)])
def test_expiry_moves_the_severity(serve: Serve, days: float, severity: Severity) -> None:
    port, cert = serve(days)
    result = check_tls("app1", f"127.0.0.1:{port}", cafile=str(cert), timeout=5)
    assert result.check == ids.TLS and result.subject == f"127.0.0.1:{port}"
    assert result.severity is severity, result.summary
    if days < 0:
        assert "EXPIRED" in result.summary
    assert any("shop.example.test" in line for line in result.evidence)


def test_the_thresholds_come_from_the_config(serve: Serve) -> None:
    port, cert = serve(10)
    loose = check_tls("app1", f"127.0.0.1:{port}", cafile=str(cert), warning_days=5, critical_days=1)
    strict = check_tls("app1", f"127.0.0.1:{port}", cafile=str(cert), warning_days=30, critical_days=15)
    assert (loose.severity, strict.severity) == (Severity.OK, Severity.CRITICAL)


def test_an_untrusted_certificate_is_critical_and_still_shows_its_dates(serve: Serve) -> None:
    port, _ = serve(60)
    result = check_tls("app1", f"127.0.0.1:{port}", timeout=5)  # the system CAs don't know it
    assert result.severity is Severity.CRITICAL and "not trusted" in result.summary
    assert any("days left" in line for line in result.evidence)


def test_a_domain_that_does_not_answer_is_unknown_not_a_crash() -> None:
    port = free_port()
    result = check_tls("app1", f"127.0.0.1:{port}", timeout=2)
    assert result.severity is Severity.UNKNOWN and "can't be checked" in result.summary


def test_domain_forms() -> None:
    assert split_domain("example.com") == ("example.com", 443)
    assert split_domain("example.com:8443") == ("example.com", 8443)
    assert split_domain("[2001:db8::1]:8443") == ("2001:db8::1", 8443)
