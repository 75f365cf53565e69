from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetAuctionStatusRequest(_message.Message):
    __slots__ = ("auction_id",)
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    def __init__(self, auction_id: _Optional[str] = ...) -> None: ...

class AuctionStatus(_message.Message):
    __slots__ = ("auction_id", "lead_id", "lead_status", "offered_buyers", "opened_at_ms", "closes_at_ms", "buyer_id", "price_cents")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_STATUS_FIELD_NUMBER: _ClassVar[int]
    OFFERED_BUYERS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CLOSES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    lead_id: str
    lead_status: str
    offered_buyers: int
    opened_at_ms: int
    closes_at_ms: int
    buyer_id: str
    price_cents: int
    def __init__(self, auction_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., lead_status: _Optional[str] = ..., offered_buyers: _Optional[int] = ..., opened_at_ms: _Optional[int] = ..., closes_at_ms: _Optional[int] = ..., buyer_id: _Optional[str] = ..., price_cents: _Optional[int] = ...) -> None: ...

class ListRecentSalesRequest(_message.Message):
    __slots__ = ("limit", "buyer_id")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    buyer_id: str
    def __init__(self, limit: _Optional[int] = ..., buyer_id: _Optional[str] = ...) -> None: ...

class Sale(_message.Message):
    __slots__ = ("lead_id", "buyer_id", "seller_id", "price_cents", "seller_fee_cents", "vertical", "state", "closed_at_ms")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    SELLER_FEE_CENTS_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    buyer_id: str
    seller_id: str
    price_cents: int
    seller_fee_cents: int
    vertical: str
    state: str
    closed_at_ms: int
    def __init__(self, lead_id: _Optional[str] = ..., buyer_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., price_cents: _Optional[int] = ..., seller_fee_cents: _Optional[int] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., closed_at_ms: _Optional[int] = ...) -> None: ...

class ListRecentSalesResponse(_message.Message):
    __slots__ = ("sales",)
    SALES_FIELD_NUMBER: _ClassVar[int]
    sales: _containers.RepeatedCompositeFieldContainer[Sale]
    def __init__(self, sales: _Optional[_Iterable[_Union[Sale, _Mapping]]] = ...) -> None: ...

class GetBuyerDuplicatesRequest(_message.Message):
    __slots__ = ("buyer_id", "days")
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    buyer_id: str
    days: int
    def __init__(self, buyer_id: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class DuplicateDay(_message.Message):
    __slots__ = ("day", "duplicates")
    DAY_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    day: str
    duplicates: int
    def __init__(self, day: _Optional[str] = ..., duplicates: _Optional[int] = ...) -> None: ...

class GetBuyerDuplicatesResponse(_message.Message):
    __slots__ = ("buyer_id", "days")
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    buyer_id: str
    days: _containers.RepeatedCompositeFieldContainer[DuplicateDay]
    def __init__(self, buyer_id: _Optional[str] = ..., days: _Optional[_Iterable[_Union[DuplicateDay, _Mapping]]] = ...) -> None: ...
