"""The store's tables. Each row keeps the AWS-shaped document as JSON plus the columns we query by.

Keeping the document whole means a describe call is one read and one JSON dump, and the shape stays
exactly what the API returned when the resource was written.
"""
from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, MetaData, String, Table, UniqueConstraint

metadata = MetaData()

clusters = Table(
    "clusters", metadata,
    Column("arn", String(1024), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("status", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("doc", JSON, nullable=False),
)

task_definitions = Table(
    "task_definitions", metadata,
    Column("arn", String(1024), primary_key=True),
    Column("family", String(255), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("doc", JSON, nullable=False),
    UniqueConstraint("family", "revision", name="uq_task_definition_family_revision"),
)

tags = Table(
    "tags", metadata,
    Column("resource_arn", String(1024), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("position", Integer, nullable=False),
)

tasks = Table(
    "tasks", metadata,
    Column("arn", String(1024), primary_key=True),
    Column("task_id", String(64), nullable=False, unique=True),
    Column("cluster_arn", String(1024), nullable=False),
    Column("family", String(255), nullable=False),
    Column("started_by", String(128)),
    Column("desired_status", String(32), nullable=False),
    Column("last_status", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("stopped_at", Float),
    Column("client_token", String(64)),
    Column("doc", JSON, nullable=False),
    Index("ix_tasks_cluster_desired", "cluster_arn", "desired_status"),
)
