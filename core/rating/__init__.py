"""Rating: versioned, effective-dated rate cards and the price of each usage event."""

from core.rating.book import AccountPricing, PriceMatch, RateBook, load_rate_book, rate_book_token
from core.rating.cards import LoadReport, load_rate_card, load_rate_card_file, read_rate_card_file
from core.rating.engine import PriceQuote, Tier, rate_amount_nanos, validate_tiers
from core.rating.views import PriceLine, PriceSheet, VersionSheet, price_sheet

__all__ = [
    "AccountPricing",
    "LoadReport",
    "PriceLine",
    "PriceMatch",
    "PriceQuote",
    "PriceSheet",
    "RateBook",
    "Tier",
    "VersionSheet",
    "load_rate_book",
    "load_rate_card",
    "load_rate_card_file",
    "price_sheet",
    "rate_amount_nanos",
    "rate_book_token",
    "read_rate_card_file",
    "validate_tiers",
]
