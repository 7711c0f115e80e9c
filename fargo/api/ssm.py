"""SSM Parameter Store as boto3 and the AWS CLI call it: botocore's "ssm" model over JSON 1.1 (the
parameter operations and their tags only).

The handlers are the control plane's (`fargo.control.secrets.secrets.Secrets`); this module only serves them.
"""
from __future__ import annotations

from fargo.api.aws_service import AwsService
from fargo.api.protocols.json11 import AWS_JSON_1_1
from fargo.api.service_models import service_model
from fargo.control.secrets.secrets import Secrets


class SsmApi:
    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets

    def service(self) -> AwsService:
        return AwsService(service_model("ssm"), AWS_JSON_1_1, self.secrets.ssm_handlers())
