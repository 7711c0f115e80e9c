"""When a VPC's security-group filter is applied again after a new policy: in the background, retried until
it shows the policy. The nft apply and the rendering are replaced here by recorders (the real ones are tested
against the kernel in tests/integration/test_security_groups.py); what is under test is the scheduling."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from fargo.agent import vpc_networks
from fargo.agent.vpc_networks import VpcNetworks, _Vpc
from fargo.network.security_groups import VpcFilterError
from fargo.protocol.messages import GroupPolicy, VpcPolicy

VPC = "vpc-0123456789abcdef0"


def policy(*group_ids: str) -> VpcPolicy:
    return VpcPolicy(VPC, "10.0.0.0/16", [GroupPolicy(g, [], []) for g in group_ids])


class Applies:
    """Records each script applied; the first `failures` applies are refused, each takes `seconds`."""

    def __init__(self, failures: int = 0, seconds: float = 0.0) -> None:
        self.failures, self.seconds, self.scripts = failures, seconds, []

    async def __call__(self, _router: object, script: str, _applied: object = None) -> None:
        await asyncio.sleep(self.seconds)
        if self.failures:
            self.failures -= 1
            raise VpcFilterError("refused")
        self.scripts.append(script)


@pytest.fixture
def networks(monkeypatch: pytest.MonkeyPatch) -> VpcNetworks:
    monkeypatch.setattr(vpc_networks, "filter_state",
                        lambda p, enis, _router: f"{[g.group_id for g in p.groups]} {sorted(e.task_id for e in enis)}")
    monkeypatch.setattr(vpc_networks, "FILTER_RETRY_BACKOFF", (0.01, 0.05))
    made = VpcNetworks("us-east-1", resolver=SimpleNamespace(), prefix="fx")  # type: ignore[arg-type]
    made._vpcs[VPC] = _Vpc("10.0.0.0/16", router=SimpleNamespace())  # type: ignore[arg-type]
    return made


def test_a_new_policy_is_kept_at_once_and_applied_in_the_background(networks: VpcNetworks,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    applies = Applies(seconds=0.2)
    monkeypatch.setattr(vpc_networks, "apply_filter_state_async", applies)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await networks.set_policies([policy("sg-a")])
        # the batch's new tasks are assigned at once: they attach with this policy, kept already
        assert loop.time() - started < 0.1
        assert networks._policies[VPC] == policy("sg-a")
        assert applies.scripts == []
        await networks._vpcs[VPC].syncing  # type: ignore[misc]
        assert applies.scripts == ["['sg-a'] []"]

    asyncio.run(body())


def test_a_refused_apply_is_retried_until_the_filter_shows_the_policy(networks: VpcNetworks,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    applies = Applies(failures=2)
    monkeypatch.setattr(vpc_networks, "apply_filter_state_async", applies)

    async def body() -> None:
        await networks.set_policies([policy("sg-a")])
        await asyncio.wait_for(networks._vpcs[VPC].syncing, 5)  # type: ignore[arg-type]
        vpc = networks._vpcs[VPC]
        assert applies.scripts == ["['sg-a'] []"] and vpc.synced == vpc.changes

    asyncio.run(body())


def test_policies_that_come_during_an_apply_are_shown_by_one_more_apply(networks: VpcNetworks,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    applies = Applies(seconds=0.05)
    monkeypatch.setattr(vpc_networks, "apply_filter_state_async", applies)

    async def body() -> None:
        await networks.set_policies([policy("sg-a")])
        await asyncio.sleep(0.01)  # the first apply is under way
        for groups in (("sg-a", "sg-b"), ("sg-a", "sg-b", "sg-c")):
            await networks.set_policies([policy(*groups)])
        await asyncio.wait_for(networks._vpcs[VPC].syncing, 5)  # type: ignore[arg-type]
        assert applies.scripts == ["['sg-a'] []", "['sg-a', 'sg-b', 'sg-c'] []"]

    asyncio.run(body())


def test_an_unchanged_policy_applies_nothing(networks: VpcNetworks, monkeypatch: pytest.MonkeyPatch) -> None:
    applies = Applies()
    monkeypatch.setattr(vpc_networks, "apply_filter_state_async", applies)

    async def body() -> None:
        await networks.set_policies([policy("sg-a")])
        await networks._vpcs[VPC].syncing  # type: ignore[misc]
        await networks.set_policies([policy("sg-a")])
        assert networks._vpcs[VPC].syncing.done()  # type: ignore[union-attr]
        assert applies.scripts == ["['sg-a'] []"]

    asyncio.run(body())
