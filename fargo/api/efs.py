"""Amazon EFS as boto3 and the AWS CLI call it: botocore's "efs" model over REST-JSON.

The handlers are the control plane's (`fargo.control.efs.efs.Efs`); this module only serves them.
"""
from __future__ import annotations

from fargo.api.aws_service import AwsService
from fargo.api.protocols.rest_json import REST_JSON
from fargo.api.service_models import service_model
from fargo.control.efs.efs import Efs


class EfsApi:
    def __init__(self, efs: Efs) -> None:
        self.efs = efs

    def service(self) -> AwsService:
        return AwsService(service_model("efs"), REST_JSON, self.efs.handlers())
