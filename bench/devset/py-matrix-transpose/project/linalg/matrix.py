def transpose(rows: list[list[float]]) -> list[list[float]]:
    return [[rows[j][i] for j in range(len(rows))] for i in range(len(rows))]
