"""EC2 networking in the store: VPCs, subnets, security groups and rules, task ENIs, EC2 tags.

Revision ID: 0003
Revises: 0002

The default VPC is not written here (its AZs follow the configured region): `Network.ensure_default()` seeds
it at start. Tasks that hold an address get their ENI row, so DescribeNetworkInterfaces and the
DependencyViolation checks see the ENIs of tasks started before this revision.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# What 0002-era tasks ran in: the built-in default VPC and its default group (fargo.config.DefaultNetwork).
_DEFAULT_VPC_ID = "vpc-fargo-default"
_DEFAULT_GROUP_ID = "sg-fargo-default"

_tasks = sa.table(
    "tasks",
    sa.column("arn", sa.String), sa.column("task_id", sa.String), sa.column("last_status", sa.String),
    sa.column("doc", sa.JSON),
)
_ip_allocations = sa.table("ip_allocations", sa.column("subnet_id", sa.String), sa.column("ip", sa.String),
                           sa.column("task_arn", sa.String))
_network_interfaces = sa.table(
    "network_interfaces",
    sa.column("eni_id", sa.String), sa.column("attachment_id", sa.String), sa.column("task_arn", sa.String),
    sa.column("subnet_id", sa.String), sa.column("vpc_id", sa.String), sa.column("availability_zone", sa.String),
    sa.column("ip", sa.String), sa.column("mac", sa.String), sa.column("private_dns_name", sa.String),
    sa.column("group_ids", sa.JSON), sa.column("assign_public_ip", sa.Boolean), sa.column("public_ip", sa.String),
    sa.column("attach_time", sa.Float),
)


def upgrade() -> None:
    op.create_table(
        "vpcs",
        sa.Column("vpc_id", sa.String(64), primary_key=True),
        sa.Column("cidr", sa.String(43), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("instance_tenancy", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "subnets",
        sa.Column("subnet_id", sa.String(64), primary_key=True),
        sa.Column("vpc_id", sa.String(64), nullable=False),
        sa.Column("cidr", sa.String(43), nullable=False),
        sa.Column("availability_zone", sa.String(64), nullable=False),
        sa.Column("default_for_az", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_subnets_vpc", "subnets", ["vpc_id"])
    op.create_table(
        "security_groups",
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("vpc_id", sa.String(64), nullable=False),
        sa.Column("group_name", sa.String(255), nullable=False),
        sa.Column("name_key", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("vpc_id", "name_key", name="uq_security_group_vpc_name"),
    )
    op.create_table(
        "security_group_rules",
        sa.Column("rule_id", sa.String(64), primary_key=True),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("is_egress", sa.Boolean, nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("from_port", sa.Integer, nullable=False),
        sa.Column("to_port", sa.Integer, nullable=False),
        sa.Column("peer_kind", sa.String(16), nullable=False),
        sa.Column("peer", sa.String(64), nullable=False),
        sa.Column("peer_owner", sa.String(32)),
        sa.Column("description", sa.String(255)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.UniqueConstraint("group_id", "is_egress", "protocol", "from_port", "to_port", "peer_kind", "peer",
                            name="uq_security_group_rule_identity"),
    )
    op.create_index("ix_security_group_rules_peer", "security_group_rules", ["peer_kind", "peer"])
    op.create_table(
        "network_interfaces",
        sa.Column("eni_id", sa.String(64), primary_key=True),
        sa.Column("attachment_id", sa.String(64), nullable=False),
        sa.Column("task_arn", sa.String(1024), nullable=False),
        sa.Column("subnet_id", sa.String(64), nullable=False),
        sa.Column("vpc_id", sa.String(64), nullable=False),
        sa.Column("availability_zone", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("mac", sa.String(17), nullable=False),
        sa.Column("private_dns_name", sa.String(255), nullable=False),
        sa.Column("group_ids", sa.JSON, nullable=False),
        sa.Column("assign_public_ip", sa.Boolean, nullable=False),
        sa.Column("public_ip", sa.String(45)),
        sa.Column("attach_time", sa.Float, nullable=False),
    )
    op.create_index("ix_network_interfaces_task", "network_interfaces", ["task_arn"])
    op.create_index("ix_network_interfaces_subnet", "network_interfaces", ["subnet_id"])
    op.create_index("ix_network_interfaces_vpc", "network_interfaces", ["vpc_id"])
    op.create_table(
        "ec2_tags",
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_ec2_tags_type", "ec2_tags", ["resource_type"])
    op.create_table(
        "seeded_defaults",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("seeded_at", sa.Float, nullable=False),
    )

    # The ENIs of tasks that hold an address now (the same rule as 0002's ip_allocations).
    conn = op.get_bind()
    rows = conn.execute(sa.select(_tasks.c.arn, _tasks.c.task_id, _tasks.c.doc)
                        .join(_ip_allocations, _ip_allocations.c.task_arn == _tasks.c.arn)).all()
    for arn, task_id, doc in rows:
        private = doc.get("_fargo") or {}
        if not (private.get("attachmentId") and private.get("mac")):
            continue
        conn.execute(sa.insert(_network_interfaces).values(
            eni_id="eni-" + task_id[:17],  # as fargo.control.task_assignments.eni_id_of names it
            attachment_id=private["attachmentId"], task_arn=arn, subnet_id=private["subnetId"],
            vpc_id=private.get("vpcId") or _DEFAULT_VPC_ID,
            availability_zone=private.get("availabilityZone") or doc.get("availabilityZone") or "",
            ip=private["ip"], mac=private["mac"], private_dns_name=private.get("privateDnsName") or "",
            group_ids=list(private.get("securityGroups") or [_DEFAULT_GROUP_ID]),
            assign_public_ip=bool(private.get("assignPublicIp", False)), public_ip=None,
            attach_time=float(doc.get("createdAt") or 0.0)))


def downgrade() -> None:
    for table in ("seeded_defaults", "ec2_tags", "network_interfaces", "security_group_rules", "security_groups",
                  "subnets", "vpcs"):
        op.drop_table(table)
