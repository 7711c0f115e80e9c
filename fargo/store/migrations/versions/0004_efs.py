"""Amazon EFS in the store: file systems, access points, mount targets, their tags; and ENIs that are not a
task's (an EFS mount target's) describe themselves with `description` and `requester_id`.

Revision ID: 0004
Revises: 0003

Existing ENI rows are all task ENIs: the new columns stay null for them.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("network_interfaces") as batch:
        batch.add_column(sa.Column("description", sa.String(255)))
        batch.add_column(sa.Column("requester_id", sa.String(32)))
    op.create_table(
        "efs_file_systems",
        sa.Column("file_system_id", sa.String(64), primary_key=True),
        sa.Column("creation_token", sa.String(64), nullable=False, unique=True),
        sa.Column("life_cycle_state", sa.String(16), nullable=False),
        sa.Column("performance_mode", sa.String(32), nullable=False),
        sa.Column("throughput_mode", sa.String(32), nullable=False),
        sa.Column("provisioned_throughput", sa.Float),
        sa.Column("encrypted", sa.Boolean, nullable=False),
        sa.Column("kms_key_id", sa.String(2048)),
        sa.Column("availability_zone", sa.String(64)),
        sa.Column("backup", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "efs_access_points",
        sa.Column("access_point_id", sa.String(64), primary_key=True),
        sa.Column("client_token", sa.String(64), nullable=False, unique=True),
        sa.Column("file_system_id", sa.String(64), nullable=False),
        sa.Column("posix_user", sa.JSON),
        sa.Column("root_directory", sa.JSON, nullable=False),
        sa.Column("life_cycle_state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_efs_access_points_file_system", "efs_access_points", ["file_system_id"])
    op.create_table(
        "efs_mount_targets",
        sa.Column("mount_target_id", sa.String(64), primary_key=True),
        sa.Column("file_system_id", sa.String(64), nullable=False),
        sa.Column("subnet_id", sa.String(64), nullable=False),
        sa.Column("vpc_id", sa.String(64), nullable=False),
        sa.Column("availability_zone", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("eni_id", sa.String(64), nullable=False),
        sa.Column("life_cycle_state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("file_system_id", "availability_zone", name="uq_efs_mount_target_zone"),
    )
    op.create_index("ix_efs_mount_targets_subnet", "efs_mount_targets", ["subnet_id"])
    op.create_table(
        "efs_tags",
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("efs_tags", "efs_mount_targets", "efs_access_points", "efs_file_systems"):
        op.drop_table(table)
    with op.batch_alter_table("network_interfaces") as batch:
        batch.drop_column("requester_id")
        batch.drop_column("description")
