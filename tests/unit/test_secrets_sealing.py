"""Values sealed at rest: AES-GCM bound to their owner, a fresh nonce each time, a root-only key made once."""
from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from fargo.control.secrets.sealing import KEY_BYTES, Sealer, SealingError, load_or_create_key


def test_a_sealed_value_opens_with_its_owner_only(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "secrets" / "key")
    sealed = sealer.seal(b"hunter2", "secretsmanager:arn:v1")
    assert b"hunter2" not in sealed
    assert sealer.open(sealed, "secretsmanager:arn:v1") == b"hunter2"
    with pytest.raises(SealingError):
        sealer.open(sealed, "secretsmanager:arn:v2")


def test_each_seal_takes_a_new_nonce(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "secrets" / "key")
    assert sealer.seal(b"same", "o") != sealer.seal(b"same", "o")


def test_another_key_cannot_open_it(tmp_path: Path) -> None:
    sealed = Sealer(tmp_path / "one" / "key").seal(b"v", "o")
    with pytest.raises(SealingError):
        Sealer(tmp_path / "two" / "key").open(sealed, "o")


def test_a_tampered_value_does_not_open(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "secrets" / "key")
    sealed = bytearray(sealer.seal(b"value", "o"))
    sealed[-1] ^= 1
    with pytest.raises(SealingError):
        sealer.open(bytes(sealed), "o")


def test_the_key_file_is_root_only_and_made_once(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "key"
    os.umask(0o022)
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES and load_or_create_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # no temporary file left behind


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "key"
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create_key(path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1


def test_a_truncated_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "key"
    path.parent.mkdir()
    path.write_bytes(b"short")
    with pytest.raises(SealingError):
        load_or_create_key(path)
