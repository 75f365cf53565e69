"""Sellers and buyers: accounts and API keys, a buyer's auction settings and AutoBid profiles as
stored, partnerships, ratings, seller fees, and the directory the hot path reads."""
