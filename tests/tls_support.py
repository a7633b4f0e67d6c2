"""A throwaway certificate authority for https tests (made with openssl)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

#: A name only the test proxy resolves (moto reads a ``localhost…`` Host as path-style).
HIDDEN_HOST = "localhost-behind-proxy.test"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, ``localhost`` and :data:`HIDDEN_HOST`,
    and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    names = f"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:{HIDDEN_HOST}"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", names,
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS settings for a test server presenting ``cert``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
