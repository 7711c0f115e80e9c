"""The only things control plane and agent share: task states, the container settings a definition means,
and the messages between them (`messages`, `control_plane`)."""
