"""EFS tags as requests carry them (`[{"Key", "Value"}]`) and as descriptions show them, with the `Name` tag
that names a file system or access point."""
from __future__ import annotations

from collections.abc import Sequence

from fargo.control.efs import messages as msg
from fargo.errors import BadRequest

Tags = list[tuple[str, str]]


def tags_of_request(tags: Sequence[dict] | None) -> Tags:
    """The request's tags in order; a key given twice keeps its last value."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key = str(tag["Key"])
        if key.lower().startswith("aws:"):
            raise BadRequest(msg.reserved_tag_key(key))
        out[key] = str(tag.get("Value", ""))
    return list(out.items())


def tag_list(tags: Tags | None) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags or []]


def name_of(tags: Tags | None) -> str | None:
    return next((v for k, v in tags or [] if k == "Name"), None)
