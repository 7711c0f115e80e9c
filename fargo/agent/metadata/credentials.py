"""Temporary credentials Fargo issues to each task that has a task role, served at /v2/credentials/<id>.

Keys look like STS session keys. A task's current key is replaced by a new one from an hour before it
expires (SDKs refresh 15 min ahead), and every key stays valid until its own expiry, as STS keys do.
"""
from __future__ import annotations

import base64
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fargo.agent.metadata.timestamps import rfc3339_seconds

KEY_LIFETIME = 6 * 3600.0
ROTATE_BEFORE_EXPIRY = 3600.0
_ACCESS_KEY_PREFIX = "ASIA"  # STS temporary keys start so; long-term IAM user keys start AKIA
_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_TOKEN_BYTES = 480  # STS session tokens run to several hundred base64 characters


@dataclass(frozen=True)
class IssuedKey:
    """One key pair; repr shows only the access key id, so logging one leaks no secret."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    token: str = field(repr=False)
    expires_at: float  # epoch seconds


@dataclass
class _TaskRole:
    task_id: str
    role_arn: str
    credentials_id: str
    keys: list[IssuedKey]  # oldest first; the last is current


class TaskCredentials:
    """Credentials of every task on this host, by credentials id (the UUID in the relative URI)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._by_id: dict[str, _TaskRole] = {}
        self._id_of_task: dict[str, str] = {}
        self._lock = threading.Lock()  # the agent's loop and its worker threads may both ask

    def issue(self, task_id: str, role_arn: str, credentials_id: str | None = None) -> str:
        """A credentials id for the task, with a fresh key; again for the same task and role: the same id.

        `credentials_id` restores the id a running task already has in its environment (an agent restarted).
        """
        with self._lock:
            known = self._id_of_task.get(task_id)
            if known is not None and self._by_id[known].role_arn == role_arn and credentials_id in (None, known):
                return known
            if known is not None:
                del self._by_id[known]
            credentials_id = credentials_id or str(uuid.uuid4())
            self._by_id[credentials_id] = _TaskRole(task_id, role_arn, credentials_id, [self._new_key()])
            self._id_of_task[task_id] = credentials_id
            return credentials_id

    def get(self, credentials_id: str) -> dict[str, Any] | None:
        """The endpoint's JSON body (current key), or None for an unknown or revoked id."""
        with self._lock:
            role = self._by_id.get(credentials_id)
            if role is None:
                return None
            key = self._current_key(role)
            return {
                "RoleArn": role.role_arn,
                "AccessKeyId": key.access_key_id,
                "SecretAccessKey": key.secret_access_key,
                "Token": key.token,
                "Expiration": rfc3339_seconds(key.expires_at),
            }

    def credentials_id_of(self, task_id: str) -> str | None:
        return self._id_of_task.get(task_id)

    def find_key(self, access_key_id: str) -> tuple[str, IssuedKey] | None:
        """(role ARN, key) for a key that has not expired yet: what a signature check on Fargo's APIs needs."""
        now = self._clock()
        with self._lock:
            for role in self._by_id.values():
                for key in role.keys:
                    if key.access_key_id == access_key_id and key.expires_at > now:
                        return role.role_arn, key
        return None

    def revoke(self, task_id: str) -> None:
        """Forget the task's id and every key it had (the task stopped); nothing to do if it had none."""
        with self._lock:
            credentials_id = self._id_of_task.pop(task_id, None)
            if credentials_id is not None:
                self._by_id.pop(credentials_id, None)

    def _current_key(self, role: _TaskRole) -> IssuedKey:
        now = self._clock()
        role.keys = [key for key in role.keys if key.expires_at > now]
        if not role.keys or role.keys[-1].expires_at - now <= ROTATE_BEFORE_EXPIRY:
            role.keys.append(self._new_key())
        return role.keys[-1]

    def _new_key(self) -> IssuedKey:
        return IssuedKey(
            access_key_id=_ACCESS_KEY_PREFIX + "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(16)),
            secret_access_key="".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40)),
            token=base64.b64encode(secrets.token_bytes(_TOKEN_BYTES)).decode(),
            expires_at=float(int(self._clock() + KEY_LIFETIME)),  # whole seconds, as Expiration shows it
        )

