from metrics.report import summary


def test_odd_count():
    assert summary([3, 1, 2], 2) == {"mean": 2, "median": 2, "reached_percent": 67}


def test_even_count():
    result = summary([4, 1, 3, 2], 3)
    assert result["median"] == 2.5
    assert result["reached_percent"] == 50
