"""ECR repositories, the images pushed to Fargo's registry, their tags, and repository tags (the images'
bytes live in the registry's storage).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ecr_repositories",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("image_tag_mutability", sa.String(32), nullable=False),
        sa.Column("mutability_exclusions", sa.JSON),
        sa.Column("scan_on_push", sa.Boolean, nullable=False),
        sa.Column("encryption_type", sa.String(16), nullable=False),
        sa.Column("kms_key", sa.String(2048)),
    )
    op.create_table(
        "ecr_images",
        sa.Column("repository_name", sa.String(256), primary_key=True),
        sa.Column("image_digest", sa.String(100), primary_key=True),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("manifest_media_type", sa.String(255), nullable=False),
        sa.Column("artifact_media_type", sa.String(255)),
        sa.Column("size_in_bytes", sa.BigInteger, nullable=False),
        sa.Column("pushed_at", sa.Float, nullable=False),
    )
    op.create_table(
        "ecr_image_tags",
        sa.Column("repository_name", sa.String(256), primary_key=True),
        sa.Column("tag", sa.String(300), primary_key=True),
        sa.Column("image_digest", sa.String(100), nullable=False),
        sa.Column("tagged_at", sa.Float, nullable=False),
    )
    op.create_index("ix_ecr_image_tags_digest", "ecr_image_tags", ["repository_name", "image_digest"])
    op.create_table(
        "ecr_tags",
        sa.Column("repository_name", sa.String(256), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_ecr_image_tags_digest", table_name="ecr_image_tags")
    for table in ("ecr_tags", "ecr_image_tags", "ecr_images", "ecr_repositories"):
        op.drop_table(table)
