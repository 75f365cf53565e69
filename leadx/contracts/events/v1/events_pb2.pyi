from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RejectionReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECTION_REASON_UNSPECIFIED: _ClassVar[RejectionReason]
    REJECTION_REASON_DUPLICATE: _ClassVar[RejectionReason]
    REJECTION_REASON_INVALID: _ClassVar[RejectionReason]

class SaleOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SALE_OUTCOME_UNSPECIFIED: _ClassVar[SaleOutcome]
    SALE_OUTCOME_SOLD: _ClassVar[SaleOutcome]
    SALE_OUTCOME_UNSOLD: _ClassVar[SaleOutcome]
REJECTION_REASON_UNSPECIFIED: RejectionReason
REJECTION_REASON_DUPLICATE: RejectionReason
REJECTION_REASON_INVALID: RejectionReason
SALE_OUTCOME_UNSPECIFIED: SaleOutcome
SALE_OUTCOME_SOLD: SaleOutcome
SALE_OUTCOME_UNSOLD: SaleOutcome

class Lead(_message.Message):
    __slots__ = ("lead_id", "seller_id", "vertical", "fields", "min_price_cents", "direct_buyer_id", "submitted_at_ms", "seller_reference", "sealed")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    DIRECT_BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SELLER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    seller_id: str
    vertical: str
    fields: _containers.ScalarMap[str, str]
    min_price_cents: int
    direct_buyer_id: str
    submitted_at_ms: int
    seller_reference: str
    sealed: SealedFields
    def __init__(self, lead_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., vertical: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., min_price_cents: _Optional[int] = ..., direct_buyer_id: _Optional[str] = ..., submitted_at_ms: _Optional[int] = ..., seller_reference: _Optional[str] = ..., sealed: _Optional[_Union[SealedFields, _Mapping]] = ...) -> None: ...

