"""Registry authentication: `WWW-Authenticate` challenges, the credentials a caller gives, and bearer tokens
cached per (realm, service, scope, user) until they expire (distribution's token spec); which registries
asked for Basic auth.
"""
from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TOKEN}))\s*")
_TOKEN68 = re.compile(r"\s*[A-Za-z0-9\-._~+/]+=*\s*(?:,|$)")
DEFAULT_TOKEN_SECONDS = 60  # the token spec: "if omitted, 60 seconds"


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or an ECR token as the password of user AWS)."""

    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic"
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Every challenge in one `WWW-Authenticate` value (RFC 7235): `Bearer realm="x",service="y", Basic realm=z`.

    Scheme and parameter names are case-insensitive (kept lower case); quoted values are unescaped. Items
    that are neither (a token68, stray text) are skipped rather than failing the whole header.
    """
    challenges: list[Challenge] = []
    text, pos = header or "", 0
    while pos < len(text):
        if text[pos] in " ,\t":
            pos += 1
            continue
        param = _PARAM.match(text, pos)
        if param and challenges:
            name, quoted, bare = param.group(1).lower(), param.group(2), param.group(3)
            challenges[-1].params[name] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            pos = param.end()
            continue
        scheme = _SCHEME.match(text, pos)
        if scheme and not param:
            challenges.append(Challenge(scheme.group(1).lower(), {}))
            pos = scheme.end()
            token68 = _TOKEN68.match(text, pos)
            if token68 and not _PARAM.match(text, pos):
                pos = token68.end()
            continue
        pos += 1  # not a parameter or scheme: skip a character and resynchronise
    return challenges


@dataclass
class _Token:
    value: str
    expires: float


class TokenCache:
    """Bearer tokens by (realm, service, scope, user); shared by every pull of one puller."""

    def __init__(self, clock: type[time.struct_time] | None = None) -> None:
        self._tokens: dict[tuple[str, str, str, str], _Token] = {}
        self._basic: set[tuple[str, str]] = set()  # (registry URL, user) that challenged for Basic

    def wants_basic(self, registry: str, username: str) -> bool:
        """Whether `registry` challenged `username` for Basic before: the credentials then go with the first
        request, which saves the round trip of the challenge (a refusal reads the same either way)."""
        return (registry, username) in self._basic

    def saw_basic(self, registry: str, username: str) -> None:
        self._basic.add((registry, username))

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        token = self._tokens.get(key)
        if token is None or token.expires <= time.monotonic():
            self._tokens.pop(key, None)
            return None
        return token.value

    def put(self, key: tuple[str, str, str, str], value: str, expires_in: float) -> None:
        # A little early, so a token does not lapse between our check and the registry's.
        self._tokens[key] = _Token(value, time.monotonic() + max(expires_in, DEFAULT_TOKEN_SECONDS) - 5)


def token_key(challenge: Challenge, scope: str, credentials: Credentials | None) -> tuple[str, str, str, str]:
    user = credentials.username + ":" + str(hash(credentials.password)) if credentials else ""
    return challenge.realm, challenge.params.get("service", ""), scope, user
