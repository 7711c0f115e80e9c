"""ECR's tables on the shared metadata: repositories, the images pushed to them, image tags, resource tags.

An image is one manifest (by digest) in one repository; its tags are rows of `ecr_image_tags`, a tag naming
at most one image of its repository. The image's bytes are in the registry's storage, not here.
"""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, Index, Integer, String, Table, Text

from fargo.store.schema import metadata

ecr_repositories = Table(
    "ecr_repositories", metadata,
    Column("name", String(256), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("image_tag_mutability", String(32), nullable=False),
    Column("mutability_exclusions", JSON),  # imageTagMutabilityExclusionFilters as given
    Column("scan_on_push", Boolean, nullable=False),
    Column("encryption_type", String(16), nullable=False),
    Column("kms_key", String(2048)),
)

ecr_images = Table(
    "ecr_images", metadata,
    Column("repository_name", String(256), primary_key=True),
    Column("image_digest", String(100), primary_key=True),
    Column("manifest", Text, nullable=False),
    Column("manifest_media_type", String(255), nullable=False),
    Column("artifact_media_type", String(255)),
    Column("size_in_bytes", BigInteger, nullable=False),
    Column("pushed_at", Float, nullable=False),
)

ecr_image_tags = Table(
    "ecr_image_tags", metadata,
    Column("repository_name", String(256), primary_key=True),
    Column("tag", String(300), primary_key=True),
    Column("image_digest", String(100), nullable=False),
    Column("tagged_at", Float, nullable=False),
    Index("ix_ecr_image_tags_digest", "repository_name", "image_digest"),
)

ecr_tags = Table(
    "ecr_tags", metadata,
    Column("repository_name", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("position", Integer, nullable=False),
)
