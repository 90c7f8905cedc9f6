from linalg.matrix import transpose


def multiply(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    columns = transpose(b)
    return [[sum(x * y for x, y in zip(row, column)) for column in columns] for row in a]
