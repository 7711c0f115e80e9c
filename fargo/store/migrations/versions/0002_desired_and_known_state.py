"""Desired and known state apart: task generations, the agent, the last report applied, IP allocations.

Revision ID: 0002
Revises: 0001

Task documents stop carrying their task definition (it is read by ARN from task_definitions); tasks that
exist get a generation each (in creation order), the embedded agent, and their addresses in ip_allocations.
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_EMBEDDED_AGENT = "embedded"

_tasks = sa.table(
    "tasks",
    sa.column("arn", sa.String), sa.column("last_status", sa.String), sa.column("created_at", sa.Float),
    sa.column("doc", sa.JSON), sa.column("task_definition_arn", sa.String), sa.column("agent_id", sa.String),
    sa.column("generation", sa.BigInteger),
)
_counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
_ip_allocations = sa.table("ip_allocations", sa.column("subnet_id", sa.String), sa.column("ip", sa.String),
                           sa.column("task_arn", sa.String))


def upgrade() -> None:
    op.add_column("tasks", sa.Column("task_definition_arn", sa.String(1024)))
    op.add_column("tasks", sa.Column("agent_id", sa.String(128)))
    op.add_column("tasks", sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("tasks", sa.Column("report_seq", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_tasks_agent_generation", "tasks", ["agent_id", "generation"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ip_allocations",
        sa.Column("subnet_id", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("task_arn", sa.String(1024), nullable=False),
        sa.UniqueConstraint("subnet_id", "ip", name="uq_ip_allocation_subnet_ip"),
    )
    op.create_index("ix_ip_allocations_task", "ip_allocations", ["task_arn"])

    conn = op.get_bind()
    rows = conn.execute(sa.select(_tasks.c.arn, _tasks.c.last_status, _tasks.c.doc)
                        .order_by(_tasks.c.created_at, _tasks.c.arn)).all()
    for generation, (arn, last_status, doc) in enumerate(rows, start=1):
        private = dict(doc.get("_fargo") or {})
        private.pop("taskDefinition", None)
        private.pop("containerOverrides", None)  # the task's `overrides` echo carries them
        private.setdefault("availabilityZone", doc.get("availabilityZone"))
        doc = dict(doc, _fargo=private)
        conn.execute(sa.update(_tasks).where(_tasks.c.arn == arn).values(
            doc=doc, task_definition_arn=doc.get("taskDefinitionArn"), agent_id=_EMBEDDED_AGENT,
            generation=generation))
        if last_status != "STOPPED" and private.get("subnetId") and private.get("ip"):
            conn.execute(sa.insert(_ip_allocations).values(subnet_id=private["subnetId"], ip=private["ip"],
                                                           task_arn=arn))
    conn.execute(sa.insert(_counters).values(name="generation", value=len(rows)))


def downgrade() -> None:
    # 0001's documents carried their definition: put it back from task_definitions
    conn = op.get_bind()
    definitions = sa.table("task_definitions", sa.column("arn", sa.String), sa.column("doc", sa.JSON))
    rows = conn.execute(sa.select(_tasks.c.arn, _tasks.c.doc, definitions.c.doc)
                        .join(definitions, definitions.c.arn == _tasks.c.task_definition_arn, isouter=True)).all()
    for arn, doc, definition in rows:
        private = dict(doc.get("_fargo") or {}, taskDefinition=definition)
        private["containerOverrides"] = {o["name"]: o for o in (doc.get("overrides") or {}).get("containerOverrides")
                                         or [] if "name" in o}
        conn.execute(sa.update(_tasks).where(_tasks.c.arn == arn).values(doc=dict(doc, _fargo=private)))
    op.drop_table("ip_allocations")
    op.drop_table("counters")
    op.drop_index("ix_tasks_agent_generation", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("report_seq")
        batch.drop_column("generation")
        batch.drop_column("agent_id")
        batch.drop_column("task_definition_arn")
