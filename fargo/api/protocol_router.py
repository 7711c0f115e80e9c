"""Which service and codec answer a request: each codec claims requests for the services that speak it.

Knows no protocol itself; a new protocol is a codec module, a new service a service module.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from fargo.api.aws_service import AwsService
from fargo.api.protocols.codec import Codec, Route, WireRequest, WireResponse
from fargo.errors import AwsError, RequestEntityTooLarge, SerializationException, ServerException

log = logging.getLogger(__name__)

_TOO_LARGE = "Request body is too large."
_NO_PROTOCOL = "Missing X-Amz-Target header or Action parameter."


class ProtocolRouter:
    def __init__(self, services: Sequence[AwsService]) -> None:
        if not services:
            raise ValueError("an edge port needs at least one service")
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"a service is listed twice: {names}")
        # Codecs in the order their first service was listed; ties between claims go to the earlier one.
        self._codecs: dict[int, tuple[Codec, list[AwsService]]] = {}
        for service in services:
            self._codecs.setdefault(id(service.protocol), (service.protocol, []))[1].append(service)
        self.services = tuple(services)

    def route(self, request: WireRequest) -> tuple[Codec, Route] | None:
        """An exact claim (the protocol's addressing names a service) beats one on looks alone."""
        loose: tuple[Codec, Route] | None = None
        for codec, services in self._codecs.values():
            claim = codec.route(request, services)
            if claim is None:
                continue
            if claim.exact:
                return codec, claim
            loose = loose or (codec, claim)
        return loose

    async def answer(self, request: WireRequest) -> WireResponse | None:
        """The response; None when no codec claims the request and it is not posted to `/`."""
        request_id = str(uuid.uuid4())
        found = self.route(request)
        if found is None:
            if request.method != "POST" or request.path != "/":
                return None
            # Where JSON and query clients post: answer in the first service's protocol.
            codec = self.services[0].protocol
            error = RequestEntityTooLarge(_TOO_LARGE) if request.too_large else SerializationException(_NO_PROTOCOL)
            return codec.encode_error(error, request_id)
        codec, claim = found
        try:
            if request.too_large:
                raise RequestEntityTooLarge(_TOO_LARGE)
            call = codec.decode(request, claim.service)
            result = await call.service.handlers[call.operation.name](call.params)
            return codec.encode_result(call, result, request_id)
        except AwsError as e:
            return codec.encode_error(e, request_id)
        except Exception:  # a bug must still answer in AWS's shape, never with a traceback
            log.exception("unhandled error in a %s request to %s", codec.protocol,
                          claim.service.name if claim.service else "no service")
            return codec.encode_error(ServerException("An internal error occurred."), request_id)
