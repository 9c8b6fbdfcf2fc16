"""Push tokens for tests: RSA key pairs, signed ID tokens, and a local certificate server."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt as google_crypt
from google.auth import jwt as google_jwt

from tests.support.fakes import self_signed_certificate

AUDIENCE = "https://relay.example.test/push"


ACCOUNT = "pubsub-push@project.iam.gserviceaccount.com"


KID = "kid1"


_DROP = object()  # a claim override that removes the claim


class KeyPair:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert_pem = self_signed_certificate(self.key, common_name="relay-test")
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": "https://accounts.google.com", "aud": AUDIENCE}
    claims |= {"sub": "1234567890", "email": ACCOUNT, "email_verified": True}
    claims |= {"iat": now, "exp": now + 3600} | overrides
    return {name: value for name, value in claims.items() if value is not _DROP}


def _sign(keys: KeyPair, kid: str = KID, **overrides: Any) -> str:
    # A signer from the key object: parsing the PEM again costs tens of ms per token.
    signer = google_crypt.RSASigner(keys.key, key_id=kid)
    token: bytes = google_jwt.encode(signer, _claims(**overrides), key_id=kid)
    return token.decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(document: object) -> str:
    return _b64(json.dumps(document).encode())


class CertServer:
    """Serves a certificate document on a free loopback port and counts requests."""

    def __init__(self, certs: dict[str, str]) -> None:
        self.certs = certs
        self.status = 200
        self.cache_control = "public, max-age=3600, must-revalidate, no-transform"  # Google's
        self.body: bytes | None = None
        self.delay = 0.0  # a slow certificate server
        self.requests = 0  # counted before answering, so final once the client has the answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                time.sleep(server.delay)
                body = server.body if server.body is not None else json.dumps(server.certs).encode()
                self.send_response(server.status)  # also sends Date, which caching needs
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", server.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/oauth2/v1/certs"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
