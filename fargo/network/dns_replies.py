"""The one shape of every reply the VPC resolver makes itself (private names, errors, SERVFAIL).

It is a recursive resolver that validates nothing: RA set, never AA or AD; the client's id, question, RD and
CD come back as sent.
"""
from __future__ import annotations

from dnslib import RCODE, DNSHeader, DNSRecord


def empty_reply(query: DNSRecord, rcode: int = RCODE.NOERROR) -> DNSRecord:
    header = DNSHeader(id=query.header.id, qr=1, opcode=query.header.opcode, rd=query.header.rd,
                       cd=query.header.cd, ra=1, rcode=rcode)
    return DNSRecord(header, questions=list(query.questions))
