"""The container runtime: Fargo's containerd (start/reuse), a typed gRPC client split by containerd service
behind the `client.Containerd` facade, and the OCI spec builder.

Nothing outside this package sees protobuf or gRPC: only `records` and `errors` (with `scrub_host_paths`).
"""
