"""The tables of Secrets Manager and SSM Parameter Store, on the store's one `metadata`.

Values are never stored in the clear when they are secret: `sealed` holds what `fargo.control.secrets.sealing`
made of them (only String and StringList parameter values stay plain, as they are not secret in AWS either).
"""
from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Integer, LargeBinary, String, Table, Text

from fargo.store.schema import metadata

# A secret; `deletion_date` is set while it is scheduled for deletion (gone once that date has passed).
sm_secrets = Table(
    "sm_secrets", metadata,
    Column("arn", String(2048), primary_key=True),
    Column("name", String(512), nullable=False, unique=True),
    Column("description", String(2048)),
    Column("kms_key_id", String(2048)),
    Column("created_at", Float, nullable=False),
    Column("last_changed_at", Float, nullable=False),
    Column("last_accessed_at", Float),
    Column("deletion_date", Float),
)

# A version of a secret's value; `stages` is its list of staging labels (empty: deprecated).
sm_versions = Table(
    "sm_versions", metadata,
    Column("secret_arn", String(2048), primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("kind", String(8), nullable=False),  # "string" | "binary"
    Column("sealed", LargeBinary, nullable=False),
    Column("stages", JSON, nullable=False),
)

# A parameter: its name and the version that is current (the version row holds everything else).
ssm_parameters = Table(
    "ssm_parameters", metadata,
    Column("name", String(2048), primary_key=True),
    Column("version", Integer, nullable=False),
)

ssm_versions = Table(
    "ssm_versions", metadata,
    Column("name", String(2048), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("value", Text),  # String and StringList only
    Column("sealed", LargeBinary),  # SecureString only
    Column("key_id", String(256)),
    Column("description", String(1024)),
    Column("allowed_pattern", String(1024)),
    Column("tier", String(32), nullable=False),
    Column("data_type", String(128), nullable=False),
    Column("last_modified_at", Float, nullable=False),
)

# Tags of secrets and parameters, by the resource's ARN, in the order they were added.
secret_tags = Table(
    "secret_tags", metadata,
    Column("resource_arn", String(2048), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("position", Integer, nullable=False),
)
