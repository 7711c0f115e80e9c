"""containerd's event stream, narrowed to what the agent acts on: task exits and OOM kills in this namespace,
as Fargo's own event records (one TaskOomKilled per task life, exec exits left out).
"""
from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from fargo.runtime.grpc_channel import Channel, quote, timestamp
from fargo.runtime.protos import events_pb2
from fargo.runtime.records import RuntimeEvent, TaskExited, TaskOomKilled


class Events:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    async def subscribe(self) -> AsyncGenerator[RuntimeEvent, None]:
        # The namespace metadata does not scope events: the filter must name it.
        topic_filter = f'namespace=={quote(self._channel.namespace)},topic~="^/tasks/(create|exit|oom)$"'
        oom_reported: set[str] = set()  # the shim repeats TaskOOM for every cgroup notification
        stream = self._channel.stream(
            "events.v1.Events/Subscribe", events_pb2.SubscribeRequest(filters=[topic_filter]), events_pb2.Envelope
        )
        async with aclosing(stream) as envelopes:  # a consumer that stops early ends the call at once
            async for envelope in envelopes:
                if envelope.topic == "/tasks/create":
                    oom_reported.discard(events_pb2.TaskCreateEvent.FromString(envelope.event.value).container_id)
                elif envelope.topic == "/tasks/exit":
                    exited = events_pb2.TaskExitEvent.FromString(envelope.event.value)
                    if exited.id and exited.id != exited.container_id:
                        continue  # an exec'd process, not the task
                    yield TaskExited(exited.container_id, int(exited.exit_status), timestamp(exited.exited_at))
                elif envelope.topic == "/tasks/oom":
                    oom = events_pb2.TaskOomEvent.FromString(envelope.event.value)
                    if oom.container_id not in oom_reported:
                        oom_reported.add(oom.container_id)
                        yield TaskOomKilled(oom.container_id)
