"""Amazon ECS on the edge port: botocore's "ecs" model over AWS JSON 1.1, and its handlers.

Each handler takes the validated request and returns the response members.
"""
from __future__ import annotations

from typing import Any

from fargo.api.aws_service import AwsService, Handler
from fargo.api.encoded_tasks import EncodedTasks
from fargo.api.protocols.json11 import AWS_JSON_1_1
from fargo.api.service_models import service_model
from fargo.arns import parse_ecs_arn
from fargo.control.capacity_providers import describe_capacity_providers
from fargo.control.clusters import Clusters
from fargo.control.context import ControlContext
from fargo.control.pagination import next_token, page_bounds
from fargo.control.task_definitions.registry import TaskDefinitionRegistry
from fargo.errors import InvalidParameterException, ResourceNotFoundException

_TAGS_PER_RESOURCE = 50


class EcsApi:
    def __init__(self, ctx: ControlContext, tasks: Any | None = None, services: Any | None = None) -> None:
        self.ctx = ctx
        self.services = services  # fargo.control.services.services.Services, with tasks
        self.clusters = Clusters(ctx)
        self.task_definitions = TaskDefinitionRegistry(ctx)
        self.tasks = tasks  # fargo.control.tasks.Tasks once the agent side is wired in

    def service(self) -> AwsService:
        handlers: dict[str, Handler] = {
            "CreateCluster": self.create_cluster,
            "DeleteCluster": self.delete_cluster,
            "DescribeClusters": self.describe_clusters,
            "ListClusters": self.list_clusters,
            "UpdateCluster": self.update_cluster,
            "UpdateClusterSettings": self.update_cluster_settings,
            "PutClusterCapacityProviders": self.put_cluster_capacity_providers,
            "DescribeCapacityProviders": self.describe_capacity_providers,
            "PutAccountSetting": self.put_account_setting,
            "PutAccountSettingDefault": self.put_account_setting_default,
            "ListAccountSettings": self.list_account_settings,
            "DeleteAccountSetting": self.delete_account_setting,
            "RegisterTaskDefinition": self.register_task_definition,
            "DeregisterTaskDefinition": self.deregister_task_definition,
            "DeleteTaskDefinitions": self.delete_task_definitions,
            "DescribeTaskDefinition": self.describe_task_definition,
            "ListTaskDefinitions": self.list_task_definitions,
            "ListTaskDefinitionFamilies": self.list_task_definition_families,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }
        model = service_model("ecs")
        if self.tasks is not None:
            handlers.update(self.tasks.handlers())
            handlers["DescribeTasks"] = self._describe_tasks_encoded(handlers["DescribeTasks"],
                                                                     EncodedTasks(model.shape_for("Task")))
        if self.services is not None:
            handlers.update(self.services.handlers())
        return AwsService(model, AWS_JSON_1_1, handlers)

    @staticmethod
    def _describe_tasks_encoded(describe: Handler, tasks: EncodedTasks) -> Handler:
        async def describe_tasks(p: dict) -> dict:
            return tasks.describe_tasks(await describe(p), "TAGS" in (p.get("include") or []))
        return describe_tasks

    # --- clusters -------------------------------------------------------------------------------

    async def create_cluster(self, p: dict) -> dict:
        _check_tags(p.get("tags") or [])
        return {"cluster": self.clusters.create(p.get("clusterName"), p.get("settings"), p.get("tags"), p)}

    async def update_cluster(self, p: dict) -> dict:
        return {"cluster": self.clusters.update(p)}

    async def update_cluster_settings(self, p: dict) -> dict:
        return {"cluster": self.clusters.update_settings(p)}

    async def put_cluster_capacity_providers(self, p: dict) -> dict:
        return {"cluster": self.clusters.put_capacity_providers(p)}

    async def describe_capacity_providers(self, p: dict) -> dict:
        associated = None
        if p.get("cluster"):
            associated = self.clusters.get_active(p["cluster"]).get("capacityProviders") or []
        return describe_capacity_providers(self.ctx.arns, p, associated)

    # --- account settings -----------------------------------------------------------------------

    async def put_account_setting(self, p: dict) -> dict:
        return self.clusters.account_settings.put(p)

    async def put_account_setting_default(self, p: dict) -> dict:
        return self.clusters.account_settings.put_default(p)

    async def list_account_settings(self, p: dict) -> dict:
        return self.clusters.account_settings.list(p)

    async def delete_account_setting(self, p: dict) -> dict:
        return self.clusters.account_settings.delete(p)

    async def delete_cluster(self, p: dict) -> dict:
        return {"cluster": self.clusters.delete(p["cluster"])}

    async def describe_clusters(self, p: dict) -> dict:
        return self.clusters.describe(p.get("clusters"), p.get("include") or [])

    async def list_clusters(self, p: dict) -> dict:
        offset, limit = page_bounds(p)
        arns = self.clusters.list_arns(offset, limit + 1)
        return {"clusterArns": arns[:limit], "nextToken": next_token(offset, limit, len(arns))}

    # --- task definitions -----------------------------------------------------------------------

    async def register_task_definition(self, p: dict) -> dict:
        _check_tags(p.get("tags") or [])
        return self.task_definitions.register(p)

    async def deregister_task_definition(self, p: dict) -> dict:
        return self.task_definitions.deregister(p["taskDefinition"])

    async def delete_task_definitions(self, p: dict) -> dict:
        return self.task_definitions.delete(p["taskDefinitions"])

    async def describe_task_definition(self, p: dict) -> dict:
        return self.task_definitions.describe(p["taskDefinition"], p.get("include") or [])

    async def list_task_definitions(self, p: dict) -> dict:
        offset, limit = page_bounds(p)
        arns = self.task_definitions.list_arns(p.get("familyPrefix"), p.get("status") or "ACTIVE",
                                               p.get("sort") == "DESC", offset, limit + 1)
        return {"taskDefinitionArns": arns[:limit], "nextToken": next_token(offset, limit, len(arns))}

    async def list_task_definition_families(self, p: dict) -> dict:
        offset, limit = page_bounds(p)
        families = self.task_definitions.list_families(p.get("familyPrefix"), p.get("status") or "ACTIVE",
                                                       offset, limit + 1)
        return {"families": families[:limit], "nextToken": next_token(offset, limit, len(families))}

    # --- tags -----------------------------------------------------------------------------------

    def _existing_resource(self, arn: str) -> str:
        parsed = parse_ecs_arn(arn)
        if parsed is None:
            raise InvalidParameterException("Invalid resource ARN: " + arn)
        store = self.ctx.store
        found = False
        if parsed.kind == "cluster":
            doc = store.get_cluster(parsed.resource)
            found = doc is not None and doc["status"] == "ACTIVE"
        elif parsed.kind == "task-definition":
            family, _, rev = parsed.resource.partition(":")
            found = rev.isdigit() and store.get_task_definition(family, int(rev)) is not None
        elif parsed.kind == "task":
            found = store.get_task(parsed.resource.rsplit("/", 1)[-1]) is not None
        elif parsed.kind == "service" and self.services is not None:
            found = self.services.exists(arn)
        else:
            raise InvalidParameterException(f"Tagging is not supported for resource type '{parsed.kind}'.")
        if not found:
            raise ResourceNotFoundException("The specified resource could not be found.")
        return arn

    async def tag_resource(self, p: dict) -> dict:
        arn = self._existing_resource(p["resourceArn"])
        _check_tags(p["tags"])
        existing = {t["key"] for t in self.ctx.store.get_tags(arn)}
        if len(existing | {t["key"] for t in p["tags"]}) > _TAGS_PER_RESOURCE:
            raise InvalidParameterException(f"A resource can have at most {_TAGS_PER_RESOURCE} tags.")
        self.ctx.store.put_tags(arn, p["tags"])
        return {}

    async def untag_resource(self, p: dict) -> dict:
        arn = self._existing_resource(p["resourceArn"])
        self.ctx.store.delete_tags(arn, p["tagKeys"])
        return {}

    async def list_tags_for_resource(self, p: dict) -> dict:
        arn = self._existing_resource(p["resourceArn"])
        return {"tags": self.ctx.store.get_tags(arn)}


def _check_tags(tags: list[dict]) -> None:
    if len(tags) > _TAGS_PER_RESOURCE:
        raise InvalidParameterException(f"A resource can have at most {_TAGS_PER_RESOURCE} tags.")
    for tag in tags:
        if "key" not in tag:
            raise InvalidParameterException("Tag keys must not be empty.")
        if tag["key"].lower().startswith("aws:"):
            raise InvalidParameterException("Tag keys may not begin with the reserved prefix 'aws:'.")
