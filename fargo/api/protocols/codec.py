"""What an AWS wire protocol is to Fargo: a request in, (operation, params) out, a result or error back.

A codec knows nothing of any one service; it is handed the services that speak it and picks by the
addressing its protocol uses (a target header, a credential scope, a path).
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.model import OperationModel, ServiceModel

from fargo.errors import AwsError

if TYPE_CHECKING:
    from fargo.api.aws_service import AwsService

# SigV4: "Credential=<key>/<date>/<region>/<service>/aws4_request"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]*/[^/,\s]*/[^/,\s]*/([^/,\s]+)/aws4_request")


@dataclass(frozen=True)
class WireRequest:
    """One HTTP request on the edge port, as plain data (no web framework types)."""

    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    query_string: str = ""
    # The body passed the size limit and was not read (`body` is then empty); the codec words the 413.
    too_large: bool = False

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").partition(";")[0].strip().lower()

    @property
    def signed_for(self) -> str | None:
        """The service a SigV4 `Authorization` header names in its credential scope, if any."""
        found = _CREDENTIAL_SCOPE.search(self.header("authorization") or "")
        return found.group(1) if found else None


@dataclass(frozen=True)
class WireResponse:
    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """A codec's claim on a request. `exact`: the protocol's own addressing names `service`;
    otherwise the request only looks like this protocol (`service` may then be None: none of ours)."""

    service: AwsService | None
    exact: bool


@dataclass(frozen=True)
class Call:
    service: AwsService
    operation: OperationModel
    params: dict[str, Any]


class Codec(ABC):
    """One AWS protocol. Subclasses set `protocol` to botocore's name for it (`metadata.protocols`)."""

    protocol: ClassVar[str]

    def speaks_for(self, model: ServiceModel) -> bool:
        """Can this codec carry `model`'s operations? Asked once, when a service is declared."""
        return self.protocol in (model.metadata.get("protocols") or [model.metadata.get("protocol")])

    @abstractmethod
    def route(self, request: WireRequest, services: Sequence[AwsService]) -> Route | None:
        """Claim `request` for one of `services` (all of which speak this codec), or return None."""

    @abstractmethod
    def decode(self, request: WireRequest, service: AwsService | None) -> Call:
        """The operation and its parameters, checked against the model; raises AwsError as the protocol words it."""

    @abstractmethod
    def encode_result(self, call: Call, result: dict[str, Any], request_id: str) -> WireResponse:
        """A handler's result (members of the operation's output shape) on the wire."""

    @abstractmethod
    def encode_error(self, error: AwsError, request_id: str) -> WireResponse:
        """An AWS error on the wire, with `error.status` as the HTTP status."""
