"""Secrets Manager and SSM Parameter Store on the control plane, in one object: both services' handlers.

Both keep their values sealed with one key, `DATA_DIR/secrets/key`; handlers run their store and
cryptography work in a thread, off the event loop.
"""
from __future__ import annotations

from pathlib import Path

from fargo.control.context import ControlContext
from fargo.control.secrets.names import NameRules
from fargo.control.secrets.parameters import ParameterStore
from fargo.control.secrets.sealing import Sealer
from fargo.control.secrets.secrets_manager import SecretsManager
from fargo.control.threaded_handlers import Handler, in_thread
from fargo.store.secrets_store import SecretsStore


def key_path(data_dir: Path) -> Path:
    return data_dir / "secrets" / "key"


class Secrets:
    def __init__(self, ctx: ControlContext) -> None:
        store = SecretsStore(ctx.store)
        sealer = Sealer(key_path(ctx.config.data_dir))
        rules = NameRules(ctx.config.region, ctx.config.account_id)
        self.secrets_manager = SecretsManager(store, sealer, rules)
        self.parameters = ParameterStore(store, sealer, rules)

    def secrets_manager_handlers(self) -> dict[str, Handler]:
        """Secrets Manager operation name -> handler of the parsed request members."""
        return {name: in_thread(op) for name, op in self.secrets_manager.handlers().items()}

    def ssm_handlers(self) -> dict[str, Handler]:
        """SSM operation name -> handler of the parsed request members."""
        return {name: in_thread(op) for name, op in self.parameters.handlers().items()}
