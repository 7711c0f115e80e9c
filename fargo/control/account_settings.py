"""ECS account settings: PutAccountSetting, PutAccountSettingDefault, ListAccountSettings, DeleteAccountSetting.

A setting's effective value for a principal is its own, else the account default (the root user's), else
AWS's default. Fargo has no IAM: every caller is the account's root user, so a call without principalArn
reads and writes the root user's settings, which are also the defaults of every other principal.
"""
from __future__ import annotations

import re

from fargo import clock
from fargo.control import account_messages as msg
from fargo.control.context import ControlContext
from fargo.control.pagination import next_token, page_bounds
from fargo.errors import InvalidParameterException
from fargo.store.account_settings_store import AccountSettingsStore

_ON_OFF = ("enabled", "disabled")
# AWS's value when nobody set one (as of 2025: long ARNs since 2021, tag authorization on since 2024,
# non-blocking log delivery since June 2025), and the values each setting takes.
DEFAULTS: dict[str, str] = {
    "awsvpcTrunking": "disabled",
    "containerInsights": "disabled",
    "containerInstanceLongArnFormat": "enabled",
    "defaultLogDriverMode": "non-blocking",
    "fargateEventWindows": "disabled",
    "fargateFIPSMode": "disabled",
    "fargateTaskRetirementWaitPeriod": "7",
    "guardDutyActivate": "off",
    "serviceLongArnFormat": "enabled",
    "tagResourceAuthorization": "on",
    "taskLongArnFormat": "enabled",
}
VALUES: dict[str, tuple[str, ...]] = {
    "awsvpcTrunking": _ON_OFF,
    "containerInsights": ("enhanced", "enabled", "disabled"),
    "containerInstanceLongArnFormat": _ON_OFF,
    "defaultLogDriverMode": ("blocking", "non-blocking"),
    "fargateEventWindows": _ON_OFF,
    "fargateFIPSMode": _ON_OFF,
    "fargateTaskRetirementWaitPeriod": ("0", "7", "14"),
    "guardDutyActivate": ("on", "off"),
    "serviceLongArnFormat": _ON_OFF,
    "tagResourceAuthorization": ("on", "off"),
    "taskLongArnFormat": _ON_OFF,
}
_AWS_MANAGED = frozenset({"guardDutyActivate"})
_ROOT_ONLY = frozenset({"fargateTaskRetirementWaitPeriod"})
_LONG_ARNS = frozenset({"serviceLongArnFormat", "taskLongArnFormat", "containerInstanceLongArnFormat"})
_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):(?P<who>root|user/\S+|role/\S+)$")


class AccountSettings:
    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx
        self.store = AccountSettingsStore(ctx.store)

    @property
    def root(self) -> str:
        return self.ctx.arns.account_root()

    def effective(self, name: str, principal_arn: str | None = None) -> str:
        """What the setting is for the principal (the root user when None)."""
        principal = principal_arn or self.root
        found = self.store.settings_of(list({principal, self.root}))
        return found[principal].get(name) or found[self.root].get(name) or DEFAULTS[name]

    # --- API -------------------------------------------------------------------------------------

    def put(self, p: dict) -> dict:
        principal = self._principal(p.get("principalArn"))
        return {"setting": self._set(p["name"], p["value"], principal)}

    def put_default(self, p: dict) -> dict:
        return {"setting": self._set(p["name"], p["value"], self.root)}

    def delete(self, p: dict) -> dict:
        name, principal = p["name"], self._principal(p.get("principalArn"))
        if name in _AWS_MANAGED:
            raise InvalidParameterException(msg.READ_ONLY.format(name=name))
        value = self.store.delete(principal, name)
        if value is None:  # nothing was set: what applies to the principal, which stays as it was
            value = self.effective(name, principal)
        return {"setting": self._doc(name, value, principal)}

    def list(self, p: dict) -> dict:
        principal = self._principal(p.get("principalArn"))
        name, value = p.get("name"), p.get("value")
        if value is not None and not name:
            raise InvalidParameterException(msg.VALUE_NEEDS_NAME)
        offset, limit = page_bounds(p, default_limit=10, max_limit=10)
        found = self.store.settings_of(list({principal, self.root}))
        own = found[principal]
        if p.get("effectiveSettings"):
            values = {n: own.get(n) or found[self.root].get(n) or default for n, default in DEFAULTS.items()}
        else:
            values = dict(own)
        settings = [self._doc(n, v, principal) for n, v in sorted(values.items())
                    if (not name or n == name) and (value is None or v == value)]
        page = settings[offset:offset + limit + 1]
        return {"settings": page[:limit], "nextToken": next_token(offset, limit, len(page))}

    # --- helpers ---------------------------------------------------------------------------------

    def _set(self, name: str, value: str, principal: str) -> dict:
        if name in _AWS_MANAGED:
            raise InvalidParameterException(msg.READ_ONLY.format(name=name))
        if value not in VALUES[name]:
            raise InvalidParameterException(msg.INVALID_VALUE.format(value=value, name=name,
                                                                     valid=", ".join(VALUES[name])))
        if name in _LONG_ARNS and value == "disabled":
            raise InvalidParameterException(msg.LONG_ARN_OPT_OUT.format(name=name))
        if name in _ROOT_ONLY and principal != self.root:
            raise InvalidParameterException(msg.ROOT_ONLY.format(name=name))
        self.store.put(principal, name, value, clock.now())
        return self._doc(name, value, principal)

    def _principal(self, arn: str | None) -> str:
        if arn is None:
            return self.root
        m = _PRINCIPAL.match(arn)
        if m is None or m["account"] != self.ctx.config.account_id:
            raise InvalidParameterException(msg.INVALID_PRINCIPAL.format(arn=arn, account=self.ctx.config.account_id))
        return self.root if m["who"] == "root" else arn

    @staticmethod
    def _doc(name: str, value: str, principal: str) -> dict:
        return {"name": name, "value": value, "principalArn": principal,
                "type": "aws_managed" if name in _AWS_MANAGED else "user"}
