"""File systems: CreateFileSystem (idempotent by CreationToken), DescribeFileSystems, DeleteFileSystem.

A file system is a directory (`directories.py`); its row says `creating` until the directory is made, then
`available`, and `deleting` from DeleteFileSystem until the directory is gone. The create reply says
`creating`, as AWS's does; here the directory is made before the reply, so the next call finds it available.
"""
from __future__ import annotations

import logging
import re

from fargo import clock
from fargo.control.context import ControlContext
from fargo.control.efs import ids
from fargo.control.efs import messages as msg
from fargo.control.efs.directories import FileSystemDirectories
from fargo.control.efs.metering import SizeMeter
from fargo.control.efs.paging import page
from fargo.control.efs.tags import Tags, name_of, tag_list, tags_of_request
from fargo.control.vpcs.zones import AvailabilityZones
from fargo.errors import (BadRequest, FileSystemAlreadyExists, FileSystemInUse, FileSystemNotFound,
                          UnsupportedAvailabilityZone)
from fargo.store.efs_store import AVAILABLE, CREATING, DELETING, ERROR, EfsStore, FileSystemRow

log = logging.getLogger("fargo.control")

DEFAULT_KMS_ALIAS = "alias/aws/elasticfilesystem"  # the AWS managed key EFS encrypts with by default
_KEY_ID = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$")
_EMPTY_SIZE = {"Value": 0, "ValueInIA": 0, "ValueInStandard": 0, "ValueInArchive": 0}


