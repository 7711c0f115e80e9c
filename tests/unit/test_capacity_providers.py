"""Capacity provider strategies: AWS's checks, the cluster's default, and which provider each task goes to
(base first, then by weight), plus account settings and Spot picks on a SQLite store."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest

from fargo.config import Config
from fargo.control import capacity_messages as msg
from fargo.control.account_settings import AccountSettings
from fargo.control.capacity_providers import (check_cluster_providers, check_strategy, choose_providers,
                                              resolve_strategy)
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.spot import how_many
from fargo.errors import InvalidParameterException
from fargo.store.database import Store

BOTH = ["FARGATE", "FARGATE_SPOT"]


def refusal(call, *args) -> str:  # noqa: ANN001
    with pytest.raises(InvalidParameterException) as e:
        call(*args)
    return e.value.message


def test_base_is_satisfied_first_then_tasks_follow_the_weights() -> None:
    strategy = [{"capacityProvider": "FARGATE", "base": 2, "weight": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
    chosen = choose_providers(strategy, 10)
    assert chosen[:2] == ["FARGATE", "FARGATE"]
    assert Counter(chosen[2:]) == {"FARGATE_SPOT": 6, "FARGATE": 2}


def test_weights_one_to_four_give_four_spot_tasks_for_each_on_demand_one() -> None:
    strategy = [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 4}]
    assert Counter(choose_providers(strategy, 50)) == {"FARGATE": 10, "FARGATE_SPOT": 40}


def test_the_choice_is_deterministic_and_counts_the_tasks_a_service_has_already() -> None:
    strategy = [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert choose_providers(strategy, 4) == choose_providers(strategy, 4)
    assert choose_providers(strategy, 2, {"FARGATE": 3, "FARGATE_SPOT": 1}) == ["FARGATE_SPOT", "FARGATE_SPOT"]
    based = [{"capacityProvider": "FARGATE", "base": 2, "weight": 0}, {"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert choose_providers(based, 2, {"FARGATE": 2}) == ["FARGATE_SPOT", "FARGATE_SPOT"]
    assert choose_providers(based, 2, {"FARGATE": 1}) == ["FARGATE", "FARGATE_SPOT"]


def test_a_weight_zero_provider_gets_no_task_beyond_its_base() -> None:
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 0}, {"capacityProvider": "FARGATE", "weight": 5}]
    assert set(choose_providers(strategy, 7)) == {"FARGATE"}


def test_strategy_items_are_echoed_with_aws_defaults() -> None:
    assert check_strategy([{"capacityProvider": "FARGATE_SPOT"}], BOTH) == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 0, "base": 0}]


@pytest.mark.parametrize("strategy, associated, message", [
    ([{"capacityProvider": "FARGATE_SPOT", "weight": 1}], ["FARGATE"], msg.NOT_ASSOCIATED),
    ([{"capacityProvider": "MyProvider", "weight": 1}], BOTH, msg.NOT_ASSOCIATED),
    ([{"capacityProvider": "FARGATE", "base": 1, "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "base": 1}],
     BOTH, msg.BASE_ON_MANY),
    ([{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE", "weight": 2}], BOTH,
     msg.DUPLICATE_PROVIDER),
    ([{"capacityProvider": "FARGATE", "weight": 1001}], BOTH, msg.WEIGHT_RANGE),
    ([{"capacityProvider": "FARGATE", "base": 100001}], BOTH, msg.BASE_RANGE),
    ([{"capacityProvider": "FARGATE", "weight": 1}] * 21, BOTH, msg.STRATEGY_TOO_LONG),
])
def test_bad_strategies_are_refused_in_awss_words(strategy: list, associated: list, message: str) -> None:
    assert refusal(check_strategy, strategy, associated) == message


def test_launch_type_and_strategy_together_are_refused() -> None:
    cluster = {"capacityProviders": BOTH}
    assert refusal(resolve_strategy, cluster, "FARGATE", [{"capacityProvider": "FARGATE", "weight": 1}]) == (
        msg.LAUNCH_TYPE_AND_STRATEGY)


def test_a_strategy_of_weights_all_zero_is_refused_given_or_by_default() -> None:
    cluster = {"capacityProviders": BOTH, "defaultCapacityProviderStrategy": [
        {"capacityProvider": "FARGATE", "weight": 0, "base": 0}]}
    assert refusal(resolve_strategy, cluster, None, [{"capacityProvider": "FARGATE_SPOT"}]) == msg.STRATEGY_NO_WEIGHT
    assert refusal(resolve_strategy, cluster, None, None) == msg.DEFAULT_STRATEGY_NO_WEIGHT
    assert resolve_strategy(cluster, "FARGATE", None) is None  # a launch type bypasses the default


def test_the_clusters_default_strategy_is_used_when_neither_is_given() -> None:
    default = [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    assert resolve_strategy({"capacityProviders": BOTH, "defaultCapacityProviderStrategy": default}, None,
                            None) == default
    assert resolve_strategy({"capacityProviders": []}, None, None) is None


def test_a_cluster_takes_only_fargates_providers_each_once() -> None:
    assert check_cluster_providers(["FARGATE_SPOT", "FARGATE", "FARGATE_SPOT"]) == ["FARGATE_SPOT", "FARGATE"]
    assert check_cluster_providers(["arn:aws:ecs:us-east-1:000000000000:capacity-provider/FARGATE"]) == ["FARGATE"]
    assert refusal(check_cluster_providers, ["MyProvider"]) == msg.PROVIDER_NOT_FOUND


def test_spot_interruption_counts() -> None:
    assert how_many(5, None, None) == 5
    assert how_many(5, 2, None) == 2 and how_many(1, 3, None) == 1
    assert how_many(5, None, 0.5) == 3
    for count, fraction in ((0, None), (None, 0.0), (None, 1.5), (1, 0.5)):
        with pytest.raises(InvalidParameterException):
            how_many(5, count, fraction)


# --- on a store ---------------------------------------------------------------------------------

@pytest.fixture
def ctx(tmp_path: Path) -> ControlContext:
    store = Store(f"sqlite:///{tmp_path / 'fargo.db'}")
    store.migrate()
    return ControlContext(Config(data_dir=tmp_path), store)


def test_account_settings_fall_back_from_principal_to_root_to_aws_default(ctx: ControlContext) -> None:
    settings = AccountSettings(ctx)
    user = "arn:aws:iam::000000000000:user/alice"
    assert settings.effective("containerInsights", user) == "disabled"
    settings.put_default({"name": "containerInsights", "value": "enhanced"})
    assert settings.effective("containerInsights", user) == "enhanced"
    settings.put({"name": "containerInsights", "value": "enabled", "principalArn": user})
    assert settings.effective("containerInsights", user) == "enabled"
    assert settings.delete({"name": "containerInsights", "principalArn": user})["setting"]["value"] == "enabled"
    assert settings.effective("containerInsights", user) == "enhanced"


def test_a_new_cluster_takes_the_accounts_container_insights(ctx: ControlContext) -> None:
    AccountSettings(ctx).put_default({"name": "containerInsights", "value": "enabled"})
    cluster = Clusters(ctx).create("insightful", None, None)
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    explicit = Clusters(ctx).create("plain", [{"name": "containerInsights", "value": "disabled"}], None)
    assert explicit["settings"] == [{"name": "containerInsights", "value": "disabled"}]


def test_spot_interruption_picks_only_running_spot_tasks_of_the_service(ctx: ControlContext) -> None:
    from fargo.control.spot import interrupt_spot_tasks

    clusters = Clusters(ctx)
    cluster = clusters.create(None, None, None)

    def task(task_id: str, provider: str | None, group: str, last: str = "RUNNING") -> None:
        doc = {"taskArn": ctx.arns.task("default", task_id), "clusterArn": cluster["clusterArn"],
               "desiredStatus": "RUNNING", "lastStatus": last, "createdAt": 1.0, "group": group}
        if provider:
            doc["capacityProviderName"] = provider
        ctx.store.insert_task(doc, task_id, "web", None, "embedded")

    task("a", "FARGATE_SPOT", "service:web")
    task("b", "FARGATE_SPOT", "service:web")
    task("c", "FARGATE", "service:web")
    task("d", "FARGATE_SPOT", "service:api")
    task("e", "FARGATE_SPOT", "service:web", last="PENDING")

    class _Tasks:  # what interrupt_spot_tasks needs of Tasks
        def __init__(self) -> None:
            self.ctx, self.clusters, self.stopped = ctx, clusters, []

        async def stop_task(self, p: dict, stop_code: str) -> dict:
            self.stopped.append((p["task"].rsplit("/", 1)[-1], stop_code, p["reason"]))
            return {"task": {"taskArn": p["task"]}}

    tasks = _Tasks()
    out = asyncio.run(interrupt_spot_tasks(tasks, service="web", rng=random.Random(1)))  # type: ignore[arg-type]
    assert len(out) == 2
    assert sorted(tasks.stopped) == [("a", "SpotInterruption", "Your Spot Task was interrupted."),
                                     ("b", "SpotInterruption", "Your Spot Task was interrupted.")]
