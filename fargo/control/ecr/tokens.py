"""ECR authorization tokens: the password of `AWS:<password>` is Fargo-signed (HMAC-SHA256) and carries its own
expiry, so checking one needs only the key (DATA_DIR/ecr/token.key, root-only), never the store."""
from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fargo import clock

TOKEN_LIFETIME_SECONDS = 12 * 3600  # as ECR's GetAuthorizationToken
_VERSION = "1"
_KEY_BYTES = 32
USER = "AWS"


class TokenCheck(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"  # not a Fargo token, forged, or not `AWS:<password>`
    MISSING = "missing"  # no Basic credentials at all


@dataclass(frozen=True)
class IssuedToken:
    password: str
    expires_at: float

    @property
    def authorization_token(self) -> str:
        """What GetAuthorizationToken returns: base64 of `AWS:<password>`."""
        return base64.b64encode(f"{USER}:{self.password}".encode()).decode()


class EcrTokens:
    def __init__(self, key_path: Path, now: Callable[[], float] = clock.now) -> None:
        self.key_path = key_path
        self._now = now
        self._key: bytes | None = None

    def issue(self) -> IssuedToken:
        expires_at = int(self._now()) + TOKEN_LIFETIME_SECONDS
        payload = f"{_VERSION}:{expires_at}:{secrets.token_hex(8)}".encode()
        password = f"{_b64(payload)}.{_b64(self._sign(payload))}"
        return IssuedToken(password, float(expires_at))

    def check_password(self, password: str) -> TokenCheck:
        payload_text, _, signature_text = password.partition(".")
        try:
            payload, signature = _unb64(payload_text), _unb64(signature_text)
        except ValueError:
            return TokenCheck.INVALID
        if not hmac.compare_digest(signature, self._sign(payload)):
            return TokenCheck.INVALID
        version, _, rest = payload.decode(errors="replace").partition(":")
        expiry = rest.partition(":")[0]
        if version != _VERSION or not expiry.isdigit():
            return TokenCheck.INVALID
        return TokenCheck.VALID if self._now() < int(expiry) else TokenCheck.EXPIRED

    def check_authorization(self, header: str | None) -> TokenCheck:
        """An `Authorization` header: `Basic base64(AWS:<password>)` with a valid password, or why not."""
        if not header:
            return TokenCheck.MISSING
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return TokenCheck.MISSING
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return TokenCheck.INVALID
        if not sep or user != USER:
            return TokenCheck.INVALID
        return self.check_password(password)

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._signing_key(), payload, hashlib.sha256).digest()

    def _signing_key(self) -> bytes:
        if self._key is None:
            self._key = _load_or_make_key(self.key_path)
        return self._key


def _load_or_make_key(path: Path) -> bytes:
    """The key file, made on first use (0600 in a 0700 dir). It is written aside and linked into place, so a
    second process racing this one reads a whole key: the one that was linked first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if not path.exists():
        aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(_KEY_BYTES))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    key = path.read_bytes()
    if len(key) < _KEY_BYTES:
        raise RuntimeError(f"the ECR token key {path} is damaged (shorter than {_KEY_BYTES} bytes)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not text:
        raise ValueError("empty")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
