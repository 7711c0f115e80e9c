"""Amazon ECR on Fargo's control plane, in one object: the ECR handlers, and what the registry proxy asks
(`pushes`, `tokens`). Handlers run their store and file work in a thread, off the event loop."""
from __future__ import annotations

from fargo.control.context import ControlContext
from fargo.control.ecr.authorization import Authorization
from fargo.control.ecr.images import Images
from fargo.control.ecr.names import RegistryNames
from fargo.control.ecr.pushes import RegistryPushes
from fargo.control.ecr.repositories import Repositories
from fargo.control.ecr.resource_tags import ResourceTags
from fargo.control.ecr.tokens import EcrTokens
from fargo.control.threaded_handlers import Handler, SyncHandler, in_thread
from fargo.registry.storage import RegistryPaths
from fargo.store.ecr_store import EcrStore


class Ecr:
    def __init__(self, ctx: ControlContext) -> None:
        cfg = ctx.config
        self.names = RegistryNames(cfg.account_id, cfg.region, cfg.listen)
        self.store = EcrStore(ctx.store)
        self.paths = RegistryPaths.for_data_dir(cfg.data_dir)
        self.tokens = EcrTokens(cfg.data_dir / "ecr" / "token.key")
        self.pushes = RegistryPushes(self.store, cfg.account_id)
        repositories = Repositories(self.store, self.names, self.paths)
        self._operations: dict[str, SyncHandler] = {}
        for part in (repositories, Images(self.store, self.names, self.paths, repositories),
                     Authorization(self.tokens, self.names), ResourceTags(self.store, self.names)):
            self._operations.update(part.handlers())

    def handlers(self) -> dict[str, Handler]:
        """ECR operation name -> handler of the parsed request members, returning the output members."""
        return {name: in_thread(operation) for name, operation in self._operations.items()}
