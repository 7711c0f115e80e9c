"""containerd's gRPC messages, compiled in-process from the .proto files beside this module.

grpcio-tools parses them at import time, so no generated _pb2 code is committed or has to match the
protobuf runtime. Service paths are written out where they are called (the service modules); these files hold
messages only.
"""
from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import grpc

# grpcio-tools finds .proto files (and their imports) through sys.path; an editable install may not
# put the project root there, so add it while loading.
_ROOT = str(Path(__file__).resolve().parents[3])


def _load(name: str) -> ModuleType:
    added = _ROOT not in sys.path
    if added:
        sys.path.insert(0, _ROOT)
    try:
        return grpc.protos(f"fargo/runtime/protos/{name}.proto")  # type: ignore[no-any-return]
    finally:
        if added:
            sys.path.remove(_ROOT)


types_pb2 = _load("types")
version_pb2 = _load("version")
containers_pb2 = _load("containers")
tasks_pb2 = _load("tasks")
snapshots_pb2 = _load("snapshots")
content_pb2 = _load("content")
images_pb2 = _load("images")
diff_pb2 = _load("diff")
leases_pb2 = _load("leases")
events_pb2 = _load("events")
runc_options_pb2 = _load("runc_options")
cgroups_v1_pb2 = _load("cgroups_v1")
