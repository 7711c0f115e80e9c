"""WWW-Authenticate challenges as registries send them, and the bearer token cache."""
from __future__ import annotations

from fargo.runtime.registry.auth import Challenge, Credentials, TokenCache, parse_www_authenticate, token_key


def test_docker_hub_bearer_challenge_keeps_the_comma_inside_its_quoted_scope() -> None:
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:samalba/my-app:pull,push"')
    assert parse_www_authenticate(header) == [Challenge("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:samalba/my-app:pull,push"})]


def test_ecr_basic_challenge() -> None:
    header = 'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"'
    [challenge] = parse_www_authenticate(header)
    assert challenge.scheme == "basic" and challenge.realm.endswith(".amazonaws.com/")
    assert challenge.params["service"] == "ecr.amazonaws.com"


def test_several_challenges_token68_escapes_spaces_and_case() -> None:
    header = 'Negotiate abc==, BASIC Realm=plain, Bearer realm = "a\\"b" , error="insufficient_scope"'
    assert parse_www_authenticate(header) == [
        Challenge("negotiate", {}),
        Challenge("basic", {"realm": "plain"}),
        Challenge("bearer", {"realm": 'a"b', "error": "insufficient_scope"}),
    ]


def test_empty_and_bare_headers() -> None:
    assert parse_www_authenticate("") == []
    assert parse_www_authenticate("Basic") == [Challenge("basic", {})]


def test_tokens_are_cached_per_scope_and_user_until_they_expire(monkeypatch: object) -> None:
    import fargo.runtime.registry.auth as auth

    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])  # type: ignore[attr-defined]
    cache = TokenCache()
    challenge = Challenge("bearer", {"realm": "r", "service": "s"})
    alice = token_key(challenge, "repository:a:pull", Credentials("alice", "pw"))
    cache.put(alice, "t1", expires_in=300)
    assert cache.get(alice) == "t1"
    assert cache.get(token_key(challenge, "repository:b:pull", Credentials("alice", "pw"))) is None
    assert cache.get(token_key(challenge, "repository:a:pull", None)) is None
    now[0] += 296
    assert cache.get(alice) is None  # dropped a little before it lapses


def test_short_lived_tokens_live_the_specs_sixty_second_minimum(monkeypatch: object) -> None:
    import fargo.runtime.registry.auth as auth

    now = [0.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])  # type: ignore[attr-defined]
    cache = TokenCache()
    key = ("r", "s", "scope", "")
    cache.put(key, "t", expires_in=0)
    now[0] = 50
    assert cache.get(key) == "t"


def test_credentials_do_not_show_the_password() -> None:
    assert "pw" not in repr(Credentials("alice", "pw"))
    assert Credentials("AWS", "x").basic() == "Basic QVdTOng="
