"""AWS Secrets Manager as boto3 and the AWS CLI call it: botocore's "secretsmanager" model over JSON 1.1.

The handlers are the control plane's (`fargo.control.secrets.secrets.Secrets`); this module only serves them.
"""
from __future__ import annotations

from fargo.api.aws_service import AwsService
from fargo.api.protocols.json11 import AWS_JSON_1_1
from fargo.api.service_models import service_model
from fargo.control.secrets.secrets import Secrets


class SecretsManagerApi:
    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets

    def service(self) -> AwsService:
        return AwsService(service_model("secretsmanager"), AWS_JSON_1_1, self.secrets.secrets_manager_handlers())
