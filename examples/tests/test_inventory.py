import pytest
from inventory import Item, apply_discount, low_stock, stock_value_cents


def test_stock_value_sums_price_times_quantity():
    items = [Item("pen", 150, 4), Item("pad", 300, 2)]
    assert stock_value_cents(items) == 1200


def test_discount_takes_percent_off():
    assert apply_discount(1000, 25) == 750


def test_discount_rejects_more_than_everything():
    with pytest.raises(ValueError):
        apply_discount(1000, 120)


def test_low_stock_lists_items_under_threshold():
    items = [Item("pen", 150, 4), Item("pad", 300, 12)]
    assert low_stock(items, 5) == ["pen"]
