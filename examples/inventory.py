"""A tiny stock-keeping module: items, their prices and what the shop holds."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    name: str
    unit_price_cents: int
    quantity: int


def stock_value_cents(items: list[Item]) -> int:
    """Return what the whole stock is worth, in cents."""
    return sum(item.unit_price_cents * item.quantity for item in items)


def apply_discount(price_cents: int, percent: int) -> int:
    """Return the price after taking `percent` percent off, rounded down to a cent."""
    if not 0 <= percent <= 100:
        raise ValueError(f"discount must be between 0 and 100, got {percent}")
    return price_cents * percent // 100


def low_stock(items: list[Item], threshold: int) -> list[str]:
    """Return the names of the items of which fewer than `threshold` are left."""
    return [item.name for item in items if item.quantity < threshold]
