"""Turning a docker-style `user` ("", "uid", "uid:gid", "name", "name:group") into uid, gid and groups.

Names resolve through the image's own /etc/passwd and /etc/group, as docker and runc resolve them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from fargo.runtime.errors import UnknownUser
from fargo.runtime.records import ImageConfig, UserDatabase


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _PasswdEntry:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class _GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _passwd(text: str) -> list[_PasswdEntry]:
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit() and parts[3].isdigit():
            entries.append(_PasswdEntry(parts[0], int(parts[2]), int(parts[3])))
    return entries


def _groups(text: str) -> list[_GroupEntry]:
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            members = tuple(m for m in (parts[3].split(",") if len(parts) > 3 else []) if m)
            entries.append(_GroupEntry(parts[0], int(parts[2]), members))
    return entries


def container_user(container: dict, image: ImageConfig | None) -> str:
    """Who the container runs as: its definition's `user`, else its image's, else "" (root)."""
    return container.get("user") or (image.user if image else "") or ""


def needs_user_database(user: str) -> bool:
    """Only a user given by name (not a uid, with or without a group) is looked up in the image's passwd."""
    return bool(user) and not user.split(":")[0].isdigit()


def resolve_user(user: str, users: UserDatabase | None = None) -> ResolvedUser:
    """Resolve `user`; numeric ids need no database, names must exist in it ("root" always works)."""
    users = users or UserDatabase("", "")
    passwd, groups = _passwd(users.passwd), _groups(users.group)
    user_part, _, group_part = (user or "0").partition(":")
    user_part = user_part or "0"
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((e for e in passwd if e.uid == uid), None)
    else:
        entry = next((e for e in passwd if e.name == user_part), None)
        if entry is None:
            if user_part != "root":
                raise UnknownUser(f"unable to find user {user_part}: no matching entries in passwd file")
            entry = _PasswdEntry("root", 0, 0)
        uid = entry.uid
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            group = next((g for g in groups if g.name == group_part), None)
            if group is None:
                raise UnknownUser(f"unable to find group {group_part}: no matching entries in group file")
            gid = group.gid
    else:
        gid = entry.gid if entry else 0
    # Supplementary groups from /etc/group memberships, as runc's user lookup does.
    additional = sorted({g.gid for g in groups if entry and entry.name in g.members and g.gid != gid})
    return ResolvedUser(uid, gid, additional)
