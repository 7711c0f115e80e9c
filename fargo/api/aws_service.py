"""One AWS service as the edge port serves it: botocore's model, the protocol it speaks, its handlers.

Each service module (`ecs.py`, `ec2.py`, ...) builds one; `EdgeServer` routes by the protocol named here.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import OperationModel, ServiceModel

from fargo.api.protocols.codec import Codec

# A handler takes the request's members (as the input shape names them) and returns the output's members.
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, eq=False)
class AwsService:
    model: ServiceModel
    protocol: Codec
    handlers: Mapping[str, Handler]

    def __post_init__(self) -> None:
        # Both mistakes would otherwise surface only as odd answers to the first request.
        if not self.protocol.speaks_for(self.model):
            raise ValueError(f"{self.name} is not served over the {self.protocol.protocol!r} protocol")
        unknown = sorted(set(self.handlers) - set(self.model.operation_names))
        if unknown:
            raise ValueError(f"{self.name} has no operations named {', '.join(unknown)}")

    @property
    def name(self) -> str:
        """botocore's name for the service: "ecs", "ec2"."""
        return self.model.service_name

    @property
    def signing_name(self) -> str:
        """The service name SigV4 signs with ("ec2", "monitoring")."""
        return self.model.signing_name

    def operation(self, name: str) -> OperationModel | None:
        """The model of operation `name` if this service handles it, else None."""
        return self.model.operation_model(name) if name in self.handlers else None
