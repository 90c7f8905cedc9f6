from dates.leap import is_leap

DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def days_in_month(year: int, month: int) -> int:
    if month == 2 and is_leap(year):
        return 29
    return DAYS[month - 1]


def days_in_year(year: int) -> int:
    return 366 if is_leap(year) else 365
