"""EC2 resource ids and ARNs: `vpc-`, `subnet-`, `sg-`, `sgr-` plus 17 lowercase hex digits, as AWS makes today."""
from __future__ import annotations

import hashlib
import secrets

VPC = "vpc"
SUBNET = "subnet"
SECURITY_GROUP = "sg"
SECURITY_GROUP_RULE = "sgr"
NETWORK_INTERFACE = "eni"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def derived_id(prefix: str, source: str) -> str:
    """An id of something Fargo does not store (an ENI's attachment, a VPC's CIDR association): derived from
    its owner's id, so it is the same every time it is described."""
    return f"{prefix}-{hashlib.sha256(source.encode()).hexdigest()[:17]}"


def ec2_arn(region: str, account_id: str, kind: str, resource_id: str) -> str:
    """arn:aws:ec2:<region>:<account>:<kind>/<id>, e.g. kind "subnet" or "security-group"."""
    return f"arn:aws:ec2:{region}:{account_id}:{kind}/{resource_id}"


def ecs_attachment_arn(region: str, account_id: str, attachment_id: str) -> str:
    """The ECS attachment a Fargate task ENI describes itself with (its Description)."""
    return f"arn:aws:ecs:{region}:{account_id}:attachment/{attachment_id}"
