"""Task networking on the host (awsvpc): a router namespace per VPC with its uplink and NAT (vpc_router,
host_nat), a routed veth "task ENI" per task (task_eni), security groups as nftables in each router
(security_groups, nft), the VPC guard routes, IPAM, eth1 counters, and the VPC resolver (dns_*, vpc_resolver).
`ipam` and `names` are pure; the rest talk netlink (pyroute2 in rtnl, hand-packed in rtnl_requests for the
ENI's hot path) or nftables (libnftables, in nft).
"""
