"""Secrets Manager and Parameter Store on a real store (SQLite, and PostgreSQL for the migration and locks),
with a clock the tests move: recovery windows that pass, versions kept within bounds, retries by token."""
from __future__ import annotations

from pathlib import Path

import pytest

from fargo.control.secrets import messages as msg
from fargo.errors import InvalidRequestException, ParameterVersionNotFound, ResourceExistsException
from fargo.control.secrets.names import NameRules
from fargo.control.secrets.parameters import KEEP_VERSIONS, ParameterStore
from fargo.control.secrets.sealing import Sealer
from fargo.control.secrets.secrets_manager import DAY, MAX_VERSIONS, SecretsManager
from fargo.errors import ResourceNotFoundException
from fargo.store.database import Store
from fargo.store.secrets_store import SecretsStore
from tests.e2e.test_persistence import postgres_url  # noqa: F401 - the fixture: a fresh PostgreSQL database

T1, T2 = "1" * 32, "2" * 32


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def _services(url: str, key: Path, clock: Clock) -> tuple[SecretsManager, ParameterStore]:
    store = Store(url)
    store.migrate()
    rules, sealer, secrets = NameRules("us-east-1", "000000000000"), Sealer(key), SecretsStore(store)
    return SecretsManager(secrets, sealer, rules, clock), ParameterStore(secrets, sealer, rules, clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sm(tmp_path: Path, clock: Clock) -> SecretsManager:
    return _services(f"sqlite:///{tmp_path / 'fargo.db'}", tmp_path / "secrets" / "key", clock)[0]


@pytest.fixture
def ssm(tmp_path: Path, clock: Clock) -> ParameterStore:
    return _services(f"sqlite:///{tmp_path / 'fargo.db'}", tmp_path / "secrets" / "key", clock)[1]


def test_a_secret_whose_recovery_window_passed_is_gone_and_its_name_free(sm: SecretsManager, clock: Clock) -> None:
    first = sm.create_secret({"Name": "db", "SecretString": "v1", "ClientRequestToken": T1})
    sm.delete_secret({"SecretId": "db", "RecoveryWindowInDays": 7})
    clock.t += 7 * DAY - 1
    assert sm.describe_secret({"SecretId": "db"})["DeletedDate"] == pytest.approx(clock.t + 1)
    with pytest.raises(InvalidRequestException) as e:
        sm.create_secret({"Name": "db", "SecretString": "v2", "ClientRequestToken": T2})
    assert e.value.message == msg.SCHEDULED_FOR_DELETION
    clock.t += 1
    with pytest.raises(ResourceNotFoundException):
        sm.describe_secret({"SecretId": first["ARN"]})
    assert sm.list_secrets({"IncludePlannedDeletion": True})["SecretList"] == []
    again = sm.create_secret({"Name": "db", "SecretString": "v2", "ClientRequestToken": T2})
    assert again["ARN"] != first["ARN"]  # a new suffix
    with pytest.raises(ResourceNotFoundException):
        sm.get_secret_value({"SecretId": first["ARN"]})


def test_a_restored_secret_is_readable_again(sm: SecretsManager, clock: Clock) -> None:
    sm.create_secret({"Name": "db", "SecretString": "v1", "ClientRequestToken": T1})
    sm.delete_secret({"SecretId": "db"})
    with pytest.raises(InvalidRequestException) as e:
        sm.get_secret_value({"SecretId": "db"})
    assert e.value.message == msg.MARKED_FOR_DELETION
    clock.t += 29 * DAY
    sm.restore_secret({"SecretId": "db"})
    clock.t += 2 * DAY
    assert sm.get_secret_value({"SecretId": "db"})["SecretString"] == "v1"


def test_at_most_max_versions_are_kept_dropping_the_oldest_unlabelled(sm: SecretsManager, clock: Clock) -> None:
    sm.create_secret({"Name": "db", "SecretString": "v0", "ClientRequestToken": f"{0:032d}"})
    for i in range(1, MAX_VERSIONS + 5):
        clock.t += 1
        sm.put_secret_value({"SecretId": "db", "SecretString": f"v{i}", "ClientRequestToken": f"{i:032d}"})
    stages = sm.describe_secret({"SecretId": "db"})["VersionIdsToStages"]
    assert stages == {f"{MAX_VERSIONS + 4:032d}": ["AWSCURRENT"], f"{MAX_VERSIONS + 3:032d}": ["AWSPREVIOUS"]}
    store = sm.store
    with store.reading() as r:
        versions = r.secret_versions([sm.describe_secret({"SecretId": "db"})["ARN"]])
    assert len(next(iter(versions.values()))) == MAX_VERSIONS
    with pytest.raises(ResourceNotFoundException):
        sm.get_secret_value({"SecretId": "db", "VersionId": f"{0:032d}"})


def test_a_retry_with_the_same_token_changes_nothing_and_other_data_conflicts(sm: SecretsManager) -> None:
    made = sm.create_secret({"Name": "db", "SecretString": "v1", "ClientRequestToken": T1})
    assert sm.create_secret({"Name": "db", "SecretString": "v1", "ClientRequestToken": T1}) == made
    sm.put_secret_value({"SecretId": "db", "SecretString": "v2", "ClientRequestToken": T2})
    again = sm.put_secret_value({"SecretId": "db", "SecretString": "v2", "ClientRequestToken": T2})
    assert again["VersionStages"] == ["AWSCURRENT"]
    with pytest.raises(ResourceExistsException) as e:
        sm.put_secret_value({"SecretId": "db", "SecretString": "other", "ClientRequestToken": T2})
    assert e.value.message == msg.token_in_use(T2, made["ARN"])
    assert sm.describe_secret({"SecretId": "db"})["VersionIdsToStages"] == {T1: ["AWSPREVIOUS"], T2: ["AWSCURRENT"]}


def test_parameters_keep_their_newest_versions(ssm: ParameterStore) -> None:
    ssm.put_parameter({"Name": "/p", "Value": "v1", "Type": "String"})
    for i in range(2, KEEP_VERSIONS + 3):
        assert ssm.put_parameter({"Name": "/p", "Value": f"v{i}", "Overwrite": True})["Version"] == i
    assert ssm.get_parameter({"Name": "/p:3"})["Parameter"]["Value"] == "v3"
    with pytest.raises(ParameterVersionNotFound) as e:
        ssm.get_parameter({"Name": "/p:2"})
    assert e.value.message == msg.version_not_found("/p", "2")


def test_both_services_on_postgresql(tmp_path: Path, postgres_url: str, clock: Clock) -> None:  # noqa: F811
    sm, ssm = _services(postgres_url, tmp_path / "secrets" / "key", clock)
    made = sm.create_secret({"Name": "pg/db", "SecretString": "v1", "ClientRequestToken": T1})
    sm.put_secret_value({"SecretId": made["ARN"][:-7], "SecretString": "v2", "ClientRequestToken": T2})
    assert sm.get_secret_value({"SecretId": "pg/db", "VersionStage": "AWSPREVIOUS"})["SecretString"] == "v1"
    assert [s["Name"] for s in sm.list_secrets({})["SecretList"]] == ["pg/db"]
    sm.delete_secret({"SecretId": "pg/db", "ForceDeleteWithoutRecovery": True})
    ssm.put_parameter({"Name": "/pg/x", "Value": "s", "Type": "SecureString", "Tags": [{"Key": "k", "Value": "v"}]})
    ssm.put_parameter({"Name": "/pg/x", "Value": "t", "Overwrite": True})
    assert ssm.get_parameter({"Name": "/pg/x", "WithDecryption": True})["Parameter"]["Value"] == "t"
    assert ssm.get_parameters_by_path({"Path": "/pg"})["Parameters"][0]["Version"] == 2
    assert ssm.list_tags({"ResourceType": "Parameter", "ResourceId": "/pg/x"})["TagList"] == [{"Key": "k", "Value": "v"}]
    assert ssm.delete_parameters({"Names": ["/pg/x", "/pg/y"]}) == {"DeletedParameters": ["/pg/x"],
                                                                     "InvalidParameters": ["/pg/y"]}
