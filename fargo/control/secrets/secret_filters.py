"""ListSecrets' Filters, as AWS's API reference describes them: each key a prefix match (name, tag-key and
tag-value case-sensitive; description and all not), values of one filter OR-ed, filters AND-ed, and a value
starting with `!` excluding what it matches. Fargo's secrets have no primary region and no owning service."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from fargo.store.secrets_store import SecretRow


def matches_filters(secret: SecretRow, tags: Sequence[tuple[str, str]], filters: Sequence[dict]) -> bool:
    return all(_matches_filter(secret, tags, f["Key"], f.get("Values") or []) for f in filters)


def _matches_filter(secret: SecretRow, tags: Sequence[tuple[str, str]], key: str, values: Sequence[str]) -> bool:
    wanted = [v for v in values if not v.startswith("!")]
    unwanted = [v[1:] for v in values if v.startswith("!")]
    fields = _fields(secret, tags, key)
    if any(_prefix_match(fields, v, key) for v in unwanted):
        return False
    return not wanted or any(_prefix_match(fields, v, key) for v in wanted)


def _fields(secret: SecretRow, tags: Sequence[tuple[str, str]], key: str) -> list[str]:
    if key == "name":
        return [secret.name]
    if key == "description":
        return [secret.description or ""]
    if key == "tag-key":
        return [k for k, _ in tags]
    if key == "tag-value":
        return [v for _, v in tags]
    if key == "all":
        return [secret.name, secret.description or "", *(k for k, _ in tags), *(v for _, v in tags)]
    return []  # primary-region, owning-service: none of Fargo's secrets has one


def _prefix_match(fields: Iterable[str], value: str, key: str) -> bool:
    if key == "all":  # every word of the value starts a field or a word of one
        words = [w for f in fields for w in (f.lower(), *f.lower().split())]
        return all(any(w.startswith(q) for w in words) for q in value.lower().split())
    if key == "description":
        return any(f.lower().startswith(value.lower()) for f in fields)
    return any(f.startswith(value) for f in fields)
