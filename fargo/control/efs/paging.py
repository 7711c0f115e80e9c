"""Paging of EFS's describe calls: Marker/NextMarker (or NextToken) over a stable order, an opaque token."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from fargo.control.efs import messages as msg
from fargo.errors import BadRequest

T = TypeVar("T")
PAGE_SIZE = 100  # "the response is paginated at 100 per page" [botocore EFS docs]


def page(items: Sequence[T], marker: str | None, limit: int | None = None) -> tuple[list[T], str | None]:
    """The page that starts at `marker` (at most `limit`, never more than PAGE_SIZE) and the next marker."""
    size = min(limit or PAGE_SIZE, PAGE_SIZE)
    offset = _offset(marker)
    chunk = list(items[offset:offset + size])
    return chunk, _marker(offset + size) if offset + size < len(items) else None


def _marker(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        text = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
        kind, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, ValueError, UnicodeError):
        raise BadRequest(msg.INVALID_MARKER) from None
    if kind != "offset" or offset < 0:
        raise BadRequest(msg.INVALID_MARKER)
    return offset
