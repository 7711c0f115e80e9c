"""MaxResults/NextToken of EC2's describe calls: 5 to 1000 a page, an opaque token, none with explicit ids."""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import TypeVar

from fargo.control.vpcs import messages as msg
from fargo.errors import InvalidParameterCombination, InvalidParameterValue

T = TypeVar("T")
_MIN, _MAX = 5, 1000


def page(items: Sequence[T], p: dict, ids_parameter: str | None = None) -> tuple[list[T], str | None]:
    """One page of `items` (already filtered, in a stable order) and the token of the next, if any.

    `ids_parameter` names the request's list of ids (VpcIds, ...): EC2 refuses MaxResults beside it."""
    limit = p.get("MaxResults")
    if limit is None:
        if p.get("NextToken"):
            offset = _offset(p["NextToken"])
            return list(items[offset:]), None
        return list(items), None
    if ids_parameter and p.get(ids_parameter):
        raise InvalidParameterCombination(msg.ids_with_max_results(ids_parameter))
    if not _MIN <= limit <= _MAX:
        raise InvalidParameterValue(msg.max_results_out_of_range(limit))
    offset = _offset(p.get("NextToken"))
    chunk = list(items[offset:offset + limit])
    more = offset + limit < len(items)
    return chunk, _token(offset + limit) if more else None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError):
        raise InvalidParameterValue(msg.INVALID_NEXT_TOKEN) from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidParameterValue(msg.INVALID_NEXT_TOKEN)
    return offset
