"""NextToken/MaxResults of the list calls: an opaque token over a stable order, bounded pages."""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from fargo.control.secrets import messages as msg
from fargo.errors import AwsError, ValidationException

T = TypeVar("T")


def page_size(requested: int | None, default: int, maximum: int, member: str = "maxResults") -> int:
    """botocore's validator checks the minimum only; AWS refuses a page larger than the model allows."""
    if requested is None:
        return default
    if requested > maximum:
        raise ValidationException(msg.above_maximum(member, requested, maximum))
    return requested


def page(items: Sequence[T], token: str | None, size: int,
         bad_token: Callable[[], AwsError]) -> tuple[list[T], str | None]:
    """The page that starts at `token` and the token of the next one (None on the last page)."""
    offset = _offset(token, bad_token)
    chunk = list(items[offset:offset + size])
    end = offset + size
    return chunk, _token(end) if end < len(items) else None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None, bad_token: Callable[[], AwsError]) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, UnicodeError, KeyError, TypeError):
        raise bad_token() from None
    if not isinstance(offset, int) or offset < 0:
        raise bad_token()
    return offset
