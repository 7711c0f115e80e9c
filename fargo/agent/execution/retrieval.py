"""Fetching a task's execution resources as the Fargate agent does before it pulls: container secrets and
log-driver secretOptions (Secrets Manager: one GetSecretValue per secret, side by side; SSM: GetParameters of
at most 10 names per Region, WithDecryption), registry credentials from Secrets Manager, and ECR auth (kept
for the token's validity).

Values live only in memory: they go into the containers' environment and nowhere else.
"""
from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fargo import clock
from fargo.agent.execution.aws_calls import CallFailed, ServiceEndpoint, call
from fargo.agent.execution.secret_refs import (InvalidSecretReference, ParameterRef, SecretsManagerRef,
                                               parse_value_from)
from fargo.protocol import stop_reasons as reasons

_SSM_BATCH = 10  # GetParameters takes at most 10 names
_ECR_TOKEN_MARGIN_SECONDS = 3600.0  # a cached ECR token is replaced an hour before it expires


class RetrievalFailed(Exception):
    """One resource could not be had: `step` names what was being retrieved (stop_reasons' step names)."""

    def __init__(self, step: str, detail: str, attempts: int = 1, network: bool = False) -> None:
        super().__init__(detail)
        self.step, self.detail, self.attempts, self.network = step, detail, attempts, network


@dataclass(frozen=True)
class RegistryCredentials:
    username: str
    password: str


async def fetch_values(endpoint: ServiceEndpoint, value_froms: list[str]) -> dict[str, str]:
    """valueFrom -> value for every distinct reference; RetrievalFailed for the first that fails."""
    refs = {v: _parse(v, endpoint.region) for v in dict.fromkeys(value_froms)}
    by_region: dict[str, list[str]] = defaultdict(list)
    asm: dict[str, SecretsManagerRef] = {}
    for value_from, ref in refs.items():
        if isinstance(ref, ParameterRef):
            by_region[ref.region].append(ref.name)
        else:
            asm[value_from] = ref
    jobs: list[asyncio.Future[dict[str, str]]] = []
    for names in by_region.values():
        for start in range(0, len(names), _SSM_BATCH):
            jobs.append(asyncio.ensure_future(_parameters(endpoint, names[start:start + _SSM_BATCH])))
    for value_from, ref in asm.items():
        jobs.append(asyncio.ensure_future(_secret(endpoint, value_from, ref)))
    values: dict[str, str] = {}
    try:
        for done in await asyncio.gather(*jobs):
            values.update(done)
    finally:
        for job in jobs:
            job.cancel()
    return values


async def registry_credentials(endpoint: ServiceEndpoint, credentials_parameter: str) -> RegistryCredentials:
    """repositoryCredentials: a Secrets Manager secret holding {"username", "password"} (keys in any case)."""
    try:
        answer = await call(endpoint, "secretsmanager", "GetSecretValue", {"SecretId": credentials_parameter})
    except CallFailed as failed:
        raise RetrievalFailed(reasons.ASM_REGISTRY_AUTH,
                              reasons.asm_registry_auth_failed(credentials_parameter, failed.text),
                              failed.attempts, failed.network) from None
    try:
        document = json.loads(answer.get("SecretString") or "")
        fields = {str(k).lower(): v for k, v in document.items()}
    except (ValueError, AttributeError):
        raise RetrievalFailed(reasons.ASM_REGISTRY_AUTH, reasons.ASM_REGISTRY_AUTH_SCHEMA) from None
    for field in ("username", "password"):
        if not isinstance(fields.get(field), str) or not fields[field]:
            raise RetrievalFailed(reasons.ASM_REGISTRY_AUTH, reasons.asm_registry_auth_empty(field))
    return RegistryCredentials(fields["username"], fields["password"])


