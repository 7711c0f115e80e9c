"""Task definitions on the control plane: the Fargate rules (`rules`, `fargate`, `platform`, `sizes`,
`references`) beside the messages they raise (`messages`), registration and the registry."""
