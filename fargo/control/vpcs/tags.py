"""EC2 tags: CreateTags, DeleteTags, DescribeTags, the TagSpecifications of create calls, and tag checks.

A resource is known by its id's prefix (vpc-, subnet-, sg-, sgr-, eni-); tags of an id Fargo does not have
are refused with that resource's NotFound error, and nothing is written unless every resource exists.
"""
from __future__ import annotations

from collections.abc import Sequence

from fargo.control.context import ControlContext
from fargo.control.vpcs import ids
from fargo.control.vpcs import messages as msg
from fargo.control.vpcs.filters import apply_filters
from fargo.control.vpcs.paging import page
from fargo.errors import (AwsError, InvalidGroupNotFound, InvalidID, InvalidNetworkInterfaceIDNotFound,
                          InvalidParameterValue, InvalidSecurityGroupRuleIdNotFound, InvalidSubnetIDNotFound,
                          InvalidVpcIDNotFound, MissingParameter, TagLimitExceeded)
from fargo.store.network_store import NetworkReads, NetworkStore, NetworkWrites, TagRow

TAGS_PER_RESOURCE = 50
_MAX_KEY, _MAX_VALUE = 128, 256

# id prefix -> EC2's resource type (as DescribeTags and TagSpecifications name it)
RESOURCE_TYPES = {
    ids.VPC: "vpc", ids.SUBNET: "subnet", ids.SECURITY_GROUP: "security-group",
    ids.SECURITY_GROUP_RULE: "security-group-rule", ids.NETWORK_INTERFACE: "network-interface",
}

Tag = tuple[str, str]


def resource_type_of(resource_id: str) -> str | None:
    return RESOURCE_TYPES.get(resource_id.split("-", 1)[0]) if "-" in resource_id else None


def checked_tags(tags: Sequence[dict] | None) -> list[Tag]:
    """(key, value) pairs of a request's Tags, checked as EC2 checks them; a key given twice keeps its last value."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key, value = str(tag.get("Key") or ""), str(tag.get("Value") or "")
        if not key:
            raise InvalidParameterValue(msg.tag_key_empty())
        if key.lower().startswith("aws:"):
            raise InvalidParameterValue(msg.tag_key_reserved(key))
        if len(key) > _MAX_KEY:
            raise InvalidParameterValue(msg.tag_key_too_long(key))
        if len(value) > _MAX_VALUE:
            raise InvalidParameterValue(msg.tag_value_too_long(value))
        out[key] = value
    return list(out.items())


def tags_on_create(p: dict, resource_type: str) -> list[Tag]:
    """The tags a create call's TagSpecifications ask for; a specification for another type is refused."""
    tags: list[dict] = []
    for spec in p.get("TagSpecifications") or []:
        kind = spec.get("ResourceType")
        if kind != resource_type:
            raise InvalidParameterValue(msg.not_taggable_here(str(kind)))
        tags.extend(spec.get("Tags") or [])
    found = checked_tags(tags)
    if len(found) > TAGS_PER_RESOURCE:
        raise TagLimitExceeded(msg.TAG_LIMIT)
    return found


def tag_list(rows: Sequence[TagRow] | None) -> list[dict]:
    """Tags as EC2 shows them beside a resource: [{Key, Value}]."""
    return [{"Key": t.key, "Value": t.value} for t in rows or []]


def tag_map(rows: Sequence[TagRow] | None) -> dict[str, str]:
    return {t.key: t.value for t in rows or []}


def not_found_error(resource_id: str) -> AwsError:
    """The error EC2 gives for an id of this kind that does not exist."""
    kind = resource_id.split("-", 1)[0] if "-" in resource_id else ""
    if kind == ids.VPC:
        return InvalidVpcIDNotFound(msg.vpc_not_found(resource_id))
    if kind == ids.SUBNET:
        return InvalidSubnetIDNotFound(msg.subnet_not_found(resource_id))
    if kind == ids.SECURITY_GROUP:
        return InvalidGroupNotFound(msg.group_not_found(resource_id))
    if kind == ids.SECURITY_GROUP_RULE:
        return InvalidSecurityGroupRuleIdNotFound(msg.rule_not_found(resource_id))
    if kind == ids.NETWORK_INTERFACE:
        return InvalidNetworkInterfaceIDNotFound(msg.network_interface_not_found(resource_id))
    return InvalidID(msg.invalid_id(resource_id))


