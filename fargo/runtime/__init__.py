"""The container runtime: Fargo's containerd (start/reuse), a typed gRPC client, and the OCI spec builder.

Nothing outside this package sees protobuf or gRPC; see `client.Containerd` and `errors`.
"""