class FileSystems:
    def __init__(self, ctx: ControlContext, store: EfsStore, directories: FileSystemDirectories,
                 meter: SizeMeter, zones: AvailabilityZones) -> None:
        self.ctx = ctx
        self.store = store
        self.directories = directories
        self.meter = meter
        self.zones = zones

    def handlers(self) -> dict:
        return {"CreateFileSystem": self.create_file_system, "DescribeFileSystems": self.describe_file_systems,
                "DeleteFileSystem": self.delete_file_system}

    # --- for the rest of the package ---------------------------------------------------------------

    def resume(self) -> None:
        """Finish what a stop cut short: directories of `creating` file systems, removals of `deleting` ones."""
        with self.store.reading() as r:
            creating, deleting = r.file_systems(state=CREATING), r.file_systems(state=DELETING)
        for fs in creating:
            self._make_directory(fs.file_system_id)
        for fs in deleting:
            self._remove(fs.file_system_id)

    def existing(self, ref: str) -> FileSystemRow:
        """The file system a parameter names (by id or ARN); FileSystemNotFound when there is none."""
        file_system_id = ids.resource_id(ref)
        with self.store.reading() as r:
            fs = r.file_system(file_system_id)
        if fs is None:
            raise FileSystemNotFound(msg.file_system_not_found(file_system_id))
        return fs

    # --- API -----------------------------------------------------------------------------------

    def create_file_system(self, p: dict) -> dict:
        token = str(p["CreationToken"])
        throughput = p.get("ThroughputMode") or "bursting"
        provisioned = p.get("ProvisionedThroughputInMibps")
        if throughput == "provisioned" and provisioned is None:
            raise BadRequest(msg.PROVISIONED_THROUGHPUT_REQUIRED)
        if throughput != "provisioned" and provisioned is not None:
            raise BadRequest(msg.PROVISIONED_THROUGHPUT_NOT_ALLOWED)
        encrypted = bool(p.get("Encrypted", False))
        if p.get("KmsKeyId") and not encrypted:
            raise BadRequest(msg.KMS_KEY_WITHOUT_ENCRYPTION)
        zone = p.get("AvailabilityZoneName")
        if zone is not None and zone not in self.zones.names:
            raise UnsupportedAvailabilityZone(msg.unsupported_availability_zone(zone))
        tags = tags_of_request(p.get("Tags"))
        row = FileSystemRow(
            file_system_id=ids.new_id(ids.FILE_SYSTEM), creation_token=token, life_cycle_state=CREATING,
            performance_mode=p.get("PerformanceMode") or "generalPurpose", throughput_mode=throughput,
            provisioned_throughput=float(provisioned) if provisioned is not None else None, encrypted=encrypted,
            kms_key_id=self._kms_key_arn(p.get("KmsKeyId")) if encrypted else None, availability_zone=zone,
            backup=bool(p.get("Backup", False)), created_at=clock.now())
        with self.store.writing() as w:
            if not w.insert_file_system(row):
                existing = w.file_system_by_token(token)
                raise FileSystemAlreadyExists(
                    msg.file_system_already_exists(existing.file_system_id if existing else "", token),
                    FileSystemId=existing.file_system_id if existing else "")
            w.put_tags(row.file_system_id, tags)
        self._make_directory(row.file_system_id)
        return self._render(row, tags, 0, None)

    def describe_file_systems(self, p: dict) -> dict:
        ref, token = p.get("FileSystemId"), p.get("CreationToken")
        if ref and token:
            raise BadRequest(msg.FILE_SYSTEM_ID_AND_CREATION_TOKEN)
        with self.store.reading() as r:
            if ref:
                fs = r.file_system(ids.resource_id(ref))
                if fs is None:
                    raise FileSystemNotFound(msg.file_system_not_found(ids.resource_id(ref)))
                found = [fs]
            elif token:
                fs = r.file_system_by_token(token)
                found = [fs] if fs else []
            else:
                found = r.file_systems()
            chunk, next_marker = page(found, p.get("Marker"), p.get("MaxItems"))
            chosen = [f.file_system_id for f in chunk]
            tags, counts = r.tags(chosen), r.mount_target_counts(chosen)
        out: dict = {"FileSystems": [self._render(f, tags.get(f.file_system_id), counts.get(f.file_system_id, 0),
                                                  self._size(f)) for f in chunk]}
        if p.get("Marker"):
            out["Marker"] = p["Marker"]
        if next_marker:
            out["NextMarker"] = next_marker
        return out

    def delete_file_system(self, p: dict) -> dict:
        file_system_id = ids.resource_id(p["FileSystemId"])
        with self.store.writing() as w:
            fs = w.file_system(file_system_id, lock=True)
            if fs is None:
                raise FileSystemNotFound(msg.file_system_not_found(file_system_id))
            if fs.life_cycle_state != DELETING:
                if w.mount_targets([file_system_id]):
                    raise FileSystemInUse(msg.file_system_in_use(file_system_id))
                # its access points go with it (they cannot outlive it, and do not hold it back)
                w.delete_access_points([a.access_point_id for a in w.access_points(file_system_id=file_system_id)])
                w.set_file_system_state(file_system_id, DELETING)
        self._remove(file_system_id)
        return {}

    # --- helpers -------------------------------------------------------------------------------

    def _make_directory(self, file_system_id: str) -> None:
        try:
            self.directories.create(file_system_id)
            state = AVAILABLE
        except OSError:
            log.exception("the directory of file system %s cannot be made", file_system_id)
            state = ERROR
        with self.store.writing() as w:
            w.set_file_system_state(file_system_id, state)

    def _remove(self, file_system_id: str) -> None:
        def forget() -> None:
            with self.store.writing() as w:
                w.delete_file_system(file_system_id)
            self.meter.forget(file_system_id)
        self.directories.remove_later(file_system_id, forget)

    def _size(self, fs: FileSystemRow) -> dict:
        if fs.life_cycle_state != AVAILABLE:
            return dict(_EMPTY_SIZE)
        try:
            measured = self.meter.size(fs.file_system_id)
        except OSError:  # the directory is gone from under Fargo: nothing to meter
            return dict(_EMPTY_SIZE)
        return {"Value": measured.value, "Timestamp": measured.at, "ValueInIA": 0,
                "ValueInStandard": measured.value, "ValueInArchive": 0}

    def _kms_key_arn(self, key: str | None) -> str:
        """A key named by id, alias or ARN, as the ARN EFS reports; none given: EFS's AWS managed key."""
        prefix = f"arn:aws:kms:{self.ctx.config.region}:{self.ctx.config.account_id}"
        if not key:
            return f"{prefix}:{DEFAULT_KMS_ALIAS}"
        if key.startswith("arn:"):
            return key
        return f"{prefix}:{key}" if key.startswith("alias/") else f"{prefix}:key/{key}" if _KEY_ID.match(key) else key

    def _render(self, fs: FileSystemRow, tags: Tags | None, mount_targets: int, size: dict | None) -> dict:
        cfg = self.ctx.config
        out: dict = {
            "OwnerId": cfg.account_id, "CreationToken": fs.creation_token, "FileSystemId": fs.file_system_id,
            "FileSystemArn": ids.file_system_arn(cfg.region, cfg.account_id, fs.file_system_id),
            "CreationTime": fs.created_at, "LifeCycleState": fs.life_cycle_state, "Name": name_of(tags),
            "NumberOfMountTargets": mount_targets, "SizeInBytes": size or dict(_EMPTY_SIZE),
            "PerformanceMode": fs.performance_mode, "Encrypted": fs.encrypted, "KmsKeyId": fs.kms_key_id,
            "ThroughputMode": fs.throughput_mode, "ProvisionedThroughputInMibps": fs.provisioned_throughput,
            "Tags": tag_list(tags), "FileSystemProtection": {"ReplicationOverwriteProtection": "ENABLED"},
        }
        if fs.availability_zone:
            out.update(AvailabilityZoneName=fs.availability_zone,
                       AvailabilityZoneId=self.zones.zone_id(fs.availability_zone))
        return out