async def _ecr_authorization(endpoint: ServiceEndpoint) -> tuple[RegistryCredentials, float]:
    """ECR's GetAuthorizationToken (base64 of `AWS:<password>`), and when it expires (epoch seconds; 0: not said)."""
    try:
        answer = await call(endpoint, "ecr", "GetAuthorizationToken", {})
        data = answer["authorizationData"][0]
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        expires_at = float(data.get("expiresAt") or 0)
    except CallFailed as failed:
        raise RetrievalFailed(reasons.ECR_AUTH, failed.text, failed.attempts, failed.network) from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise RetrievalFailed(reasons.ECR_AUTH, "ecr auth: the authorization data is malformed") from None
    return RegistryCredentials(username, password), expires_at


class EcrAuthorization:
    """Fargo's ECR credentials, fetched once and kept while they have at least `margin` seconds left (a token
    is good for 12 hours): a task of an ECR image then pulls with no GetAuthorizationToken call of its own."""

    def __init__(self, margin: float = _ECR_TOKEN_MARGIN_SECONDS) -> None:
        self._margin = margin
        self._held: tuple[RegistryCredentials, float] | None = None

    async def credentials(self, endpoint: ServiceEndpoint) -> RegistryCredentials:
        if self._held is not None and self._held[1] - clock.now() > self._margin:
            return self._held[0]
        credentials, expires_at = await _ecr_authorization(endpoint)
        self._held = (credentials, expires_at) if expires_at else None
        return credentials


def _parse(value_from: str, region: str) -> ParameterRef | SecretsManagerRef:
    try:
        return parse_value_from(value_from, region)
    except InvalidSecretReference as e:
        raise RetrievalFailed(reasons.ASM_SECRET, str(e)) from None


async def _parameters(endpoint: ServiceEndpoint, names: list[str]) -> dict[str, str]:
    try:
        answer = await call(endpoint, "ssm", "GetParameters", {"Names": names, "WithDecryption": True})
    except CallFailed as failed:
        raise RetrievalFailed(reasons.SSM_SECRETS, failed.text, failed.attempts, failed.network) from None
    invalid = [str(n) for n in answer.get("InvalidParameters") or []]
    if invalid:
        raise RetrievalFailed(reasons.SSM_SECRETS, reasons.ssm_invalid_parameters(invalid))
    found = {p.get("Name"): str(p.get("Value", "")) for p in answer.get("Parameters") or []}
    found.update({p.get("ARN"): str(p.get("Value", "")) for p in answer.get("Parameters") or [] if p.get("ARN")})
    values: dict[str, str] = {}
    for name in names:
        value = found.get(name, found.get("/" + name) if not name.startswith(("/", "arn:")) else None)
        if value is None:
            raise RetrievalFailed(reasons.SSM_SECRETS, reasons.ssm_invalid_parameters([name]))
        values[name] = value
    return values


async def _secret(endpoint: ServiceEndpoint, value_from: str, ref: SecretsManagerRef) -> dict[str, str]:
    body: dict[str, Any] = {"SecretId": ref.secret_id}
    if ref.version_stage:
        body["VersionStage"] = ref.version_stage
    if ref.version_id:
        body["VersionId"] = ref.version_id
    try:
        answer = await call(endpoint, "secretsmanager", "GetSecretValue", body)
    except CallFailed as failed:
        raise RetrievalFailed(reasons.ASM_SECRET, reasons.asm_fetch_failed(ref.secret_id, failed.text),
                              failed.attempts, failed.network) from None
    value = str(answer.get("SecretString") or "")
    if ref.json_key:
        value = _json_key(value, ref.json_key)
    return {value_from: value}


def _json_key(secret: str, key: str) -> str:
    try:
        document = json.loads(secret)
    except ValueError:
        start = secret.lstrip()[:1] or " "
        raise RetrievalFailed(reasons.ASM_SECRET, f"invalid character '{start}' looking for beginning of value") \
            from None
    if not isinstance(document, dict) or key not in document:
        raise RetrievalFailed(reasons.ASM_SECRET, reasons.asm_missing_json_key(key))
    value = document[key]
    return value if isinstance(value, str) else json.dumps(value)
