"""GetAuthorizationToken: base64 `AWS:<password>` with a Fargo-signed password valid 12 hours, and the
registry's endpoint (plain HTTP, on the edge port)."""
from __future__ import annotations

from fargo.control.ecr.names import RegistryNames
from fargo.control.ecr.tokens import EcrTokens


class Authorization:
    def __init__(self, tokens: EcrTokens, names: RegistryNames) -> None:
        self.tokens, self.names = tokens, names

    def handlers(self) -> dict:
        return {"GetAuthorizationToken": self.get_authorization_token}

    def get_authorization_token(self, p: dict) -> dict:
        # registryIds is deprecated; AWS answers one entry per id given, each for the caller's registry.
        for registry_id in p.get("registryIds") or []:
            self.names.check_registry_id(registry_id)
        token = self.tokens.issue()
        entry = {"authorizationToken": token.authorization_token, "expiresAt": token.expires_at,
                 "proxyEndpoint": self.names.proxy_endpoint}
        return {"authorizationData": [dict(entry) for _ in (p.get("registryIds") or [None])]}
