import pytest

from bank.account import Account
from bank.ledger import balance


def test_deposits_add_up():
    account = Account("ada")
    account.deposit(500)
    account.deposit(250)
    assert balance(account) == 750


def test_withdrawals_subtract():
    account = Account("ada")
    account.deposit(500)
    account.withdraw(200)
    assert balance(account) == 300


def test_a_negative_deposit_is_refused():
    account = Account("ada")
    with pytest.raises(ValueError):
        account.deposit(-5)
