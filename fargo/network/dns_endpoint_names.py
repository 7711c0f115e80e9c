"""The private DNS names of the VPC endpoint: the AWS API names Fargo serves itself, answered in every VPC with
that VPC's endpoint address (base + 3), as the private DNS of interface VPC endpoints answers them on AWS.

A task in a subnet with no way out still reaches ECR, Secrets Manager, SSM and ECS by their usual names.
"""
from __future__ import annotations

from dataclasses import dataclass

from dnslib import QTYPE, RR, A, DNSRecord

from fargo.network.dns_names import normalized
from fargo.network.dns_private_zone import RECORD_TTL, soa_record
from fargo.network.dns_replies import empty_reply

_IN = 1  # class IN
_ANY = 255  # class and type ANY


def endpoint_names(region: str, account_id: str) -> frozenset[str]:
    """ECR's API and registry, Secrets Manager, SSM and ECS in `region` (the registry of `account_id` only)."""
    names = (
        f"api.ecr.{region}.amazonaws.com",
        f"{account_id}.dkr.ecr.{region}.amazonaws.com",
        f"secretsmanager.{region}.amazonaws.com",
        f"ssm.{region}.amazonaws.com",
        f"ecs.{region}.amazonaws.com",
    )
    return frozenset(normalized(name) for name in names)


@dataclass(frozen=True)
class EndpointNames:
    """The names, normalized (dns_names.normalized); the address comes with each question (it is per VPC)."""

    names: frozenset[str] = frozenset()

    def answer(self, query: DNSRecord, address: str) -> DNSRecord | None:
        """The reply to a one-question query for one of the names, else None (not ours to answer)."""
        question = query.q
        if question.qclass not in (_IN, _ANY) or normalized(question.qname) not in self.names:
            return None
        reply = empty_reply(query)
        if question.qtype in (QTYPE.A, _ANY):
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=RECORD_TTL))
        else:  # the name exists with only an A record (the VPC is IPv4): no data, with the SOA of its zone
            reply.add_auth(soa_record(normalized(question.qname)))
        return reply
