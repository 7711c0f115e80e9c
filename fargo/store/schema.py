"""The store's tables. Each row keeps the AWS-shaped document as JSON plus the columns we query by.

Keeping the document whole means a describe call is one read and one JSON dump, and the shape stays
exactly what the API returned when the resource was written.
"""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, MetaData, String, Table, UniqueConstraint

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
    # Desired state: the definition is read from task_definitions (immutable per revision), `generation`
    # is the store-wide counter's value at the control plane's last change of the task.
    Column("task_definition_arn", String(1024)),
    Column("agent_id", String(128)),
    Column("generation", BigInteger, nullable=False, server_default="0"),
    # Known state: the seq of the last TaskReport applied, so that a replayed report changes nothing.
    Column("report_seq", BigInteger, nullable=False, server_default="0"),
    Index("ix_tasks_cluster_desired", "cluster_arn", "desired_status"),
    Index("ix_tasks_agent_generation", "agent_id", "generation"),
)

# Store-wide counters, bumped with UPDATE ... RETURNING in the transaction of the change they count; the
# row lock orders the replicas' writers, so a reader that sees generation N also sees every one below it.
counters = Table(
    "counters", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
GENERATION_COUNTER = "generation"

# One row per address a task holds; the unique key is what stops two replicas from handing out one address.
ip_allocations = Table(
    "ip_allocations", metadata,
    Column("subnet_id", String(64), nullable=False),
    Column("ip", String(45), nullable=False),
    Column("task_arn", String(1024), nullable=False),
    UniqueConstraint("subnet_id", "ip", name="uq_ip_allocation_subnet_ip"),
    Index("ix_ip_allocations_task", "task_arn"),
)
