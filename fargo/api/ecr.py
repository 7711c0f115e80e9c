"""Amazon ECR's API as boto3 and the AWS CLI call it: botocore's "ecr" model over AWS JSON 1.1
(`X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`).

The handlers are the control plane's (`fargo.control.ecr.ecr.Ecr`); this module only serves them. The images
themselves travel through `/v2/` (`fargo.api.registry_proxy`).
"""
from __future__ import annotations

from fargo.api.aws_service import AwsService
from fargo.api.protocols.json11 import AWS_JSON_1_1
from fargo.api.service_models import service_model
from fargo.control.ecr.ecr import Ecr


class EcrApi:
    def __init__(self, ecr: Ecr) -> None:
        self.ecr = ecr

    def service(self) -> AwsService:
        return AwsService(service_model("ecr"), AWS_JSON_1_1, self.ecr.handlers())