def exists(r: NetworkReads, resource_id: str) -> bool:
    kind = resource_type_of(resource_id)
    if kind == "vpc":
        return r.vpc(resource_id) is not None
    if kind == "subnet":
        return r.subnet(resource_id) is not None
    if kind == "security-group":
        return r.group(resource_id) is not None
    if kind == "security-group-rule":
        return bool(r.rules(rule_ids=[resource_id]))
    if kind == "network-interface":
        return bool(r.enis(eni_ids=[resource_id]))
    return False


def write_tags(w: NetworkWrites, resource_id: str, resource_type: str, tags: Sequence[Tag]) -> None:
    """Add or overwrite tags; keys already there do not count again toward the 50 a resource may have."""
    if not tags:
        return
    have = {t.key for t in w.tags([resource_id])}
    if len(have | {key for key, _ in tags}) > TAGS_PER_RESOURCE:
        raise TagLimitExceeded(msg.TAG_LIMIT)
    w.put_tags(resource_id, resource_type, tags)


class Tags:
    def __init__(self, ctx: ControlContext, store: NetworkStore) -> None:
        self.ctx = ctx
        self.store = store

    def handlers(self) -> dict:
        return {"CreateTags": self.create_tags, "DeleteTags": self.delete_tags, "DescribeTags": self.describe_tags}

    def create_tags(self, p: dict) -> dict:
        resources = self._resources(p)
        if not p.get("Tags"):
            raise MissingParameter(msg.missing_parameter("Tag"))
        tags = checked_tags(p.get("Tags"))
        with self.store.writing() as w:
            self._check_exist(w, resources)
            for resource_id in resources:
                write_tags(w, resource_id, str(resource_type_of(resource_id)), tags)
        return {}

    def delete_tags(self, p: dict) -> dict:
        """No Tags: every tag of the resources; a Key alone: that key; a Key with a Value: only if it has it."""
        resources = self._resources(p)
        wanted = p.get("Tags")
        for tag in wanted or []:
            if str(tag.get("Key") or "").lower().startswith("aws:"):
                raise InvalidParameterValue(msg.tag_key_reserved(str(tag["Key"])))
        with self.store.writing() as w:
            self._check_exist(w, resources)
            for resource_id in resources:
                have = tag_map(w.tags([resource_id]))
                if not wanted:
                    doomed = list(have)
                else:
                    doomed = [str(t.get("Key") or "") for t in wanted
                              if str(t.get("Key") or "") in have
                              and ("Value" not in t or t.get("Value") is None
                                   or have[str(t["Key"])] == str(t["Value"]))]
                if doomed:
                    w.delete_tags(resource_id, doomed)
        return {}

    def describe_tags(self, p: dict) -> dict:
        with self.store.reading() as r:
            rows = r.tags()
        rows = apply_filters(rows, p.get("Filters"), {
            "key": lambda t: t.key, "value": lambda t: t.value, "resource-id": lambda t: t.resource_id,
            "resource-type": lambda t: t.resource_type,
        }, tags_of=lambda t: {t.key: t.value})
        chunk, token = page(rows, p)
        out: dict = {"Tags": [{"ResourceId": t.resource_id, "ResourceType": t.resource_type, "Key": t.key,
                               "Value": t.value} for t in chunk]}
        if token:
            out["NextToken"] = token
        return out

    @staticmethod
    def _resources(p: dict) -> list[str]:
        resources = [str(x) for x in p.get("Resources") or [] if x]
        if not resources:
            raise MissingParameter(msg.missing_parameter("ResourceId"))
        return list(dict.fromkeys(resources))

    @staticmethod
    def _check_exist(r: NetworkReads, resources: Sequence[str]) -> None:
        for resource_id in resources:
            if not exists(r, resource_id):
                raise not_found_error(resource_id)
