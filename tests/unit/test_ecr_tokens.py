"""ECR authorization tokens: Fargo-signed, 12 hours, checked from the Authorization header alone; the key file
is root-only and made once."""
from __future__ import annotations

import base64
import stat
from pathlib import Path

from fargo.control.ecr.tokens import TOKEN_LIFETIME_SECONDS, EcrTokens, TokenCheck


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _basic(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()


def test_an_issued_token_is_base64_aws_password_valid_for_twelve_hours(tmp_path: Path) -> None:
    clock = Clock(1_700_000_000.5)
    tokens = EcrTokens(tmp_path / "ecr" / "token.key", now=clock)
    issued = tokens.issue()
    assert issued.expires_at == 1_700_000_000 + TOKEN_LIFETIME_SECONDS
    user, _, password = base64.b64decode(issued.authorization_token).decode().partition(":")
    assert (user, password) == ("AWS", issued.password)
    assert tokens.check_authorization("Basic " + issued.authorization_token) is TokenCheck.VALID
    clock.t = issued.expires_at - 1
    assert tokens.check_password(issued.password) is TokenCheck.VALID
    clock.t = issued.expires_at
    assert tokens.check_authorization("Basic " + issued.authorization_token) is TokenCheck.EXPIRED


def test_forged_altered_or_foreign_tokens_are_invalid(tmp_path: Path) -> None:
    tokens = EcrTokens(tmp_path / "token.key")
    password = tokens.issue().password
    payload, _, signature = password.partition(".")
    longer = base64.urlsafe_b64encode(b"1:9999999999:00").decode().rstrip("=")
    for bad in ("", "forged", f"{longer}.{signature}", f"{payload}.{signature[:-2]}AA", f"{payload}.", "a.b.c"):
        assert tokens.check_password(bad) is TokenCheck.INVALID, bad
    other = EcrTokens(tmp_path / "other.key")
    assert other.check_password(password) is TokenCheck.INVALID
    assert tokens.check_authorization(_basic(f"bob:{password}")) is TokenCheck.INVALID
    assert tokens.check_authorization(_basic(password)) is TokenCheck.INVALID  # no "AWS:"
    assert tokens.check_authorization("Basic !!!") is TokenCheck.INVALID


def test_no_credentials_is_missing(tmp_path: Path) -> None:
    tokens = EcrTokens(tmp_path / "token.key")
    assert tokens.check_authorization(None) is TokenCheck.MISSING
    assert tokens.check_authorization("Bearer abc") is TokenCheck.MISSING


def test_the_key_is_root_only_and_survives_a_restart(tmp_path: Path) -> None:
    key = tmp_path / "ecr" / "token.key"
    password = EcrTokens(key).issue().password
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert EcrTokens(key).check_password(password) is TokenCheck.VALID  # a new process, the same key
    assert [p.name for p in key.parent.iterdir()] == ["token.key"]  # nothing left aside
