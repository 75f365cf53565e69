"""Who is calling the dashboard API: `authorization: Bearer <api key>` in the call's metadata names
a seller or a buyer, which reads only its own data, or the admin (DASHBOARD_ADMIN_API_KEY), which
reads everything."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import NoReturn

import grpc
from sqlalchemy.orm import Session, sessionmaker

from leadx.accounts import accounts
from leadx.accounts.api_keys import DEFAULT_TTL_S, KeyCache, bearer_key

ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    kind: str  # seller | buyer | admin
    id: str

    @property
    def is_admin(self) -> bool:
        return self.kind == ADMIN

    def may_read(self, kind: str, account_id: str) -> bool:
        return self.is_admin or (self.kind == kind and self.id == account_id)


def _account_for_key(session: Session, key: str) -> Caller | None:
    seller = accounts.seller_for_key(session, key)
    if seller is not None:
        return Caller("seller", seller)
    buyer = accounts.buyer_for_key(session, key)
    return Caller("buyer", buyer) if buyer is not None else None


async def _unauthenticated(context: grpc.aio.ServicerContext, message: str) -> NoReturn:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
    # abort ends the call by raising; grpc ships no types that tell a type checker so.
    raise AssertionError("ServicerContext.abort returned")


class DashboardAuth:
    def __init__(self, sessions: sessionmaker[Session], admin_key: str = "", key_ttl_s: float = DEFAULT_TTL_S) -> None:
        self.keys = KeyCache(sessions, _account_for_key, key_ttl_s)
        self.admin_key = admin_key

    async def caller(self, context: grpc.aio.ServicerContext) -> Caller:
        metadata = dict(context.invocation_metadata() or ())
        key = bearer_key(metadata.get("authorization", ""))
        if key is None:
            await _unauthenticated(context, "send your API key as metadata 'authorization: Bearer <key>'")
        if self.admin_key and hmac.compare_digest(key.encode(), self.admin_key.encode()):
            return Caller(ADMIN, "")
        caller = await self.keys.resolve(key)
        if caller is None:
            await _unauthenticated(context, "the API key is not valid or has been revoked")
        return caller

    @staticmethod
    async def require(context: grpc.aio.ServicerContext, caller: Caller, kind: str, account_id: str) -> None:
        if not caller.may_read(kind, account_id):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"you may read only your own data, not "
                                f"{kind} {account_id}'s")
