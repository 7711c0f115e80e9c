"""AWS Secrets Manager: secrets, their versions and staging labels, deletion with a recovery window, tags.

A secret's value lives in its versions; each version's id is the ClientRequestToken that made it (so a
retried call with the same token and the same value changes nothing). Staging labels move between versions:
a new AWSCURRENT version leaves AWSPREVIOUS on the one it replaced. Versions without a label are deprecated;
at most `MAX_VERSIONS` are kept. A secret scheduled for deletion is gone once its date has passed: reads no
longer see it and the next write removes it.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable, Sequence

from fargo import clock
from fargo.control.secrets import messages as msg
from fargo.errors import (DecryptionFailure, InvalidNextTokenException, InvalidRequestException,
                                          ResourceExistsException)
from fargo.control.secrets.names import ARN_SUFFIX_LENGTH, NameRules, check_secret_name
from fargo.control.secrets.paging import page, page_size
from fargo.control.secrets.sealing import Sealer, SealingError
from fargo.control.secrets.secret_filters import matches_filters
from fargo.errors import (InvalidParameterException, LimitExceededException, ResourceNotFoundException,
                          SerializationException, ValidationException)
from fargo.store.secrets_store import SecretRow, SecretsReads, SecretsStore, SecretsWrites, SecretVersionRow

CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"
MAX_VERSIONS = 100  # "about 100" in AWS's quotas; beyond it, the oldest versions without a label go
MAX_VALUE_BYTES = 65536
MAX_TAGS = 50
TOKEN_MAX = 64
DAY = 86400.0
DEFAULT_RECOVERY_DAYS = 30
_NEED_TOKEN = "You must provide a ClientRequestToken value. We recommend a UUID-type value."  # OBS aws-sdk-js-v3#4640

Value = tuple[str, bytes]  # (kind, data): ("string", UTF-8 text) or ("binary", the bytes)


class SecretsManager:
    def __init__(self, store: SecretsStore, sealer: Sealer, rules: NameRules,
                 now: Callable[[], float] = clock.now) -> None:
        self.store = store
        self.sealer = sealer
        self.rules = rules
        self.now = now

    def handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {"CreateSecret": self.create_secret, "GetSecretValue": self.get_secret_value,
                "PutSecretValue": self.put_secret_value, "DescribeSecret": self.describe_secret,
                "ListSecrets": self.list_secrets, "UpdateSecret": self.update_secret,
                "DeleteSecret": self.delete_secret, "RestoreSecret": self.restore_secret,
                "TagResource": self.tag_resource, "UntagResource": self.untag_resource}

    # --- API -----------------------------------------------------------------------------------

    def create_secret(self, p: dict) -> dict:
        name = p["Name"]
        check_secret_name(name)
        _check_lengths(p)
        value = _value_of(p)
        token = _token_of(p, required=value is not None)
        tags = _tags_of(p.get("Tags"))
        if len({k for k, _ in tags}) > MAX_TAGS:
            raise LimitExceededException(msg.too_many_tags(MAX_TAGS))
        now = self.now()
        with self.store.writing() as w:
            self._purge_expired(w, now)
            existing = w.secret(name=name, lock=True)
            if existing is not None:
                if existing.deletion_date is not None:
                    raise InvalidRequestException(msg.SCHEDULED_FOR_DELETION)
                same = self._same_version(w, existing, token, value)
                if same is None:
                    raise ResourceExistsException(msg.secret_exists(name))
                return {"ARN": existing.arn, "Name": name, "VersionId": same.version_id}
            row = SecretRow(arn=self.rules.new_secret_arn(name), name=name, description=p.get("Description"),
                            kms_key_id=p.get("KmsKeyId") or None, created_at=now, last_changed_at=now,
                            last_accessed_at=None, deletion_date=None)
            if not w.insert_secret(row):
                raise ResourceExistsException(msg.secret_exists(name))
            w.put_tags(row.arn, tags)
            if value is not None:
                assert token is not None
                self._add_version(w, row, token, value, [CURRENT], [], now)
        out = {"ARN": row.arn, "Name": name}
        if value is not None:
            out["VersionId"] = token
        return out

    def get_secret_value(self, p: dict) -> dict:
        version_id, stage = p.get("VersionId"), p.get("VersionStage")
        if version_id is not None and len(version_id) > TOKEN_MAX:
            raise ValidationException(msg.too_long("versionId", TOKEN_MAX))
        now = self.now()
        with self.store.reading() as r:
            row = self._existing(r, p["SecretId"], now)
            if row.deletion_date is not None:
                raise InvalidRequestException(msg.MARKED_FOR_DELETION)
            versions = r.secret_versions([row.arn]).get(row.arn, [])
        version = _chosen_version(versions, version_id, stage)
        kind, data = self._open(row, version)
        out: dict = {"ARN": row.arn, "Name": row.name, "VersionId": version.version_id,
                     "VersionStages": version.stages, "CreatedDate": version.created_at}
        if kind == "string":
            out["SecretString"] = data.decode("utf-8", "surrogatepass")
        else:
            out["SecretBinary"] = base64.b64encode(data).decode()
        self._note_access(row, now)
        return out

    def put_secret_value(self, p: dict) -> dict:
        value = _value_of(p)
        if value is None:
            raise InvalidParameterException(msg.VALUE_REQUIRED)
        token = _token_of(p, required=True)
        assert token is not None
        stages = list(dict.fromkeys(p.get("VersionStages") or [CURRENT]))
        if len(stages) > 20:
            raise ValidationException(msg.too_long("versionStages", 20))
        for stage in stages:
            if len(stage) > 256:
                raise ValidationException(msg.too_long("versionStages.member", 256))
        now = self.now()
        with self.store.writing() as w:
            self._purge_expired(w, now)
            row = self._existing(w, p["SecretId"], now, lock=True)
            if row.deletion_date is not None:
                raise InvalidRequestException(msg.MARKED_FOR_DELETION)
            versions = w.secret_versions([row.arn]).get(row.arn, [])
            same = self._same_version(w, row, token, value, versions)
            if same is not None:
                return {"ARN": row.arn, "Name": row.name, "VersionId": same.version_id, "VersionStages": same.stages}
            self._add_version(w, row, token, value, stages, versions, now)
        return {"ARN": row.arn, "Name": row.name, "VersionId": token, "VersionStages": stages}

    def update_secret(self, p: dict) -> dict:
        _check_lengths(p)
        value = _value_of(p)
        token = _token_of(p, required=value is not None)
        now = self.now()
        with self.store.writing() as w:
            self._purge_expired(w, now)
            row = self._existing(w, p["SecretId"], now, lock=True)
            if row.deletion_date is not None:
                raise InvalidRequestException(msg.MARKED_FOR_DELETION)
            changes: dict = {"last_changed_at": now}
            if "Description" in p:
                changes["description"] = p["Description"]
            if "KmsKeyId" in p:
                changes["kms_key_id"] = p["KmsKeyId"] or None
            version_id = None
            if value is not None:
                assert token is not None
                versions = w.secret_versions([row.arn]).get(row.arn, [])
                same = self._same_version(w, row, token, value, versions)
                if same is None:
                    self._add_version(w, row, token, value, [CURRENT], versions, now)
                version_id = token
            w.update_secret(row.arn, **changes)
        out = {"ARN": row.arn, "Name": row.name}
        if version_id is not None:
            out["VersionId"] = version_id
        return out

    def describe_secret(self, p: dict) -> dict:
        now = self.now()
        with self.store.reading() as r:
            row = self._existing(r, p["SecretId"], now)
            versions = r.secret_versions([row.arn]).get(row.arn, [])
            tags = r.tags([row.arn]).get(row.arn, [])
        out = self._summary(row, tags)
        out["VersionIdsToStages"] = {v.version_id: v.stages for v in versions if v.stages}
        return out

    def list_secrets(self, p: dict) -> dict:
        size = page_size(p.get("MaxResults"), 100, 100)
        filters = p.get("Filters") or []
        for f in filters:
            if len(f.get("Values") or []) > 10:
                raise ValidationException(msg.too_long("filters.member.values", 10))
        now = self.now()
        with self.store.reading() as r:
            rows = [s for s in r.secrets() if not _expired(s, now)]
            if not p.get("IncludePlannedDeletion"):
                rows = [s for s in rows if s.deletion_date is None]
            tags = r.tags([s.arn for s in rows])
            rows = [s for s in rows if matches_filters(s, tags.get(s.arn, []), filters)]
            rows = _sorted(rows, p.get("SortBy") or "created-date", p.get("SortOrder") or "asc")
            chunk, next_token = page(rows, p.get("NextToken"), size,
                                     lambda: InvalidNextTokenException(msg.INVALID_NEXT_TOKEN))
            versions = r.secret_versions([s.arn for s in chunk])
        entries = []
        for s in chunk:
            entry = self._summary(s, tags.get(s.arn, []))
            entry["SecretVersionsToStages"] = {v.version_id: v.stages for v in versions.get(s.arn, []) if v.stages}
            entries.append(entry)
        out: dict = {"SecretList": entries}
        if next_token:
            out["NextToken"] = next_token
        return out

    def delete_secret(self, p: dict) -> dict:
        window, force = p.get("RecoveryWindowInDays"), bool(p.get("ForceDeleteWithoutRecovery", False))
        if window is not None and not 7 <= window <= 30:
            raise InvalidParameterException(msg.RECOVERY_WINDOW_RANGE)
        if window is not None and force:
            raise InvalidParameterException(msg.FORCE_AND_RECOVERY_WINDOW)
        secret_id = p["SecretId"]
        now = self.now()
        with self.store.writing() as w:
            self._purge_expired(w, now)
            row = self._find(w, secret_id, now, lock=True)
            if row is None:
                if not force:
                    raise ResourceNotFoundException(msg.SECRET_NOT_FOUND)
                # AWS answers a forced delete of a secret it does not have without an error
                ref = self.rules.secret_ref(secret_id)
                return {"ARN": ref.arn or self.rules.secret_arn_prefix + secret_id,
                        "Name": ref.name or secret_id.rpartition(":")[2], "DeletionDate": now}
            if force:
                w.delete_secret(row.arn)
                return {"ARN": row.arn, "Name": row.name, "DeletionDate": now}
            if row.deletion_date is not None:
                raise InvalidRequestException(msg.MARKED_FOR_DELETION)
            deletion_date = round(now + (window or DEFAULT_RECOVERY_DAYS) * DAY, 3)
            w.update_secret(row.arn, deletion_date=deletion_date, last_changed_at=now)
        return {"ARN": row.arn, "Name": row.name, "DeletionDate": deletion_date}

    def restore_secret(self, p: dict) -> dict:
        now = self.now()
        with self.store.writing() as w:
            self._purge_expired(w, now)
            row = self._existing(w, p["SecretId"], now, lock=True)
            if row.deletion_date is not None:
                w.update_secret(row.arn, deletion_date=None, last_changed_at=now)
        return {"ARN": row.arn, "Name": row.name}

    def tag_resource(self, p: dict) -> dict:
        tags = _tags_of(p["Tags"])
        now = self.now()
        with self.store.writing() as w:
            self._purge_expired(w, now)
            row = self._existing(w, p["SecretId"], now, lock=True)
            keys = {k for k, _ in w.tags([row.arn]).get(row.arn, [])} | {k for k, _ in tags}
            if len(keys) > MAX_TAGS:
                raise LimitExceededException(msg.too_many_tags(MAX_TAGS))
            w.put_tags(row.arn, tags)
            w.update_secret(row.arn, last_changed_at=now)
        return {}

    def untag_resource(self, p: dict) -> dict:
        now = self.now()
        with self.store.writing() as w:
            self._purge_expired(w, now)
            row = self._existing(w, p["SecretId"], now, lock=True)
            w.remove_tags(row.arn, p["TagKeys"])
            w.update_secret(row.arn, last_changed_at=now)
        return {}

    # --- helpers -------------------------------------------------------------------------------

    def _find(self, r: SecretsReads, secret_id: str, now: float, lock: bool = False) -> SecretRow | None:
        """The secret a SecretId names: by name, full ARN, or partial ARN when exactly one secret matches."""
        ref = self.rules.secret_ref(secret_id)
        if ref.name is not None:
            row = r.secret(name=ref.name, lock=lock)
        else:
            assert ref.arn is not None
            row = r.secret(arn=ref.arn, lock=lock)
            if row is None and ref.arn.startswith(self.rules.secret_arn_prefix):
                found = r.secrets_with_arn_prefix(ref.arn + "-", ARN_SUFFIX_LENGTH)
                if len(found) == 1:
                    row = r.secret(arn=found[0].arn, lock=lock)
        return None if row is None or _expired(row, now) else row

    def _existing(self, r: SecretsReads, secret_id: str, now: float, lock: bool = False) -> SecretRow:
        row = self._find(r, secret_id, now, lock)
        if row is None:
            raise ResourceNotFoundException(msg.SECRET_NOT_FOUND)
        return row

    def _purge_expired(self, w: SecretsWrites, now: float) -> None:
        for arn in w.expired_secret_arns(now):
            w.delete_secret(arn)

    def _same_version(self, r: SecretsReads, row: SecretRow, token: str | None, value: Value | None,
                      versions: Sequence[SecretVersionRow] | None = None) -> SecretVersionRow | None:
        """The version `token` made already, if it holds this same value (a retry); a conflict otherwise."""
        if token is None:
            return None
        if versions is None:
            versions = r.secret_versions([row.arn]).get(row.arn, [])
        version = next((v for v in versions if v.version_id == token), None)
        if version is None:
            return None
        if value is None or self._open(row, version) != value:
            raise ResourceExistsException(msg.token_in_use(token, row.arn))
        return version

    def _add_version(self, w: SecretsWrites, row: SecretRow, version_id: str, value: Value, stages: list[str],
                     versions: Sequence[SecretVersionRow], now: float) -> None:
        """`value` as a new version with `stages`, taken from the versions that had them."""
        moves_current = CURRENT in stages
        kept: list[SecretVersionRow] = []
        for v in versions:
            left = [s for s in v.stages if s not in stages and not (moves_current and s == PREVIOUS)]
            if moves_current and CURRENT in v.stages:
                left.append(PREVIOUS)
            if left != v.stages:
                w.set_stages(row.arn, v.version_id, left)
            kept.append(dataclasses.replace(v, stages=left))
        kind, data = value
        sealed = self.sealer.seal(data, _owner(row.arn, version_id))
        w.insert_secret_version(SecretVersionRow(secret_arn=row.arn, version_id=version_id, created_at=now,
                                                 kind=kind, sealed=sealed, stages=stages))
        excess = len(kept) + 1 - MAX_VERSIONS
        if excess > 0:
            deprecated = [v.version_id for v in kept if not v.stages][:excess]  # oldest first
            w.delete_secret_versions(row.arn, deprecated)
        w.update_secret(row.arn, last_changed_at=now)

    def _open(self, row: SecretRow, version: SecretVersionRow) -> Value:
        try:
            return version.kind, self.sealer.open(version.sealed, _owner(row.arn, version.version_id))
        except SealingError:  # another key file than the one that sealed it
            raise DecryptionFailure(msg.DECRYPTION_FAILURE) from None

    def _note_access(self, row: SecretRow, now: float) -> None:
        """AWS keeps the day of the last access; write only when the day changes."""
        today = now - now % DAY
        if row.last_accessed_at is not None and row.last_accessed_at >= today:
            return
        with self.store.writing() as w:
            w.update_secret(row.arn, last_accessed_at=today)

    def _summary(self, row: SecretRow, tags: list[tuple[str, str]]) -> dict:
        """The members DescribeSecret and ListSecrets share; only those that are set."""
        out: dict = {"ARN": row.arn, "Name": row.name, "LastChangedDate": row.last_changed_at,
                     "CreatedDate": row.created_at}
        if row.description:
            out["Description"] = row.description
        if row.kms_key_id:
            out["KmsKeyId"] = row.kms_key_id
        if row.last_accessed_at is not None:
            out["LastAccessedDate"] = row.last_accessed_at
        if row.deletion_date is not None:
            out["DeletedDate"] = row.deletion_date
        if tags:
            out["Tags"] = [{"Key": k, "Value": v} for k, v in tags]
        return out


def _owner(arn: str, version_id: str) -> str:
    """The associated data of a sealed secret value: it opens only as this version of this secret."""
    return f"secretsmanager:{arn}:{version_id}"


def _expired(row: SecretRow, now: float) -> bool:
    return row.deletion_date is not None and row.deletion_date <= now


def _chosen_version(versions: Sequence[SecretVersionRow], version_id: str | None,
                    stage: str | None) -> SecretVersionRow:
    if version_id is not None:
        version = next((v for v in versions if v.version_id == version_id), None)
        if version is None:
            raise ResourceNotFoundException(msg.no_value_for_version(version_id))
        if stage is not None and stage not in version.stages:
            raise InvalidRequestException(msg.STAGE_NOT_OF_VERSION)
        return version
    stage = stage or CURRENT
    version = next((v for v in versions if stage in v.stages), None)
    if version is None:
        raise ResourceNotFoundException(msg.no_value_for_stage(stage))
    return version


def _value_of(p: dict) -> Value | None:
    text, binary = p.get("SecretString"), p.get("SecretBinary")
    if text is not None and binary is not None:
        raise InvalidParameterException(msg.STRING_AND_BINARY)
    if text is not None:
        data = text.encode("utf-8", "surrogatepass")
        if len(text) > MAX_VALUE_BYTES:
            raise ValidationException(msg.too_long("secretString", MAX_VALUE_BYTES))
        return "string", data
    if binary is not None:
        try:
            data = base64.b64decode(binary, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise SerializationException("Value for 'SecretBinary' is not valid base64.") from None
        if len(data) > MAX_VALUE_BYTES:
            raise ValidationException(msg.too_long("secretBinary", MAX_VALUE_BYTES))
        return "binary", data
    return None


def _token_of(p: dict, required: bool) -> str | None:
    token = p.get("ClientRequestToken")
    if token is None:
        if required:
            raise InvalidRequestException(_NEED_TOKEN)
        return None
    if len(token) > TOKEN_MAX:
        raise InvalidParameterException(msg.BAD_CLIENT_REQUEST_TOKEN)
    return token


def _check_lengths(p: dict) -> None:
    for member, wire, limit in (("Description", "description", 2048), ("KmsKeyId", "kmsKeyId", 2048)):
        if p.get(member) is not None and len(p[member]) > limit:
            raise ValidationException(msg.too_long(wire, limit))


def _tags_of(tags: list[dict] | None) -> list[tuple[str, str]]:
    out = []
    for tag in tags or []:
        key, value = tag.get("Key", ""), tag.get("Value", "")
        if len(key) > 128:
            raise ValidationException(msg.too_long("tags.member.key", 128))
        if len(value) > 256:
            raise ValidationException(msg.too_long("tags.member.value", 256))
        out.append((key, value))
    return out


def _sorted(rows: list[SecretRow], by: str, order: str) -> list[SecretRow]:
    keys: dict[str, Callable[[SecretRow], tuple]] = {
        "created-date": lambda s: (s.created_at, s.name),
        "last-changed-date": lambda s: (s.last_changed_at, s.name),
        "last-accessed-date": lambda s: (s.last_accessed_at or 0.0, s.name),
        "name": lambda s: (s.name,),
    }
    return sorted(rows, key=keys[by], reverse=order == "desc")
