"""The store's table of ECS services: one row per service ARN (a re-created INACTIVE name takes its row).

The row keeps the AWS-shaped document (with the scheduler's private part) plus the columns queried by;
`version` is bumped by every write, so the API and the scheduler never overwrite each other's change.
"""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, String, Table

from fargo.store.schema import metadata, tasks

services = Table(
    "services", metadata,
    Column("arn", String(1024), primary_key=True),
    Column("cluster_arn", String(1024), nullable=False),
    Column("service_name", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("launch_type", String(32)),
    Column("client_token", String(64)),
    Column("created_at", Float, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("doc", JSON, nullable=False),
    Index("ix_services_cluster_status", "cluster_arn", "status", "created_at"),
)

# The scheduler reads a service's tasks by deployment id (their startedBy); the index lives on `tasks`.
Index("ix_tasks_cluster_started_by", tasks.c.cluster_arn, tasks.c.started_by)
