"""Clusters, task definitions, tags and tasks.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("arn", sa.String(1024), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("doc", sa.JSON, nullable=False),
    )
    op.create_table(
        "task_definitions",
        sa.Column("arn", sa.String(1024), primary_key=True),
        sa.Column("family", sa.String(255), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.UniqueConstraint("family", "revision", name="uq_task_definition_family_revision"),
    )
    op.create_table(
        "tags",
        sa.Column("resource_arn", sa.String(1024), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("arn", sa.String(1024), primary_key=True),
        sa.Column("task_id", sa.String(64), nullable=False, unique=True),
        sa.Column("cluster_arn", sa.String(1024), nullable=False),
        sa.Column("family", sa.String(255), nullable=False),
        sa.Column("started_by", sa.String(128)),
        sa.Column("desired_status", sa.String(32), nullable=False),
        sa.Column("last_status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("stopped_at", sa.Float),
        sa.Column("client_token", sa.String(64)),
        sa.Column("doc", sa.JSON, nullable=False),
    )
    op.create_index("ix_tasks_cluster_desired", "tasks", ["cluster_arn", "desired_status"])


def downgrade() -> None:
    op.drop_table("tasks")
    op.drop_table("tags")
    op.drop_table("task_definitions")
    op.drop_table("clusters")
