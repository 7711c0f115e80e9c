"""Task role credentials: AWS-shaped keys, 6 h expiry, rotation an hour before expiry, revocation."""
from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime

from fargo.agent.metadata.credentials import TaskCredentials

ROLE = "arn:aws:iam::123456789012:role/app"
START = 1_700_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def test_issued_credentials_look_like_sts_session_credentials() -> None:
    clock = FakeClock()
    credentials = TaskCredentials(clock)
    credentials_id = credentials.issue("task-1", ROLE)
    assert str(uuid.UUID(credentials_id)) == credentials_id
    body = credentials.get(credentials_id)
    assert body is not None
    assert list(body) == ["RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"]
    assert body["RoleArn"] == ROLE
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", body["AccessKeyId"])
    assert len(body["SecretAccessKey"]) == 40
    assert len(body["Token"]) > 300 and base64.b64decode(body["Token"], validate=True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["Expiration"])
    expires = datetime.fromisoformat(body["Expiration"].replace("Z", "+00:00")).timestamp()
    assert expires == START + 6 * 3600


def test_every_task_gets_its_own_id_and_keys_and_issuing_again_keeps_them() -> None:
    credentials = TaskCredentials(FakeClock())
    first, second = credentials.issue("task-1", ROLE), credentials.issue("task-2", ROLE)
    assert first != second
    assert credentials.get(first)["AccessKeyId"] != credentials.get(second)["AccessKeyId"]  # type: ignore[index]
    assert credentials.issue("task-1", ROLE) == first
    assert credentials.credentials_id_of("task-1") == first


def test_the_same_key_is_served_until_an_hour_before_expiry_then_a_new_one() -> None:
    clock = FakeClock()
    credentials = TaskCredentials(clock)
    credentials_id = credentials.issue("task-1", ROLE)
    first = credentials.get(credentials_id)
    clock.now = START + 5 * 3600 - 1
    assert credentials.get(credentials_id) == first
    clock.now = START + 5 * 3600
    rotated = credentials.get(credentials_id)
    assert rotated is not None and first is not None
    assert rotated["AccessKeyId"] != first["AccessKeyId"] and rotated["Token"] != first["Token"]
    assert rotated["Expiration"] > first["Expiration"]
    # The old key stays valid until its own expiry, then only the new one is.
    assert credentials.find_key(first["AccessKeyId"]) is not None
    clock.now = START + 6 * 3600
    assert credentials.find_key(first["AccessKeyId"]) is None
    found = credentials.find_key(rotated["AccessKeyId"])
    assert found is not None and found[0] == ROLE
    assert credentials.get(credentials_id) == rotated


def test_revoked_and_unknown_ids_have_no_credentials() -> None:
    credentials = TaskCredentials(FakeClock())
    credentials_id = credentials.issue("task-1", ROLE)
    key = credentials.get(credentials_id)["AccessKeyId"]  # type: ignore[index]
    credentials.revoke("task-1")
    assert credentials.get(credentials_id) is None
    assert credentials.find_key(key) is None
    assert credentials.get(str(uuid.uuid4())) is None
    credentials.revoke("task-1")  # again: nothing to do


def test_a_key_repr_shows_no_secret() -> None:
    credentials = TaskCredentials(FakeClock())
    credentials_id = credentials.issue("task-1", ROLE)
    body = credentials.get(credentials_id)
    assert body is not None
    found = credentials.find_key(body["AccessKeyId"])
    assert found is not None
    text = repr(found[1])
    assert body["AccessKeyId"] in text
    assert body["SecretAccessKey"] not in text and body["Token"] not in text


def test_a_restarted_agent_restores_the_id_a_running_task_already_has() -> None:
    credentials_id = str(uuid.uuid4())
    credentials = TaskCredentials(FakeClock())
    assert credentials.issue("task-1", ROLE, credentials_id) == credentials_id
    assert credentials.get(credentials_id) is not None
    assert credentials.issue("task-1", ROLE) == credentials_id
