"""Fargate's two capacity providers, FARGATE and FARGATE_SPOT: DescribeCapacityProviders, the checks of a
capacity provider strategy, and which provider each task of a strategy goes to (base first, then by weight).

Every account has both providers (AWS creates them); a cluster can use those it is associated with
(CreateCluster or PutClusterCapacityProviders). Strategy resolution is pure, so services and RunTask share it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fargo.arns import Arns
from fargo.control import capacity_messages as msg
from fargo.control.pagination import next_token, page_bounds
from fargo.errors import InvalidParameterException

FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"
FARGATE_PROVIDERS = (FARGATE, FARGATE_SPOT)
_MAX_STRATEGY_ITEMS = 20
_MAX_WEIGHT = 1000
_MAX_BASE = 100_000


def provider_name(ref: str) -> str:
    """A capacity provider named by short name or by ARN (`...:capacity-provider/NAME`)."""
    return ref.rsplit(":capacity-provider/", 1)[-1] if ref.startswith("arn:") else ref


def describe_capacity_providers(arns: Arns, p: dict, associated: Sequence[str] | None = None) -> dict:
    """DescribeCapacityProviders: the named providers (all of them when none is named), unknown ones as MISSING
    failures. `associated` (the cluster's providers, when the call names a cluster) narrows the answer."""
    offset, limit = page_bounds(p, default_limit=10, max_limit=10)
    refs = p.get("capacityProviders") or list(FARGATE_PROVIDERS)
    found, failures = [], []
    for ref in refs:
        name = provider_name(ref)
        if name not in FARGATE_PROVIDERS or (associated is not None and name not in associated):
            failures.append({"arn": ref if ref.startswith("arn:") else arns.capacity_provider(name),
                             "reason": "MISSING"})
            continue
        found.append(_provider_doc(arns, name))
    page = found[offset:offset + limit + 1]
    return {"capacityProviders": page[:limit], "failures": failures,
            "nextToken": next_token(offset, limit, len(page))}


def _provider_doc(arns: Arns, name: str) -> dict:
    return {"capacityProviderArn": arns.capacity_provider(name), "name": name, "status": "ACTIVE",
            "type": name, "tags": []}


def check_cluster_providers(names: Sequence[str]) -> list[str]:
    """The capacityProviders of CreateCluster / PutClusterCapacityProviders: Fargate's own, each once."""
    out: list[str] = []
    for ref in names:
        name = provider_name(ref)
        if name not in FARGATE_PROVIDERS:
            raise InvalidParameterException(msg.PROVIDER_NOT_FOUND)
        if name not in out:
            out.append(name)
    if len(out) > msg.MAX_PROVIDERS_PER_CLUSTER:
        raise InvalidParameterException(msg.TOO_MANY_PROVIDERS)
    return out


def check_strategy(strategy: Sequence[Mapping[str, Any]], associated: Sequence[str]) -> list[dict]:
    """A strategy's items as AWS echoes them ({capacityProvider, weight, base}, defaults 0), each provider one
    of the cluster's (`associated`), at most one with a base. Weights are checked when the strategy is used."""
    if len(strategy) > _MAX_STRATEGY_ITEMS:
        raise InvalidParameterException(msg.STRATEGY_TOO_LONG)
    items: list[dict] = []
    for raw in strategy:
        name = raw.get("capacityProvider") or ""
        if not name:
            raise InvalidParameterException(msg.EMPTY_PROVIDER_NAME)
        weight, base = raw.get("weight", 0), raw.get("base", 0)
        if not 0 <= weight <= _MAX_WEIGHT:
            raise InvalidParameterException(msg.WEIGHT_RANGE)
        if not 0 <= base <= _MAX_BASE:
            raise InvalidParameterException(msg.BASE_RANGE)
        if name not in associated:
            raise InvalidParameterException(msg.NOT_ASSOCIATED)
        if any(item["capacityProvider"] == name for item in items):
            raise InvalidParameterException(msg.DUPLICATE_PROVIDER)
        items.append({"capacityProvider": name, "weight": weight, "base": base})
    if sum(1 for item in items if item["base"] > 0) > 1:
        raise InvalidParameterException(msg.BASE_ON_MANY)
    return items


def resolve_strategy(cluster: Mapping[str, Any], launch_type: str | None,
                     strategy: Sequence[Mapping[str, Any]] | None) -> list[dict] | None:
    """The strategy a RunTask or CreateService runs by: the one given, or the cluster's default when neither a
    launch type nor a strategy is given; None means the FARGATE launch type (no capacity provider)."""
    if strategy and launch_type:
        raise InvalidParameterException(msg.LAUNCH_TYPE_AND_STRATEGY)
    if strategy:
        items = check_strategy(strategy, cluster.get("capacityProviders") or [])
        if not any(item["weight"] > 0 for item in items):
            raise InvalidParameterException(msg.STRATEGY_NO_WEIGHT)
        return items
    default = cluster.get("defaultCapacityProviderStrategy") or []
    if launch_type or not default:
        return None
    if not any(item.get("weight", 0) > 0 for item in default):
        raise InvalidParameterException(msg.DEFAULT_STRATEGY_NO_WEIGHT)
    return [dict(item) for item in default]


def choose_providers(strategy: Sequence[Mapping[str, Any]], count: int,
                     already: Mapping[str, int] | None = None) -> list[str]:
    """The provider of each of `count` new tasks, given how many tasks each provider has already (a service's
    live tasks; empty for RunTask). The provider with a base gets tasks until it has `base`; the rest go by
    weight: each next task to the weighted provider furthest below its share (ties: the strategy's order).
    Deterministic, so a replayed scheduler pass makes the same choice."""
    counts = {item["capacityProvider"]: (already or {}).get(item["capacityProvider"], 0) for item in strategy}
    bases = {item["capacityProvider"]: item.get("base", 0) for item in strategy}
    weighted = [(item["capacityProvider"], item.get("weight", 0)) for item in strategy if item.get("weight", 0) > 0]
    if count > 0 and not weighted and not any(bases.values()):
        raise InvalidParameterException(msg.STRATEGY_NO_WEIGHT)
    chosen: list[str] = []
    for _ in range(count):
        short = next((name for name, base in bases.items() if counts[name] < base), None)
        if short is None:
            if not weighted:
                raise InvalidParameterException(msg.STRATEGY_NO_WEIGHT)
            # the tasks above its base are the provider's weighted share
            short = min(weighted, key=lambda nw: (max(0, counts[nw[0]] - bases[nw[0]]) + 1) / nw[1])[0]
        counts[short] += 1
        chosen.append(short)
    return chosen
