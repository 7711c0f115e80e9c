"""Tags of file systems and access points: TagResource, UntagResource, ListTagsForResource, and the older
file-system-only CreateTags, DeleteTags, DescribeTags. A `Name` tag is the resource's Name."""
from __future__ import annotations

from fargo.control.efs import ids
from fargo.control.efs import messages as msg
from fargo.control.efs.paging import page
from fargo.control.efs.tags import tag_list, tags_of_request
from fargo.errors import AccessPointNotFound, FileSystemNotFound
from fargo.store.efs_store import EfsReads, EfsStore


class ResourceTags:
    def __init__(self, store: EfsStore) -> None:
        self.store = store

    def handlers(self) -> dict:
        return {"TagResource": self.tag_resource, "UntagResource": self.untag_resource,
                "ListTagsForResource": self.list_tags_for_resource, "CreateTags": self.create_tags,
                "DeleteTags": self.delete_tags, "DescribeTags": self.describe_tags}

    def tag_resource(self, p: dict) -> dict:
        return self._put(p["ResourceId"], p["Tags"])

    def untag_resource(self, p: dict) -> dict:
        return self._delete(p["ResourceId"], p["TagKeys"])

    def list_tags_for_resource(self, p: dict) -> dict:
        tags, token = self._page(p["ResourceId"], p.get("NextToken"), p.get("MaxResults"))
        out: dict = {"Tags": tags}
        if token:
            out["NextToken"] = token
        return out

    def create_tags(self, p: dict) -> dict:
        return self._put(p["FileSystemId"], p["Tags"], file_systems_only=True)

    def delete_tags(self, p: dict) -> dict:
        return self._delete(p["FileSystemId"], p["TagKeys"], file_systems_only=True)

    def describe_tags(self, p: dict) -> dict:
        tags, marker = self._page(p["FileSystemId"], p.get("Marker"), p.get("MaxItems"), file_systems_only=True)
        out: dict = {"Tags": tags}
        if p.get("Marker"):
            out["Marker"] = p["Marker"]
        if marker:
            out["NextMarker"] = marker
        return out

    # --- helpers -------------------------------------------------------------------------------

    def _put(self, ref: str, tags: list[dict], file_systems_only: bool = False) -> dict:
        wanted = tags_of_request(tags)
        with self.store.writing() as w:
            resource_id = _existing(w, ref, file_systems_only)
            w.put_tags(resource_id, wanted)
        return {}

    def _delete(self, ref: str, keys: list[str], file_systems_only: bool = False) -> dict:
        with self.store.writing() as w:
            resource_id = _existing(w, ref, file_systems_only)
            w.delete_tags(resource_id, [str(k) for k in keys])
        return {}

    def _page(self, ref: str, marker: str | None, limit: int | None,
              file_systems_only: bool = False) -> tuple[list[dict], str | None]:
        with self.store.reading() as r:
            resource_id = _existing(r, ref, file_systems_only)
            tags = r.tags([resource_id]).get(resource_id, [])
        chunk, next_marker = page(tags, marker, limit)
        return tag_list(chunk), next_marker


def _existing(r: EfsReads, ref: str, file_systems_only: bool) -> str:
    """The id of the file system or access point `ref` names; its NotFound error when there is none."""
    resource_id = ids.resource_id(ref)
    if resource_id.startswith(ids.ACCESS_POINT + "-") and not file_systems_only:
        if r.access_point(resource_id) is None:
            raise AccessPointNotFound(msg.access_point_not_found(resource_id))
        return resource_id
    if r.file_system(resource_id) is None:
        raise FileSystemNotFound(msg.file_system_not_found(resource_id))
    return resource_id
