from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Window(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WINDOW_UNSPECIFIED: _ClassVar[Window]
    WINDOW_DAY: _ClassVar[Window]
    WINDOW_WEEK: _ClassVar[Window]
    WINDOW_MONTH: _ClassVar[Window]
    WINDOW_YEAR: _ClassVar[Window]

class Period(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERIOD_UNSPECIFIED: _ClassVar[Period]
    PERIOD_DAY: _ClassVar[Period]
    PERIOD_WEEK: _ClassVar[Period]
    PERIOD_MONTH: _ClassVar[Period]
WINDOW_UNSPECIFIED: Window
WINDOW_DAY: Window
WINDOW_WEEK: Window
WINDOW_MONTH: Window
WINDOW_YEAR: Window
PERIOD_UNSPECIFIED: Period
PERIOD_DAY: Period
PERIOD_WEEK: Period
PERIOD_MONTH: Period

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

class GetBuyerSummaryRequest(_message.Message):
    __slots__ = ("buyer_id",)
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    buyer_id: str
    def __init__(self, buyer_id: _Optional[str] = ...) -> None: ...

class BuyerWindow(_message.Message):
    __slots__ = ("window", "leads_bought", "average_cost_cents", "spent_cents", "returned", "duplicates_rejected")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    LEADS_BOUGHT_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_COST_CENTS_FIELD_NUMBER: _ClassVar[int]
    SPENT_CENTS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_REJECTED_FIELD_NUMBER: _ClassVar[int]
    window: Window
    leads_bought: int
    average_cost_cents: int
    spent_cents: int
    returned: int
    duplicates_rejected: int
    def __init__(self, window: _Optional[_Union[Window, str]] = ..., leads_bought: _Optional[int] = ..., average_cost_cents: _Optional[int] = ..., spent_cents: _Optional[int] = ..., returned: _Optional[int] = ..., duplicates_rejected: _Optional[int] = ...) -> None: ...

class BoughtLead(_message.Message):
    __slots__ = ("lead_id", "price_cents", "vertical", "state", "bought_at_ms", "returned")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BOUGHT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    price_cents: int
    vertical: str
    state: str
    bought_at_ms: int
    returned: bool
    def __init__(self, lead_id: _Optional[str] = ..., price_cents: _Optional[int] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., bought_at_ms: _Optional[int] = ..., returned: _Optional[bool] = ...) -> None: ...

class BuyerSummary(_message.Message):
    __slots__ = ("buyer_id", "windows", "last_leads")
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    LAST_LEADS_FIELD_NUMBER: _ClassVar[int]
    buyer_id: str
    windows: _containers.RepeatedCompositeFieldContainer[BuyerWindow]
    last_leads: _containers.RepeatedCompositeFieldContainer[BoughtLead]
    def __init__(self, buyer_id: _Optional[str] = ..., windows: _Optional[_Iterable[_Union[BuyerWindow, _Mapping]]] = ..., last_leads: _Optional[_Iterable[_Union[BoughtLead, _Mapping]]] = ...) -> None: ...

class GetSellerSummaryRequest(_message.Message):
    __slots__ = ("seller_id",)
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    seller_id: str
    def __init__(self, seller_id: _Optional[str] = ...) -> None: ...

class SellerWindow(_message.Message):
    __slots__ = ("window", "sold", "average_price_cents", "unsold", "returned", "fees_cents")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    SOLD_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    UNSOLD_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    FEES_CENTS_FIELD_NUMBER: _ClassVar[int]
    window: Window
    sold: int
    average_price_cents: int
    unsold: int
    returned: int
    fees_cents: int
    def __init__(self, window: _Optional[_Union[Window, str]] = ..., sold: _Optional[int] = ..., average_price_cents: _Optional[int] = ..., unsold: _Optional[int] = ..., returned: _Optional[int] = ..., fees_cents: _Optional[int] = ...) -> None: ...

class SellerSummary(_message.Message):
    __slots__ = ("seller_id", "windows")
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    seller_id: str
    windows: _containers.RepeatedCompositeFieldContainer[SellerWindow]
    def __init__(self, seller_id: _Optional[str] = ..., windows: _Optional[_Iterable[_Union[SellerWindow, _Mapping]]] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ("account_id", "window", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    window: Window
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., window: _Optional[_Union[Window, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("id", "kind", "lead_id", "buyer_id", "seller_id", "amount_cents", "fee_cents", "at_ms", "account_amount_cents", "account_balance_after_cents")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    FEE_CENTS_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_BALANCE_AFTER_CENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    lead_id: str
    buyer_id: str
    seller_id: str
    amount_cents: int
    fee_cents: int
    at_ms: int
    account_amount_cents: int
    account_balance_after_cents: int
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., lead_id: _Optional[str] = ..., buyer_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., amount_cents: _Optional[int] = ..., fee_cents: _Optional[int] = ..., at_ms: _Optional[int] = ..., account_amount_cents: _Optional[int] = ..., account_balance_after_cents: _Optional[int] = ...) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("transactions", "next_page_token")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    next_page_token: str
    def __init__(self, transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SearchLeadsRequest(_message.Message):
    __slots__ = ("lead_id", "day", "state", "status", "page_size", "page_token", "account_id", "to_day")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_DAY_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    day: str
    state: str
    status: str
    page_size: int
    page_token: str
    account_id: str
    to_day: str
    def __init__(self, lead_id: _Optional[str] = ..., day: _Optional[str] = ..., state: _Optional[str] = ..., status: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., account_id: _Optional[str] = ..., to_day: _Optional[str] = ...) -> None: ...

class LeadRow(_message.Message):
    __slots__ = ("lead_id", "seller_id", "buyer_id", "vertical", "state", "status", "submitted_at_ms", "price_cents")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    seller_id: str
    buyer_id: str
    vertical: str
    state: str
    status: str
    submitted_at_ms: int
    price_cents: int
    def __init__(self, lead_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., buyer_id: _Optional[str] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., status: _Optional[str] = ..., submitted_at_ms: _Optional[int] = ..., price_cents: _Optional[int] = ...) -> None: ...

class SearchLeadsResponse(_message.Message):
    __slots__ = ("leads", "next_page_token")
    LEADS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    leads: _containers.RepeatedCompositeFieldContainer[LeadRow]
    next_page_token: str
    def __init__(self, leads: _Optional[_Iterable[_Union[LeadRow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMarketPricesRequest(_message.Message):
    __slots__ = ("period", "from_day", "to_day", "vertical", "state", "county", "by_county")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    FROM_DAY_FIELD_NUMBER: _ClassVar[int]
    TO_DAY_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTY_FIELD_NUMBER: _ClassVar[int]
    BY_COUNTY_FIELD_NUMBER: _ClassVar[int]
    period: Period
    from_day: str
    to_day: str
    vertical: str
    state: str
    county: str
    by_county: bool
    def __init__(self, period: _Optional[_Union[Period, str]] = ..., from_day: _Optional[str] = ..., to_day: _Optional[str] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., county: _Optional[str] = ..., by_county: _Optional[bool] = ...) -> None: ...

class MarketPrice(_message.Message):
    __slots__ = ("period_start", "vertical", "state", "county", "sales", "average_price_cents", "total_cents")
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTY_FIELD_NUMBER: _ClassVar[int]
    SALES_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CENTS_FIELD_NUMBER: _ClassVar[int]
    period_start: str
    vertical: str
    state: str
    county: str
    sales: int
    average_price_cents: int
    total_cents: int
    def __init__(self, period_start: _Optional[str] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., county: _Optional[str] = ..., sales: _Optional[int] = ..., average_price_cents: _Optional[int] = ..., total_cents: _Optional[int] = ...) -> None: ...

class GetMarketPricesResponse(_message.Message):
    __slots__ = ("prices",)
    PRICES_FIELD_NUMBER: _ClassVar[int]
    prices: _containers.RepeatedCompositeFieldContainer[MarketPrice]
    def __init__(self, prices: _Optional[_Iterable[_Union[MarketPrice, _Mapping]]] = ...) -> None: ...

class GetLeadRequest(_message.Message):
    __slots__ = ("lead_id", "account_id")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    account_id: str
    def __init__(self, lead_id: _Optional[str] = ..., account_id: _Optional[str] = ...) -> None: ...

class LeadField(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class LeadStatusChange(_message.Message):
    __slots__ = ("status", "at_ms", "detail")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    status: str
    at_ms: int
    detail: str
    def __init__(self, status: _Optional[str] = ..., at_ms: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class LeadAuction(_message.Message):
    __slots__ = ("auction_id", "offered_buyers", "opened_at_ms", "closes_at_ms", "closed_at_ms", "bids_received", "bids")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFERED_BUYERS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CLOSES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    BIDS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    offered_buyers: int
    opened_at_ms: int
    closes_at_ms: int
    closed_at_ms: int
    bids_received: int
    bids: _containers.RepeatedCompositeFieldContainer[LeadBid]
    def __init__(self, auction_id: _Optional[str] = ..., offered_buyers: _Optional[int] = ..., opened_at_ms: _Optional[int] = ..., closes_at_ms: _Optional[int] = ..., closed_at_ms: _Optional[int] = ..., bids_received: _Optional[int] = ..., bids: _Optional[_Iterable[_Union[LeadBid, _Mapping]]] = ...) -> None: ...

class LeadBid(_message.Message):
    __slots__ = ("rank", "buyer_id", "bid_cents", "amount_cents", "yours")
    RANK_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    BID_CENTS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    YOURS_FIELD_NUMBER: _ClassVar[int]
    rank: int
    buyer_id: str
    bid_cents: int
    amount_cents: int
    yours: bool
    def __init__(self, rank: _Optional[int] = ..., buyer_id: _Optional[str] = ..., bid_cents: _Optional[int] = ..., amount_cents: _Optional[int] = ..., yours: _Optional[bool] = ...) -> None: ...

class LeadSale(_message.Message):
    __slots__ = ("rank", "buyer_id", "price_cents", "fee_cents", "sold", "closed_at_ms", "returned", "yours")
    RANK_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    FEE_CENTS_FIELD_NUMBER: _ClassVar[int]
    SOLD_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    YOURS_FIELD_NUMBER: _ClassVar[int]
    rank: int
    buyer_id: str
    price_cents: int
    fee_cents: int
    sold: bool
    closed_at_ms: int
    returned: bool
    yours: bool
    def __init__(self, rank: _Optional[int] = ..., buyer_id: _Optional[str] = ..., price_cents: _Optional[int] = ..., fee_cents: _Optional[int] = ..., sold: _Optional[bool] = ..., closed_at_ms: _Optional[int] = ..., returned: _Optional[bool] = ..., yours: _Optional[bool] = ...) -> None: ...

class LeadPost(_message.Message):
    __slots__ = ("buyer_id", "sent_at_ms", "http_status", "outcome", "latency_ms", "yours")
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    YOURS_FIELD_NUMBER: _ClassVar[int]
    buyer_id: str
    sent_at_ms: int
    http_status: int
    outcome: str
    latency_ms: int
    yours: bool
    def __init__(self, buyer_id: _Optional[str] = ..., sent_at_ms: _Optional[int] = ..., http_status: _Optional[int] = ..., outcome: _Optional[str] = ..., latency_ms: _Optional[int] = ..., yours: _Optional[bool] = ...) -> None: ...

class LeadDetail(_message.Message):
    __slots__ = ("lead_id", "seller_id", "vertical", "state", "status", "submitted_at_ms", "fields", "history", "auctions", "sales", "posts", "returnable")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    AUCTIONS_FIELD_NUMBER: _ClassVar[int]
    SALES_FIELD_NUMBER: _ClassVar[int]
    POSTS_FIELD_NUMBER: _ClassVar[int]
    RETURNABLE_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    seller_id: str
    vertical: str
    state: str
    status: str
    submitted_at_ms: int
    fields: _containers.RepeatedCompositeFieldContainer[LeadField]
    history: _containers.RepeatedCompositeFieldContainer[LeadStatusChange]
    auctions: _containers.RepeatedCompositeFieldContainer[LeadAuction]
    sales: _containers.RepeatedCompositeFieldContainer[LeadSale]
    posts: _containers.RepeatedCompositeFieldContainer[LeadPost]
    returnable: bool
    def __init__(self, lead_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., status: _Optional[str] = ..., submitted_at_ms: _Optional[int] = ..., fields: _Optional[_Iterable[_Union[LeadField, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[LeadStatusChange, _Mapping]]] = ..., auctions: _Optional[_Iterable[_Union[LeadAuction, _Mapping]]] = ..., sales: _Optional[_Iterable[_Union[LeadSale, _Mapping]]] = ..., posts: _Optional[_Iterable[_Union[LeadPost, _Mapping]]] = ..., returnable: _Optional[bool] = ...) -> None: ...

class ListReturnNoticesRequest(_message.Message):
    __slots__ = ("seller_id", "since_ms", "limit")
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    seller_id: str
    since_ms: int
    limit: int
    def __init__(self, seller_id: _Optional[str] = ..., since_ms: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReturnNotice(_message.Message):
    __slots__ = ("lead_id", "reason", "price_cents", "returned_at_ms")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    reason: str
    price_cents: int
    returned_at_ms: int
    def __init__(self, lead_id: _Optional[str] = ..., reason: _Optional[str] = ..., price_cents: _Optional[int] = ..., returned_at_ms: _Optional[int] = ...) -> None: ...

class ListReturnNoticesResponse(_message.Message):
    __slots__ = ("notices", "unread")
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    notices: _containers.RepeatedCompositeFieldContainer[ReturnNotice]
    unread: int
    def __init__(self, notices: _Optional[_Iterable[_Union[ReturnNotice, _Mapping]]] = ..., unread: _Optional[int] = ...) -> None: ...

class ListPartnersRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class Partner(_message.Message):
    __slots__ = ("account_id", "name", "partnered", "choice", "your_stars", "average_stars", "ratings")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTNERED_FIELD_NUMBER: _ClassVar[int]
    CHOICE_FIELD_NUMBER: _ClassVar[int]
    YOUR_STARS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_STARS_FIELD_NUMBER: _ClassVar[int]
    RATINGS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    name: str
    partnered: bool
    choice: str
    your_stars: int
    average_stars: float
    ratings: int
    def __init__(self, account_id: _Optional[str] = ..., name: _Optional[str] = ..., partnered: _Optional[bool] = ..., choice: _Optional[str] = ..., your_stars: _Optional[int] = ..., average_stars: _Optional[float] = ..., ratings: _Optional[int] = ...) -> None: ...

class ListPartnersResponse(_message.Message):
    __slots__ = ("partners", "sells_to")
    PARTNERS_FIELD_NUMBER: _ClassVar[int]
    SELLS_TO_FIELD_NUMBER: _ClassVar[int]
    partners: _containers.RepeatedCompositeFieldContainer[Partner]
    sells_to: str
    def __init__(self, partners: _Optional[_Iterable[_Union[Partner, _Mapping]]] = ..., sells_to: _Optional[str] = ...) -> None: ...

class GetPlatformTotalsRequest(_message.Message):
    __slots__ = ("since_ms",)
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    since_ms: int
    def __init__(self, since_ms: _Optional[int] = ...) -> None: ...

class PlatformTotals(_message.Message):
    __slots__ = ("since_ms", "leads", "sold", "unsold", "revenue_cents", "fees_cents", "returns", "returned_cents")
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    LEADS_FIELD_NUMBER: _ClassVar[int]
    SOLD_FIELD_NUMBER: _ClassVar[int]
    UNSOLD_FIELD_NUMBER: _ClassVar[int]
    REVENUE_CENTS_FIELD_NUMBER: _ClassVar[int]
    FEES_CENTS_FIELD_NUMBER: _ClassVar[int]
    RETURNS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_CENTS_FIELD_NUMBER: _ClassVar[int]
    since_ms: int
    leads: int
    sold: int
    unsold: int
    revenue_cents: int
    fees_cents: int
    returns: int
    returned_cents: int
    def __init__(self, since_ms: _Optional[int] = ..., leads: _Optional[int] = ..., sold: _Optional[int] = ..., unsold: _Optional[int] = ..., revenue_cents: _Optional[int] = ..., fees_cents: _Optional[int] = ..., returns: _Optional[int] = ..., returned_cents: _Optional[int] = ...) -> None: ...
