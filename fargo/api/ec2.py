"""EC2's VPC API as boto3 and the AWS CLI call it: botocore's "ec2" model over EC2's query protocol.

The handlers are the control plane's (`fargo.control.vpcs.network.Network`); this module only serves them.
"""
from __future__ import annotations

from fargo.api.aws_service import AwsService
from fargo.api.protocols.ec2_query import EC2_QUERY
from fargo.api.service_models import service_model
from fargo.control.vpcs.network import Network


class Ec2Api:
    def __init__(self, network: Network) -> None:
        self.network = network

    def service(self) -> AwsService:
        return AwsService(service_model("ec2"), EC2_QUERY, self.network.handlers())
