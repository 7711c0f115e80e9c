"""EFS ids and ARNs: `fs-`, `fsap-`, `fsmt-` plus 17 lowercase hex digits, as AWS makes today; parameters
that name a file system or access point take its ARN too."""
from __future__ import annotations

import re

from fargo.control.vpcs.ids import new_id

FILE_SYSTEM = "fs"
ACCESS_POINT = "fsap"
MOUNT_TARGET = "fsmt"

__all__ = ["ACCESS_POINT", "FILE_SYSTEM", "MOUNT_TARGET", "access_point_arn", "file_system_arn", "new_id",
           "resource_id"]

_ARN = re.compile(r"^arn:aws[-a-z]*:elasticfilesystem:[^:]*:[^:]*:(?:file-system|access-point)/(?P<id>[^/]+)$")


def file_system_arn(region: str, account_id: str, file_system_id: str) -> str:
    return f"arn:aws:elasticfilesystem:{region}:{account_id}:file-system/{file_system_id}"


def access_point_arn(region: str, account_id: str, access_point_id: str) -> str:
    return f"arn:aws:elasticfilesystem:{region}:{account_id}:access-point/{access_point_id}"


def resource_id(ref: str) -> str:
    """The id a parameter names, by id or by ARN (`arn:aws:elasticfilesystem:...:file-system/fs-...`)."""
    found = _ARN.match(ref)
    return found["id"] if found else ref
