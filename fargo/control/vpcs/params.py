"""Reading a request's members: the EC2 model's required members are checked here (the query codec passes
what came), and an empty string counts as absent, as EC2 treats it."""
from __future__ import annotations

from fargo.control.vpcs import messages as msg
from fargo.errors import MissingParameter


def required(p: dict, member: str, wire_name: str | None = None) -> str:
    """A required string member; MissingParameter names it as the query protocol spells it."""
    value = p.get(member)
    if value is None or value == "":
        raise MissingParameter(msg.missing_parameter(wire_name or member))
    return str(value)


def optional(p: dict, member: str) -> str | None:
    value = p.get(member)
    return None if value is None or value == "" else str(value)


def id_list(p: dict, member: str) -> list[str] | None:
    """A list of ids, de-duplicated in order; None when absent (an empty list means "all" to EC2 too)."""
    values = p.get(member)
    if not values:
        return None
    return list(dict.fromkeys(str(v) for v in values))