class SealedFields(_message.Message):
    __slots__ = ("key_id", "wrapped_key", "ciphertext")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    wrapped_key: bytes
    ciphertext: bytes
    def __init__(self, key_id: _Optional[str] = ..., wrapped_key: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class LeadSubmitted(_message.Message):
    __slots__ = ("lead",)
    LEAD_FIELD_NUMBER: _ClassVar[int]
    lead: Lead
    def __init__(self, lead: _Optional[_Union[Lead, _Mapping]] = ...) -> None: ...

class LeadVerified(_message.Message):
    __slots__ = ("lead", "duplicate_buyer_ids", "identity_keys")
    LEAD_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_BUYER_IDS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_KEYS_FIELD_NUMBER: _ClassVar[int]
    lead: Lead
    duplicate_buyer_ids: _containers.RepeatedScalarFieldContainer[str]
    identity_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lead: _Optional[_Union[Lead, _Mapping]] = ..., duplicate_buyer_ids: _Optional[_Iterable[str]] = ..., identity_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class LeadRejected(_message.Message):
    __slots__ = ("lead_id", "seller_id", "reason", "internal_detail", "rejected_at_ms")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_DETAIL_FIELD_NUMBER: _ClassVar[int]
    REJECTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    seller_id: str
    reason: RejectionReason
    internal_detail: str
    rejected_at_ms: int
    def __init__(self, lead_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., reason: _Optional[_Union[RejectionReason, str]] = ..., internal_detail: _Optional[str] = ..., rejected_at_ms: _Optional[int] = ...) -> None: ...

class LeadScored(_message.Message):
    __slots__ = ("verified", "probability", "cluster", "model_version", "timing_factor")
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMING_FACTOR_FIELD_NUMBER: _ClassVar[int]
    verified: LeadVerified
    probability: float
    cluster: str
    model_version: str
    timing_factor: float
    def __init__(self, verified: _Optional[_Union[LeadVerified, _Mapping]] = ..., probability: _Optional[float] = ..., cluster: _Optional[str] = ..., model_version: _Optional[str] = ..., timing_factor: _Optional[float] = ...) -> None: ...

class PingSubset(_message.Message):
    __slots__ = ("vertical", "zip", "state", "gross_monthly_income_cents", "probability", "cluster", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    ZIP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    GROSS_MONTHLY_INCOME_CENTS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    vertical: str
    zip: str
    state: str
    gross_monthly_income_cents: int
    probability: float
    cluster: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, vertical: _Optional[str] = ..., zip: _Optional[str] = ..., state: _Optional[str] = ..., gross_monthly_income_cents: _Optional[int] = ..., probability: _Optional[float] = ..., cluster: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AuctionOpened(_message.Message):
    __slots__ = ("auction_id", "lead_id", "offered_buyer_ids", "min_price_cents", "opened_at_ms", "closes_at_ms", "ping", "direct", "pinged_buyer_ids")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    OFFERED_BUYER_IDS_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CLOSES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    DIRECT_FIELD_NUMBER: _ClassVar[int]
    PINGED_BUYER_IDS_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    lead_id: str
    offered_buyer_ids: _containers.RepeatedScalarFieldContainer[str]
    min_price_cents: int
    opened_at_ms: int
    closes_at_ms: int
    ping: PingSubset
    direct: bool
    pinged_buyer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, auction_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., offered_buyer_ids: _Optional[_Iterable[str]] = ..., min_price_cents: _Optional[int] = ..., opened_at_ms: _Optional[int] = ..., closes_at_ms: _Optional[int] = ..., ping: _Optional[_Union[PingSubset, _Mapping]] = ..., direct: _Optional[bool] = ..., pinged_buyer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BidPlaced(_message.Message):
    __slots__ = ("auction_id", "buyer_id", "amount_cents", "placed_at_ms", "source")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    buyer_id: str
    amount_cents: int
    placed_at_ms: int
    source: str
    def __init__(self, auction_id: _Optional[str] = ..., buyer_id: _Optional[str] = ..., amount_cents: _Optional[int] = ..., placed_at_ms: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class RankedBid(_message.Message):
    __slots__ = ("buyer_id", "amount_cents", "rank", "bid_cents", "weight", "profile_id")
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    BID_CENTS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    buyer_id: str
    amount_cents: int
    rank: int
    bid_cents: int
    weight: float
    profile_id: str
    def __init__(self, buyer_id: _Optional[str] = ..., amount_cents: _Optional[int] = ..., rank: _Optional[int] = ..., bid_cents: _Optional[int] = ..., weight: _Optional[float] = ..., profile_id: _Optional[str] = ...) -> None: ...

class AuctionClosed(_message.Message):
    __slots__ = ("auction_id", "ranked_bids", "closed_at_ms", "tie_break_seed", "lead", "identity_keys", "bids_received", "probability", "cluster", "pricing", "shares")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    RANKED_BIDS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TIE_BREAK_SEED_FIELD_NUMBER: _ClassVar[int]
    LEAD_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_KEYS_FIELD_NUMBER: _ClassVar[int]
    BIDS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PRICING_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    ranked_bids: _containers.RepeatedCompositeFieldContainer[RankedBid]
    closed_at_ms: int
    tie_break_seed: int
    lead: Lead
    identity_keys: _containers.RepeatedScalarFieldContainer[str]
    bids_received: int
    probability: float
    cluster: str
    pricing: str
    shares: int
    def __init__(self, auction_id: _Optional[str] = ..., ranked_bids: _Optional[_Iterable[_Union[RankedBid, _Mapping]]] = ..., closed_at_ms: _Optional[int] = ..., tie_break_seed: _Optional[int] = ..., lead: _Optional[_Union[Lead, _Mapping]] = ..., identity_keys: _Optional[_Iterable[str]] = ..., bids_received: _Optional[int] = ..., probability: _Optional[float] = ..., cluster: _Optional[str] = ..., pricing: _Optional[str] = ..., shares: _Optional[int] = ...) -> None: ...

class SaleClosed(_message.Message):
    __slots__ = ("lead_id", "auction_id", "outcome", "buyer_id", "price_cents", "seller_fee_cents", "seller_id", "vertical", "state", "zip3", "probability", "cluster", "attempts", "closed_at_ms", "submitted_at_ms", "posted_buyer_ids", "duplicate_buyer_ids")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    SELLER_FEE_CENTS_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ZIP3_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    POSTED_BUYER_IDS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_BUYER_IDS_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    auction_id: str
    outcome: SaleOutcome
    buyer_id: str
    price_cents: int
    seller_fee_cents: int
    seller_id: str
    vertical: str
    state: str
    zip3: str
    probability: float
    cluster: str
    attempts: int
    closed_at_ms: int
    submitted_at_ms: int
    posted_buyer_ids: _containers.RepeatedScalarFieldContainer[str]
    duplicate_buyer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lead_id: _Optional[str] = ..., auction_id: _Optional[str] = ..., outcome: _Optional[_Union[SaleOutcome, str]] = ..., buyer_id: _Optional[str] = ..., price_cents: _Optional[int] = ..., seller_fee_cents: _Optional[int] = ..., seller_id: _Optional[str] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., zip3: _Optional[str] = ..., probability: _Optional[float] = ..., cluster: _Optional[str] = ..., attempts: _Optional[int] = ..., closed_at_ms: _Optional[int] = ..., submitted_at_ms: _Optional[int] = ..., posted_buyer_ids: _Optional[_Iterable[str]] = ..., duplicate_buyer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LeadReturned(_message.Message):
    __slots__ = ("lead_id", "auction_id", "buyer_id", "seller_id", "price_cents", "seller_fee_cents", "reason", "vertical", "state", "zip3", "probability", "cluster", "sold_at_ms", "returned_at_ms")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    SELLER_FEE_CENTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ZIP3_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    SOLD_AT_MS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    auction_id: str
    buyer_id: str
    seller_id: str
    price_cents: int
    seller_fee_cents: int
    reason: str
    vertical: str
    state: str
    zip3: str
    probability: float
    cluster: str
    sold_at_ms: int
    returned_at_ms: int
    def __init__(self, lead_id: _Optional[str] = ..., auction_id: _Optional[str] = ..., buyer_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., price_cents: _Optional[int] = ..., seller_fee_cents: _Optional[int] = ..., reason: _Optional[str] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., zip3: _Optional[str] = ..., probability: _Optional[float] = ..., cluster: _Optional[str] = ..., sold_at_ms: _Optional[int] = ..., returned_at_ms: _Optional[int] = ...) -> None: ...

class LeadOutcome(_message.Message):
    __slots__ = ("lead_id", "buyer_id", "seller_id", "outcome", "at_ms", "sold_at_ms", "vertical", "state", "zip3", "probability", "cluster")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    SOLD_AT_MS_FIELD_NUMBER: _ClassVar[int]
    VERTICAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ZIP3_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    buyer_id: str
    seller_id: str
    outcome: str
    at_ms: int
    sold_at_ms: int
    vertical: str
    state: str
    zip3: str
    probability: float
    cluster: str
    def __init__(self, lead_id: _Optional[str] = ..., buyer_id: _Optional[str] = ..., seller_id: _Optional[str] = ..., outcome: _Optional[str] = ..., at_ms: _Optional[int] = ..., sold_at_ms: _Optional[int] = ..., vertical: _Optional[str] = ..., state: _Optional[str] = ..., zip3: _Optional[str] = ..., probability: _Optional[float] = ..., cluster: _Optional[str] = ...) -> None: ...

class ListAwarded(_message.Message):
    __slots__ = ("auction_id", "buyer_id", "price_cents", "lead", "probability", "cluster")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    BUYER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    LEAD_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    buyer_id: str
    price_cents: int
    lead: Lead
    probability: float
    cluster: str
    def __init__(self, auction_id: _Optional[str] = ..., buyer_id: _Optional[str] = ..., price_cents: _Optional[int] = ..., lead: _Optional[_Union[Lead, _Mapping]] = ..., probability: _Optional[float] = ..., cluster: _Optional[str] = ...) -> None: ...
