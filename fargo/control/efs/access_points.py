"""Access points: CreateAccessPoint (one per ClientToken), DescribeAccessPoints, DeleteAccessPoint.

An access point is only a record here: the agent applies it at mount time (it makes the root directory
with CreationInfo when missing, and makes every caller its PosixUser), as EFS does at connection time.
"""
from __future__ import annotations

import re

from fargo import clock
from fargo.control.context import ControlContext
from fargo.control.efs import ids
from fargo.control.efs import messages as msg
from fargo.control.efs.paging import page
from fargo.control.efs.tags import Tags, name_of, tag_list, tags_of_request
from fargo.errors import (AccessPointAlreadyExists, AccessPointLimitExceeded, AccessPointNotFound, BadRequest,
                          FileSystemNotFound, IncorrectFileSystemLifeCycleState)
from fargo.store.efs_store import AVAILABLE, CREATING, AccessPointRow, EfsStore

ACCESS_POINTS_PER_FILE_SYSTEM = 10_000  # EFS's quota [efs-ug create-access-point]
MAX_POSIX_ID = 4_294_967_295
MAX_SECONDARY_GIDS = 16
_PATH_PART = re.compile(r"/[^.$#<>;`|&?{}^*/\n][^$#<>;`|&?{}^*/\n]*")
_PERMISSIONS = re.compile(r"^[0-7]{3,4}$")


def valid_root_path(path: str) -> bool:
    """`/`, or 1 to 4 `/name` parts (at most 100 characters) where no part starts with `.` nor holds
    `$ # < > ; | & ? { } ^ *`, a backtick or a newline [botocore's Path pattern]."""
    if path == "/":
        return True
    if not 1 <= len(path) <= 100:
        return False
    parts = _PATH_PART.findall(path)
    return 1 <= len(parts) <= 4 and "".join(parts) == path


class AccessPoints:
    def __init__(self, ctx: ControlContext, store: EfsStore) -> None:
        self.ctx = ctx
        self.store = store

    def handlers(self) -> dict:
        return {"CreateAccessPoint": self.create_access_point,
                "DescribeAccessPoints": self.describe_access_points,
                "DeleteAccessPoint": self.delete_access_point}

    def create_access_point(self, p: dict) -> dict:
        token = str(p["ClientToken"])
        file_system_id = ids.resource_id(p["FileSystemId"])
        posix = _posix_user(p.get("PosixUser"))
        root = _root_directory(p.get("RootDirectory"))
        tags = tags_of_request(p.get("Tags"))
        row = AccessPointRow(access_point_id=ids.new_id(ids.ACCESS_POINT), client_token=token,
                             file_system_id=file_system_id, posix_user=posix, root_directory=root,
                             life_cycle_state=AVAILABLE, created_at=clock.now())
        with self.store.writing() as w:
            fs = w.file_system(file_system_id, lock=True)  # a DeleteFileSystem waits, or is waited for
            if fs is None:
                raise FileSystemNotFound(msg.file_system_not_found(file_system_id))
            previous = w.access_point_by_token(token)
            if previous is not None:
                raise AccessPointAlreadyExists(msg.access_point_already_exists(token),
                                               AccessPointId=previous.access_point_id)
            if fs.life_cycle_state != AVAILABLE:
                raise IncorrectFileSystemLifeCycleState(
                    msg.file_system_not_available(file_system_id, fs.life_cycle_state))
            if w.access_point_count(file_system_id) >= ACCESS_POINTS_PER_FILE_SYSTEM:
                raise AccessPointLimitExceeded(msg.access_point_limit(file_system_id, ACCESS_POINTS_PER_FILE_SYSTEM))
            if not w.insert_access_point(row):  # another replica took the token in the meantime
                raise AccessPointAlreadyExists(msg.access_point_already_exists(token), AccessPointId="")
            w.put_tags(row.access_point_id, tags)
        return self._render(row, tags, state=CREATING)  # as AWS answers; it is usable at once

    def describe_access_points(self, p: dict) -> dict:
        ap_ref, fs_ref = p.get("AccessPointId"), p.get("FileSystemId")
        if ap_ref and fs_ref:
            raise BadRequest(msg.ACCESS_POINT_ID_AND_FILE_SYSTEM_ID)
        with self.store.reading() as r:
            if ap_ref:
                found = r.access_points([ids.resource_id(ap_ref)])
                if not found:
                    raise AccessPointNotFound(msg.access_point_not_found(ids.resource_id(ap_ref)))
            elif fs_ref:
                file_system_id = ids.resource_id(fs_ref)
                if r.file_system(file_system_id) is None:
                    raise FileSystemNotFound(msg.file_system_not_found(file_system_id))
                found = r.access_points(file_system_id=file_system_id)
            else:
                found = r.access_points()
            chunk, token = page(found, p.get("NextToken"), p.get("MaxResults"))
            tags = r.tags([a.access_point_id for a in chunk])
        out: dict = {"AccessPoints": [self._render(a, tags.get(a.access_point_id)) for a in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def delete_access_point(self, p: dict) -> dict:
        access_point_id = ids.resource_id(p["AccessPointId"])
        with self.store.writing() as w:
            if w.access_point(access_point_id) is None:
                raise AccessPointNotFound(msg.access_point_not_found(access_point_id))
            w.delete_access_points([access_point_id])
        return {}

    def _render(self, a: AccessPointRow, tags: Tags | None, state: str | None = None) -> dict:
        cfg = self.ctx.config
        return {"ClientToken": a.client_token, "Name": name_of(tags), "Tags": tag_list(tags),
                "AccessPointId": a.access_point_id,
                "AccessPointArn": ids.access_point_arn(cfg.region, cfg.account_id, a.access_point_id),
                "FileSystemId": a.file_system_id, "PosixUser": a.posix_user, "RootDirectory": a.root_directory,
                "OwnerId": cfg.account_id, "LifeCycleState": state or a.life_cycle_state}


def _posix_user(given: dict | None) -> dict | None:
    if not given:
        return None
    out: dict = {"Uid": int(given["Uid"]), "Gid": int(given["Gid"])}
    secondary = [int(g) for g in given.get("SecondaryGids") or []]
    for name, value in (("Uid", out["Uid"]), ("Gid", out["Gid"]), *(("SecondaryGids", g) for g in secondary)):
        if not 0 <= value <= MAX_POSIX_ID:
            raise BadRequest(msg.bad_posix_id(name, value))
    if len(secondary) > MAX_SECONDARY_GIDS:
        raise BadRequest(msg.bad_posix_id("SecondaryGids count", len(secondary)))
    if secondary:
        out["SecondaryGids"] = secondary
    return out


def _root_directory(given: dict | None) -> dict:
    """The root as AWS stores it: Path "/" when none was given (then CreationInfo has nothing to create)."""
    given = given or {}
    path = str(given.get("Path") or "/")
    if not valid_root_path(path):
        raise BadRequest(msg.bad_root_directory_path(path))
    out: dict = {"Path": path}
    info = given.get("CreationInfo")
    if info:
        permissions = str(info["Permissions"])
        if not _PERMISSIONS.match(permissions):
            raise BadRequest(msg.bad_permissions(permissions))
        for name in ("OwnerUid", "OwnerGid"):
            if not 0 <= int(info[name]) <= MAX_POSIX_ID:
                raise BadRequest(msg.bad_posix_id(name, int(info[name])))
        out["CreationInfo"] = {"OwnerUid": int(info["OwnerUid"]), "OwnerGid": int(info["OwnerGid"]),
                               "Permissions": permissions}
    return out
