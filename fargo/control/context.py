"""What every part of the control plane shares: settings, the store, the ARN builder."""
from __future__ import annotations

from dataclasses import dataclass

from fargo.arns import Arns
from fargo.config import Config
from fargo.store.database import Store


@dataclass
class ControlContext:
    config: Config
    store: Store

    @property
    def arns(self) -> Arns:
        return Arns(self.config.region, self.config.account_id)
