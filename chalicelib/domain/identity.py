"""Who is calling: a person (with their groups) or one of the platform's services (with the scopes
it was granted). Plain data, so the use cases never import the token verifier (adapters/auth.py)."""
from __future__ import annotations

from dataclasses import dataclass

# What a platform service may be granted (scopes on the resource server; infra/template/identity.py).
REGISTER_ORDERS = "orders.write"
REPORT_SCANS = "tracking.write"
SERVICE_SCOPES = (REGISTER_ORDERS, REPORT_SCANS)


@dataclass(frozen=True)
class Identity:
    sub: str
    groups: frozenset[str]
    scopes: frozenset[str] = frozenset()  # a service's granted scopes (never a person's)

    @property
    def is_moderator(self) -> bool:
        return "moderators" in self.groups

    @property
    def is_moderation_admin(self) -> bool:
        """Manages the auto-resolution rules (group ``moderation-admins``)."""
        return "moderation-admins" in self.groups

    @property
    def is_service(self) -> bool:
        return bool(self.scopes) or "services" in self.groups

    @property
    def party_id(self) -> str | None:
        """The person this caller is, as an order's buyer or seller; None for a platform service,
        whatever its ``sub``: a service's identity never acts as a party."""
        return None if self.is_service else self.sub

    def may(self, scope: str) -> bool:
        return scope in self.scopes or "services" in self.groups
