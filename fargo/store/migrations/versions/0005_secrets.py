"""Secrets Manager secrets and SSM parameters, their versions and tags; values sealed (encrypted) at rest.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sm_secrets",
        sa.Column("arn", sa.String(2048), primary_key=True),
        sa.Column("name", sa.String(512), nullable=False, unique=True),
        sa.Column("description", sa.String(2048)),
        sa.Column("kms_key_id", sa.String(2048)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_changed_at", sa.Float, nullable=False),
        sa.Column("last_accessed_at", sa.Float),
        sa.Column("deletion_date", sa.Float),
    )
    op.create_table(
        "sm_versions",
        sa.Column("secret_arn", sa.String(2048), primary_key=True),
        sa.Column("version_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("stages", sa.JSON, nullable=False),
    )
    op.create_table(
        "ssm_parameters",
        sa.Column("name", sa.String(2048), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "ssm_versions",
        sa.Column("name", sa.String(2048), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("sealed", sa.LargeBinary),
        sa.Column("key_id", sa.String(256)),
        sa.Column("description", sa.String(1024)),
        sa.Column("allowed_pattern", sa.String(1024)),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("data_type", sa.String(128), nullable=False),
        sa.Column("last_modified_at", sa.Float, nullable=False),
    )
    op.create_table(
        "secret_tags",
        sa.Column("resource_arn", sa.String(2048), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("secret_tags", "ssm_versions", "ssm_parameters", "sm_versions", "sm_secrets"):
        op.drop_table(table)
