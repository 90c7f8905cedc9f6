from stock.levels import restock_amount


def test_nothing_to_order():
    assert restock_amount(10, 5, 4) == 0


def test_orders_whole_batches_covering_the_gap():
    ordered = restock_amount(1, 10, 4)
    assert ordered % 4 == 0
    assert 1 + ordered >= 10
