"""The store's tables. Each row keeps the AWS-shaped document as JSON plus the columns we query by.

Keeping the document whole means a describe call is one read and one JSON dump, and the shape stays
exactly what the API returned when the resource was written.
"""
from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table,
                        UniqueConstraint)

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

# --- EC2 networking: VPCs, subnets, security groups and their rules, task ENIs, EC2 tags ------------------
# These rows are plain columns (no document): their AWS shapes are built by `fargo.control.vpcs`, and most of
# them change piece by piece (a rule at a time), which a whole document would make a read-modify-write.
vpcs = Table(
    "vpcs", metadata,
    Column("vpc_id", String(64), primary_key=True),
    Column("cidr", String(43), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("instance_tenancy", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
)

subnets = Table(
    "subnets", metadata,
    Column("subnet_id", String(64), primary_key=True),
    Column("vpc_id", String(64), nullable=False),
    Column("cidr", String(43), nullable=False),
    Column("availability_zone", String(64), nullable=False),
    Column("default_for_az", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_subnets_vpc", "vpc_id"),
)

# `name_key` is the name lower-cased: EC2 group names are unique per VPC regardless of case.
security_groups = Table(
    "security_groups", metadata,
    Column("group_id", String(64), primary_key=True),
    Column("vpc_id", String(64), nullable=False),
    Column("group_name", String(255), nullable=False),
    Column("name_key", String(255), nullable=False),
    Column("description", String(255), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("vpc_id", "name_key", name="uq_security_group_vpc_name"),
)

# One row per (protocol, ports, peer): the unique key is the rule's identity (never its description), so
# two replicas cannot both add one rule. `peer_kind` says what `peer` holds: a CIDR, a group id, a prefix list.
security_group_rules = Table(
    "security_group_rules", metadata,
    Column("rule_id", String(64), primary_key=True),
    Column("group_id", String(64), nullable=False),
    Column("is_egress", Boolean, nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("from_port", Integer, nullable=False),
    Column("to_port", Integer, nullable=False),
    Column("peer_kind", String(16), nullable=False),
    Column("peer", String(64), nullable=False),
    Column("peer_owner", String(32)),
    Column("description", String(255)),
    Column("created_at", Float, nullable=False),
    Column("position", Integer, nullable=False),  # the group's rules in the order they were added
    UniqueConstraint("group_id", "is_egress", "protocol", "from_port", "to_port", "peer_kind", "peer",
                     name="uq_security_group_rule_identity"),
    Index("ix_security_group_rules_peer", "peer_kind", "peer"),
)

# A requester-managed ENI lives exactly as long as its holder's address (ip_allocations): a task's (RunTask
# inserts both in one transaction, and releasing the address deletes the ENI) or an EFS mount target's.
# `task_arn` names the holder: a task's ARN, or the mount target's id (fsmt-...). `description` and
# `requester_id` are set for ENIs other than Fargate's (which describe themselves by their ECS attachment).
network_interfaces = Table(
    "network_interfaces", metadata,
    Column("eni_id", String(64), primary_key=True),
    Column("attachment_id", String(64), nullable=False),
    Column("task_arn", String(1024), nullable=False),
    Column("subnet_id", String(64), nullable=False),
    Column("vpc_id", String(64), nullable=False),
    Column("availability_zone", String(64), nullable=False),
    Column("ip", String(45), nullable=False),
    Column("mac", String(17), nullable=False),
    Column("private_dns_name", String(255), nullable=False),
    Column("group_ids", JSON, nullable=False),
    Column("assign_public_ip", Boolean, nullable=False),
    Column("public_ip", String(45)),
    Column("attach_time", Float, nullable=False),
    Column("description", String(255)),
    Column("requester_id", String(32)),
    Index("ix_network_interfaces_task", "task_arn"),
    Index("ix_network_interfaces_subnet", "subnet_id"),
    Index("ix_network_interfaces_vpc", "vpc_id"),
)

# EC2 tags are keyed by resource id (vpc-..., sg-...), not ARN, and DescribeTags lists them across resources.
ec2_tags = Table(
    "ec2_tags", metadata,
    Column("resource_id", String(64), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Column("position", Integer, nullable=False),
    Index("ix_ec2_tags_type", "resource_type"),
)

# Defaults this store was seeded with, once: a default VPC the user deleted stays deleted.
seeded_defaults = Table(
    "seeded_defaults", metadata,
    Column("name", String(64), primary_key=True),
    Column("seeded_at", Float, nullable=False),
)

# --- Amazon EFS: file systems, access points, mount targets (their ENIs are network_interfaces rows), tags --
# `life_cycle_state` moves creating -> available -> deleting; a deleting row goes once its directory is gone.
efs_file_systems = Table(
    "efs_file_systems", metadata,
    Column("file_system_id", String(64), primary_key=True),
    Column("creation_token", String(64), nullable=False, unique=True),
    Column("life_cycle_state", String(16), nullable=False),
    Column("performance_mode", String(32), nullable=False),
    Column("throughput_mode", String(32), nullable=False),
    Column("provisioned_throughput", Float),
    Column("encrypted", Boolean, nullable=False),
    Column("kms_key_id", String(2048)),
    Column("availability_zone", String(64)),  # One Zone file systems only
    Column("backup", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
)

efs_access_points = Table(
    "efs_access_points", metadata,
    Column("access_point_id", String(64), primary_key=True),
    Column("client_token", String(64), nullable=False, unique=True),
    Column("file_system_id", String(64), nullable=False),
    Column("posix_user", JSON),  # {"Uid", "Gid", "SecondaryGids"} as the API has it, or null
    Column("root_directory", JSON, nullable=False),  # {"Path", "CreationInfo"?}
    Column("life_cycle_state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_efs_access_points_file_system", "file_system_id"),
)

# One mount target per file system and AZ: the unique key stops two replicas from making a second one.
efs_mount_targets = Table(
    "efs_mount_targets", metadata,
    Column("mount_target_id", String(64), primary_key=True),
    Column("file_system_id", String(64), nullable=False),
    Column("subnet_id", String(64), nullable=False),
    Column("vpc_id", String(64), nullable=False),
    Column("availability_zone", String(64), nullable=False),
    Column("ip", String(45), nullable=False),
    Column("eni_id", String(64), nullable=False),
    Column("life_cycle_state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("file_system_id", "availability_zone", name="uq_efs_mount_target_zone"),
    Index("ix_efs_mount_targets_subnet", "subnet_id"),
)

# Tags of file systems and access points, by resource id (fs-... or fsap-...), in the order they were added.
efs_tags = Table(
    "efs_tags", metadata,
    Column("resource_id", String(64), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("position", Integer, nullable=False),
)
