from dates.days import days_in_month, days_in_year


def test_february_in_a_leap_year():
    assert days_in_month(2024, 2) == 29


def test_a_century_is_not_leap():
    assert days_in_year(1900) == 365


def test_every_four_centuries_is_leap():
    assert days_in_month(2000, 2) == 29
    assert days_in_year(2000) == 366
