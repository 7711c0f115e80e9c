"""Values sealed at rest: AES-256-GCM with a random nonce per value and the value's owner as associated data.

The key is `DATA_DIR/secrets/key` (32 random bytes, root-only: the directory 0700, the file 0600), made on
first use. It is made under a temporary name and linked into place, so two Fargos starting on one data dir
cannot each write a key: the second finds the first's. The associated data (a secret version's ARN and id, a
parameter version's name and number) binds a sealed value to its row: copied to another row, it opens no more.
"""
from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT = b"\x01"  # the first byte of a sealed value: the layout below (nonce, then ciphertext and tag)


class SealingError(Exception):
    """A sealed value does not open with this key and owner (or the key file is unusable)."""


class Sealer:
    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    def seal(self, plaintext: bytes, owner: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return _FORMAT + nonce + self._cipher().encrypt(nonce, plaintext, owner.encode())

    def open(self, sealed: bytes, owner: str) -> bytes:
        if len(sealed) < 1 + NONCE_BYTES or sealed[:1] != _FORMAT:
            raise SealingError("not a sealed value")
        nonce, body = sealed[1:1 + NONCE_BYTES], sealed[1 + NONCE_BYTES:]
        try:
            return self._cipher().decrypt(nonce, body, owner.encode())
        except InvalidTag:
            raise SealingError("the sealed value does not open with this key") from None

    def _cipher(self) -> AESGCM:
        with self._lock:
            if self._aead is None:
                self._aead = AESGCM(load_or_create_key(self.key_path))
            return self._aead


def load_or_create_key(path: Path) -> bytes:
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # also when it was there already, made by something with a wider umask
    if not path.exists():
        _create_key(path)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SealingError(f"{path} is not a {KEY_BYTES}-byte key")
    return key


def _create_key(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)  # fails if another process put its key there first: that one wins
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
