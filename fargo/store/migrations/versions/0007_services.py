"""ECS services: one row per service with its document (deployments, events, the scheduler's state).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("arn", sa.String(1024), primary_key=True),
        sa.Column("cluster_arn", sa.String(1024), nullable=False),
        sa.Column("service_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("launch_type", sa.String(32)),
        sa.Column("client_token", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("doc", sa.JSON, nullable=False),
    )
    op.create_index("ix_services_cluster_status", "services", ["cluster_arn", "status", "created_at"])
    # the scheduler reads a service's tasks by deployment id (startedBy)
    op.create_index("ix_tasks_cluster_started_by", "tasks", ["cluster_arn", "started_by"])


def downgrade() -> None:
    op.drop_index("ix_tasks_cluster_started_by", "tasks")
    op.drop_index("ix_services_cluster_status", "services")
    op.drop_table("services")
