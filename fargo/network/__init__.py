"""Task networking on the host: per-task namespace and veth "task ENI", per-subnet bridges, VPC guard routes,
the metadata address, IPAM and eth1 counters. `ipam` and `names` are pure; the rest talk netlink (pyroute2).
"""
