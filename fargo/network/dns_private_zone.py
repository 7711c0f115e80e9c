"""One VPC's own DNS answers: A records for its ENIs' private DNS names, PTR records for their addresses.

A `PrivateZone` is immutable and replaced whole when the VPC's ENIs change, so a query in flight always sees
one consistent set. Queries for names outside the served zones are not answered here (they are forwarded).
"""
from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from dnslib import PTR, QTYPE, RCODE, RR, SOA, A, DNSQuestion, DNSRecord

from fargo.network.dns_names import is_within, normalized, private_zone, reverse_name, served_zone
from fargo.network.dns_replies import empty_reply

RECORD_TTL = 60  # what Route 53 Resolver gives EC2 private names
_IN = 1  # class IN
_ANY = 255  # class and type ANY
# RFC 6303's SOA for locally served zones; the minimum (negative-caching TTL) matches the record TTL.
_SOA_CONTACT = "nobody.invalid"
_SOA_TIMES = (1, 3600, 1200, 604800, RECORD_TTL)


@dataclass(frozen=True)
class PrivateZone:
    """The names one VPC answers itself, all normalized (see dns_names.normalized)."""

    region: str
    addresses: Mapping[str, str]  # private DNS name -> IPv4
    pointers: Mapping[str, str]  # reverse name -> private DNS name
    parents: frozenset[str]  # names that only exist as parents of others (e.g. 0.213.10.in-addr.arpa)

    @classmethod
    def of(cls, region: str, records: Mapping[str, str]) -> PrivateZone:
        """Build from private DNS name -> IPv4; every name must lie in the region's private zone."""
        addresses: dict[str, str] = {}
        pointers: dict[str, str] = {}
        above: set[frozenset[str]] = set()  # ENIs of one subnet share their parents: each set counted once
        for name, ip in records.items():
            key, address, pointer, parents = _entry(region, name, ip)
            addresses[key] = address
            pointers[pointer] = key
            above.add(parents)
        parents = {parent for group in above for parent in group}
        return cls(region, addresses, pointers,
                   frozenset(p for p in parents if p not in addresses and p not in pointers))

    def answer(self, query: DNSRecord) -> DNSRecord | None:
        """The reply to a one-question query if its name is ours to answer, else None (forward it)."""
        question = query.q
        name = normalized(question.qname)
        zone = served_zone(name, self.region)
        if question.qclass not in (_IN, _ANY) or (zone is None and name not in self.pointers):
            return None
        reply = empty_reply(query)
        records = self._records_of(name, question)
        is_apex = zone is not None and name == zone
        if records:
            reply.add_answer(*records)
        elif is_apex and question.qtype in (QTYPE.SOA, _ANY):
            reply.add_answer(soa_record(name))
        else:
            if records is None and not is_apex and name not in self.parents:
                reply.header.rcode = RCODE.NXDOMAIN
            # RFC 2308: a negative answer carries the zone's SOA, so resolvers know how long to cache it.
            reply.add_auth(soa_record(zone or name.partition(".")[2]))
        return reply

    def _records_of(self, name: str, question: DNSQuestion) -> list[RR] | None:
        """The records of `name` of the asked type; [] if the name exists without them, None if it does not."""
        # Answers carry the name as the client spelled it (some clients check the case they sent).
        if name in self.addresses:
            if question.qtype not in (QTYPE.A, _ANY):
                return []
            return [RR(question.qname, QTYPE.A, rdata=A(self.addresses[name]), ttl=RECORD_TTL)]
        if name in self.pointers:
            if question.qtype not in (QTYPE.PTR, _ANY):
                return []
            return [RR(question.qname, QTYPE.PTR, rdata=PTR(self.pointers[name] + "."), ttl=RECORD_TTL)]
        return None


# A VPC's zone is built again whenever its ENIs change (every 20 ms in a burst), from all of them: what one
# ENI's record yields is kept, so a build of 100 costs 0.02-0.06 ms instead of 2.3 (the parsing was nearly all
# of it).
@functools.lru_cache(maxsize=8192)
def _entry(region: str, name: str, ip: str) -> tuple[str, str, str, frozenset[str]]:
    """One record's name, address and reverse name (all normalized), and the served names above them."""
    zone = private_zone(region)
    key = normalized(name)
    if not is_within(key, zone) or key == zone:
        raise ValueError(f"{name!r} is not a name in the private zone {zone} of region {region}")
    address = str(ipaddress.IPv4Address(ip))
    pointer = reverse_name(address)
    parents = frozenset(parent for full in (key, pointer) for parent in _parents(full)
                        if served_zone(parent, region) is not None)
    return key, address, pointer, parents


def _parents(name: str) -> list[str]:
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def soa_record(zone: str) -> RR:
    """The SOA of a zone served here: negative answers carry it (RFC 2308)."""
    return RR(zone + ".", QTYPE.SOA, rdata=SOA(zone + ".", _SOA_CONTACT + ".", _SOA_TIMES), ttl=RECORD_TTL)
