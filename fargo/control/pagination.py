"""nextToken/maxResults as AWS list calls use them: an opaque token, at most 100 results a page."""
from __future__ import annotations

import base64
import json

from fargo.errors import InvalidParameterException


def page_bounds(params: dict, default_limit: int = 100, max_limit: int = 100) -> tuple[int, int]:
    limit = params.get("maxResults")
    if limit is None:
        limit = default_limit
    elif not 1 <= limit <= max_limit:
        raise InvalidParameterException(f"maxResults must be between 1 and {max_limit}.")
    return decode_token(params.get("nextToken")), limit


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except Exception:
        raise InvalidParameterException("Invalid token.") from None


def next_token(offset: int, limit: int, got: int) -> str | None:
    """A token only when the page was full (the caller fetched limit + 1 to know)."""
    if got <= limit:
        return None
    return base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
