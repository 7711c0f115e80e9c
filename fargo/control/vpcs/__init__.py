"""EC2's VPC API on Fargo's control plane: VPCs, subnets, security groups and rules, task ENIs, tags.

`network.Network` is the one entry point: the EC2 handlers, the default VPC, and what RunTask and the agent
gateway ask of the network (`resolve_awsvpc`, `vpc_policies`).
"""
