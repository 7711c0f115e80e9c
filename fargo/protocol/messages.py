"""The messages between control plane and agent: desired state goes down, known state comes up.

    control plane ── TaskAssignment (generation, desiredStatus, definition, ENI plan) ──► agent
    control plane ◄── TaskReport (seq, knownStatus, containers, attachment, reasons) ─── agent

Every message is a plain dataclass of JSON values (`to_json` / `from_json`), so that the in-process link of
`fargo up` and the HTTP link of a remote agent carry exactly the same thing. A report is a whole snapshot
of what the agent knows of one task, numbered by a per-task `seq`: the control plane applies a report only
when its seq is newer than the last one it applied, so a replayed or late report is harmless.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

DESIRED_RUNNING = "RUNNING"
DESIRED_STOPPED = "STOPPED"


@dataclass(frozen=True)
class EniPlan:
    """The task ENI the control plane chose: subnet, address and MAC are allocated before the agent sees it."""

    attachment_id: str
    eni_id: str
    subnet_id: str
    subnet_cidr: str
    availability_zone: str
    ip: str
    mac: str
    private_dns_name: str
    security_groups: list[str] = field(default_factory=list)
    assign_public_ip: bool = False
    vpc_id: str = ""
    vpc_cidr: str = ""


@dataclass(frozen=True)
class AccessPointPlan:
    """An EFS access point as the agent applies it: the directory it roots mounts at, who it makes every
    caller, and how that directory is made when it is missing (no CreationInfo: the mount fails)."""

    access_point_id: str
    path: str  # "/" or "/a/b", inside the file system
    posix_uid: int | None = None
    posix_gid: int | None = None
    secondary_gids: list[int] = field(default_factory=list)
    creation_uid: int | None = None
    creation_gid: int | None = None
    creation_permissions: str | None = None  # octal text, "755" or "0755"


@dataclass(frozen=True)
class EfsVolumePlan:
    """One efsVolumeConfiguration volume of a task, resolved by the control plane at RunTask.

    `failure` is the complete stoppedReason when the control plane already knows the mount cannot work
    (no such file system or access point, no mount target in the task's AZ); `blocked` says the security
    groups of the task and of the mount target do not let NFS (TCP 2049) through, so the mount times out.
    """

    volume_name: str
    file_system_id: str
    root_directory: str = "/"  # rootDirectory (without an access point)
    access_point: AccessPointPlan | None = None
    transit_encryption: bool = False
    iam: bool = False
    mount_target_id: str | None = None
    mount_target_ip: str | None = None
    blocked: bool = False
    failure: str | None = None


@dataclass(frozen=True)
class RulePolicy:
    """One security group rule, as the host enforces it.

    `protocol` is "tcp", "udp", "icmp", "-1" (everything) or another IP protocol number as a string. Ports are
    inclusive; -1/-1 means all ports (for icmp: from_port is the ICMP type, to_port the code, -1 = any).
    The peer is a CIDR or the members of a group (`peer_group`); exactly one of the two is set.
    """

    protocol: str
    from_port: int = -1
    to_port: int = -1
    cidr: str | None = None
    peer_group: str | None = None


@dataclass(frozen=True)
class GroupPolicy:
    """A security group: its rules and the private IPs of the ENIs (in its VPC) that are members of it."""

    group_id: str
    ingress: list[RulePolicy] = field(default_factory=list)
    egress: list[RulePolicy] = field(default_factory=list)
    member_ips: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VpcPolicy:
    """What an agent needs of a VPC: its CIDR and every security group of it that a live ENI uses or that
    such a group references."""

    vpc_id: str
    cidr: str
    groups: list[GroupPolicy] = field(default_factory=list)


@dataclass(frozen=True)
class TaskAssignment:
    """A task as the control plane wants it. `generation` grows with every change the control plane makes."""

    task_arn: str
    cluster_arn: str
    generation: int
    desired_status: str
    platform_version: str
    # The task definition as registered (an immutable snapshot: later revisions do not change a task).
    task_definition: dict[str, Any]
    # RunTask's overrides as ECS echoes them (containerOverrides by list, cpu, memory, ...).
    overrides: dict[str, Any]
    cpu_units: int
    memory_mib: int
    eni: EniPlan
    created_at: float
    ephemeral_storage_gib: int | None = None
    # Set when the control plane raised desiredStatus to STOPPED (StopTask, a service scaling in).
    stop_code: str | None = None
    stopped_reason: str | None = None
    # By container name, as DescribeTasks shows them (the metadata endpoint's ContainerARN).
    container_arns: dict[str, str] = field(default_factory=dict)
    # The task's efsVolumeConfiguration volumes, resolved (file system, access point, mount target).
    efs_volumes: list[EfsVolumePlan] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return task_id_of(self.task_arn)


@dataclass(frozen=True)
class ContainerReport:
    name: str
    runtime_id: str
    last_status: str  # PENDING, RUNNING or STOPPED, as ECS reports containers
    exit_code: int | None = None
    reason: str | None = None
    health_status: str = "UNKNOWN"
    image_digest: str | None = None


@dataclass(frozen=True)
class AttachmentReport:
    attachment_id: str
    status: str  # PRECREATED, ATTACHING, ATTACHED, DETACHING, DELETED, FAILED
    details: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class TaskReport:
    """All the agent knows of one task, at one moment. `seq` grows by one with every report of the task."""

    task_arn: str
    seq: int
    known_status: str
    containers: list[ContainerReport]
    attachment: AttachmentReport | None = None
    health_status: str = "UNKNOWN"
    # The agent raises desired status itself when the task must stop (an essential container exited, it
    # cannot start); the first stop code and reason given, by either side, is the one a task keeps.
    desired_status: str = DESIRED_RUNNING
    stop_code: str | None = None
    stopped_reason: str | None = None
    connectivity: str | None = None
    connectivity_at: float | None = None
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    execution_stopped_at: float | None = None
    stopped_at: float | None = None


@dataclass(frozen=True)
class AgentHello:
    """What an agent says when it (re)connects: who it is and what it can serve."""

    agent_id: str
    availability_zones: list[str]
    version: str
    cpu_units: int = 0
    memory_mib: int = 0


@dataclass(frozen=True)
class Lease:
    agent_id: str
    ttl_seconds: float


@dataclass(frozen=True)
class AssignmentBatch:
    """Assignments whose generation is above the `since` asked for; `generation` is the next `since` to ask.

    `full` says the batch is the whole desired set of the agent (asked with since=None): a local task absent
    from a full batch is one the control plane no longer wants run.
    """

    generation: int
    assignments: list[TaskAssignment]
    full: bool = False
    # The security-group policy of every VPC the agent has live tasks in, whole each time: the agent applies
    # one that differs from what it holds (a rule change bumps the generation, so it arrives within a poll).
    networks: list[VpcPolicy] = field(default_factory=list)


@dataclass(frozen=True)
class ReportAck:
    """For each task, the highest seq the control plane holds (applied now or before): those are done."""

    acked: dict[str, int]


def task_id_of(task_arn: str) -> str:
    return task_arn.rsplit("/", 1)[-1]


# --- JSON -----------------------------------------------------------------------------------------------

def to_json(message: Any) -> Any:
    """A message (or list or dict of them) as JSON values; field names stay as they are in Python."""
    kind = type(message)
    if kind in _SCALARS:
        return message
    names = _field_names(kind)
    if names is not None:
        return {name: to_json(getattr(message, name)) for name in names}
    if isinstance(message, list | tuple):
        return [to_json(v) for v in message]
    if isinstance(message, dict):
        return {k: to_json(v) for k, v in message.items()}
    return message


_SCALARS = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _field_names(kind: type) -> tuple[str, ...] | None:
    """A message class's field names; None for anything else (asking dataclasses each time cost a report's
    encoding most of its time)."""
    return tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None


def from_json(cls: type[T], data: Any) -> T:
    """The message of type `cls` that `to_json` made `data` from."""
    return typing.cast(T, _decoder(cls)(data))


Decoder = typing.Callable[[Any], Any]


def _as_is(data: Any) -> Any:
    return data


@functools.cache
def _decoder(tp: Any) -> Decoder:
    """How to decode JSON values into `tp`, worked out once per type (asking `typing` about the type on every
    value was three quarters of decoding a report). None decodes to None whatever the type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decoder(inner[0]) if len(inner) == 1 else _as_is
    if origin is list:
        item = _decoder(typing.get_args(tp)[0])
        if item is _as_is:
            return lambda data: None if data is None else list(data)
        return lambda data: None if data is None else [item(v) for v in data]
    if origin is dict:
        value = _decoder(typing.get_args(tp)[1])
        if value is _as_is:
            return lambda data: None if data is None else dict(data)
        return lambda data: None if data is None else {k: value(v) for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        fields = {name: _decoder(hint) for name, hint in _field_types(tp).items()}

        def message(data: Any) -> Any:
            if data is None:
                return None
            return tp(**{k: fields[k](v) for k, v in data.items() if k in fields})
        return message
    return _as_is


@functools.cache
def _field_types(tp: type) -> dict[str, Any]:
    """A message class's fields and their types (resolving the hints costs more than decoding a report)."""
    hints = typing.get_type_hints(tp)
    return {f.name: hints[f.name] for f in dataclasses.fields(tp)}
