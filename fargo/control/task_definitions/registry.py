"""Task definition families and revisions: register, describe, list, deregister, delete."""
from __future__ import annotations

from fargo import clock
from fargo.errors import ClientException, InvalidParameterException
from fargo.control.context import ControlContext
from fargo.control.task_definitions.registration import (parse_task_definition_reference,
                                            register_task_definition_document)

_REGISTERED_BY = "arn:aws:iam::{account}:root"


class TaskDefinitionRegistry:
    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx

    def register(self, request: dict) -> dict:
        store, cfg = self.ctx.store, self.ctx.config
        tags = request.get("tags") or []
        for _attempt in range(5):  # another replica may take the same revision: take the next one
            revision = store.latest_revision(request["family"]) + 1
            doc = register_task_definition_document(
                request, family_revision=revision, account_id=cfg.account_id, region=cfg.region,
                registered_at=clock.now(), registered_by=_REGISTERED_BY.format(account=cfg.account_id))
            if store.insert_task_definition(doc):
                if tags:
                    store.put_tags(doc["taskDefinitionArn"], tags)
                return {"taskDefinition": doc, "tags": store.get_tags(doc["taskDefinitionArn"])}
        raise ClientException("Too many concurrent registrations of this family; try again.")

    def find(self, ref: str) -> dict | None:
        family, revision = parse_task_definition_reference(ref)
        return self.ctx.store.get_task_definition(family, revision)

    def describe(self, ref: str, include: list[str]) -> dict:
        doc = self.find(ref)
        if doc is None:
            raise ClientException("Unable to describe task definition.")
        out: dict = {"taskDefinition": doc}
        if "TAGS" in include:
            out["tags"] = self.ctx.store.get_tags(doc["taskDefinitionArn"])
        return out

    def deregister(self, ref: str) -> dict:
        family, revision = parse_task_definition_reference(ref)
        if revision is None:  # deregistering needs family:revision or an ARN, never a bare family
            raise ClientException(f"Invalid revision number. Number: {ref.rsplit(':', 1)[-1]}")
        doc = self.ctx.store.get_task_definition(family, revision)
        if doc is None:
            raise ClientException("The specified task definition does not exist.")
        if doc["status"] == "ACTIVE":
            doc = dict(doc, status="INACTIVE", deregisteredAt=clock.now())
            self.ctx.store.update_task_definition(doc)
        return {"taskDefinition": doc}

    def delete(self, refs: list[str]) -> dict:
        if not 1 <= len(refs) <= 10:
            raise InvalidParameterException("taskDefinitions must contain between 1 and 10 entries.")
        done, failures = [], []
        for ref in refs:
            try:
                family, revision = parse_task_definition_reference(ref)
            except ClientException as e:
                failures.append({"arn": ref, "reason": "INVALID_PARAMETER", "detail": e.message})
                continue
            doc = self.ctx.store.get_task_definition(family, revision) if revision is not None else None
            if doc is None:
                failures.append({"arn": ref, "reason": "TASK_DEFINITION_NOT_FOUND",
                                 "detail": "The specified task definition does not exist."})
                continue
            if doc["status"] == "ACTIVE":
                failures.append({"arn": doc["taskDefinitionArn"], "reason": "The specified task definition is "
                                 "still in ACTIVE status. Please deregister the target and try again."})
                continue
            if doc["status"] == "INACTIVE":
                doc = dict(doc, status="DELETE_IN_PROGRESS", deleteRequestedAt=clock.now())
                self.ctx.store.update_task_definition(doc)
            done.append(doc)
        return {"taskDefinitions": done, "failures": failures}

    def list_arns(self, family: str | None, status: str, descending: bool, offset: int, limit: int) -> list[str]:
        return self.ctx.store.list_task_definition_arns(family, status, descending, offset, limit)

    def list_families(self, prefix: str | None, status: str, offset: int, limit: int) -> list[str]:
        return self.ctx.store.list_task_definition_families(prefix, status, offset, limit)
