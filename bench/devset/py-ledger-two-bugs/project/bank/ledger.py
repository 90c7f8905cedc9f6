from bank.account import Account


def balance(account: Account) -> int:
    total = 0
    for kind, cents in account.entries:
        total += cents
    return total
