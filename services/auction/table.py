"""The worker's auctions table: `Auction` records in memory, their JSON (leadx.auction.state) in the
table's changelog topic, which is where a worker's auctions come back from after a restart or a
rebalance."""

from __future__ import annotations

import faust
from faust.serializers import codecs

from leadx.auction.state import Auction
from leadx.platform.kafka.envelope import partition_for

TABLE_NAME = "auctions"


class AuctionCodec(codecs.Codec):
    """A changelog record's value: Auction.to_json and Auction.from_json, which reads the layout of
    every earlier worker too (a tombstone, None, never reaches a codec)."""

    def _dumps(self, auction: Auction) -> bytes:
        return auction.to_json()

    def _loads(self, data: bytes) -> Auction:
        return Auction.from_json(data)


class AuctionTable(faust.Table):
    def __init__(self, app: faust.App, *, partitions: int, **kwargs) -> None:
        super().__init__(app, partitions=partitions, **kwargs)
        self.partition_count = partitions
        # Before the app makes the changelog topic, which takes its value codec from here.
        self.value_serializer = AuctionCodec()

    def changelog_partition(self, auction_id: str) -> int:
        # The auction's lead.scored partition: its lead was keyed by this id with the default partitioner.
        return partition_for(auction_id, self.partition_count)

    def write(self, auction_id: str, auction: Auction | None) -> None:
        """A write from outside an agent (the closing task), None to delete: faust's own
        `table[id] = ...` takes the changelog partition from the stream's current event."""
        partition = self.changelog_partition(auction_id)
        if auction is None:
            self.data.pop(auction_id, None)
            self.send_changelog(partition, auction_id, None, value_serializer="raw")  # a tombstone
        else:
            self.data[auction_id] = auction
            self.send_changelog(partition, auction_id, auction)


def auctions_table(app: faust.App, partitions: int) -> AuctionTable:
    """The app's auctions table (as app.Table makes a table, of this class)."""
    table = AuctionTable(app, name=TABLE_NAME, default=None, beacon=app.tables.beacon, partitions=partitions)
    app.tables.add(table)
    return table
