def discounted(price_cents: int, percent: int) -> int:
    """The price after taking `percent` off, rounded down to a cent."""
    if not 0 <= percent <= 100:
        raise ValueError("percent must be between 0 and 100")
    return price_cents * percent // 100
