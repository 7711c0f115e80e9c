"""The store's table of ECS account settings, on the store's one `metadata`.

One row per principal and setting that someone set; the account-wide defaults (PutAccountSettingDefault) are
the rows of the account's root user. A setting nobody set has no row: its value is AWS's default.
"""
from __future__ import annotations

from sqlalchemy import Column, Float, String, Table

from fargo.store.schema import metadata

account_settings = Table(
    "account_settings", metadata,
    Column("principal_arn", String(2048), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", String(64), nullable=False),
    Column("updated_at", Float, nullable=False),
)
