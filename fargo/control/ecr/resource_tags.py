"""Repository tags: TagResource, UntagResource, ListTagsForResource (by repository ARN), and the `tags` of
CreateRepository. ECR spells them `{"Key", "Value"}`."""
from __future__ import annotations

from collections.abc import Sequence

from fargo.control.ecr import messages as msg
from fargo.errors import InvalidTagParameterException, RepositoryNotFoundException, TooManyTagsException
from fargo.control.ecr.names import RegistryNames
from fargo.store.ecr_store import EcrReads, EcrStore

MAX_TAGS = 50

Tags = list[tuple[str, str]]


def tags_of_request(tags: Sequence[dict] | None) -> Tags:
    """The request's tags in order; a key given twice keeps its last value."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key = str(tag["Key"])
        if key.lower().startswith("aws:"):
            raise InvalidTagParameterException(msg.reserved_tag_key(key))
        out[key] = str(tag.get("Value", ""))
    if len(out) > MAX_TAGS:
        raise TooManyTagsException(msg.too_many_tags(MAX_TAGS))
    return list(out.items())


class ResourceTags:
    def __init__(self, store: EcrStore, names: RegistryNames) -> None:
        self.store, self.names = store, names

    def handlers(self) -> dict:
        return {"TagResource": self.tag_resource, "UntagResource": self.untag_resource,
                "ListTagsForResource": self.list_tags_for_resource}

    def tag_resource(self, p: dict) -> dict:
        name = self.names.repository_of_arn(p["resourceArn"])
        wanted = tags_of_request(p["tags"])
        with self.store.writing() as w:
            self._existing(w, name)
            keys = {k for k, _ in w.resource_tags(name)} | {k for k, _ in wanted}
            if len(keys) > MAX_TAGS:
                raise TooManyTagsException(msg.too_many_tags(MAX_TAGS))
            w.put_resource_tags(name, wanted)
        return {}

    def untag_resource(self, p: dict) -> dict:
        name = self.names.repository_of_arn(p["resourceArn"])
        keys = [str(k) for k in p["tagKeys"]]
        for key in keys:
            if key.lower().startswith("aws:"):
                raise InvalidTagParameterException(msg.reserved_tag_key(key))
        with self.store.writing() as w:
            self._existing(w, name)
            w.delete_resource_tags(name, keys)
        return {}

    def list_tags_for_resource(self, p: dict) -> dict:
        name = self.names.repository_of_arn(p["resourceArn"])
        with self.store.reading() as r:
            self._existing(r, name)
            tags = r.resource_tags(name)
        return {"tags": [{"Key": k, "Value": v} for k, v in tags]}

    def _existing(self, r: EcrReads, name: str) -> None:
        if r.repository(name) is None:
            raise RepositoryNotFoundException(msg.repository_not_found(name, self.names.account_id))
