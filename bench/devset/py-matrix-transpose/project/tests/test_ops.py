from linalg.matrix import transpose
from linalg.ops import multiply


def test_square():
    assert multiply([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]


def test_rectangular():
    assert multiply([[1, 2, 3]], [[1], [2], [3]]) == [[14]]


def test_transpose_of_a_row():
    assert transpose([[1, 2, 3]]) == [[1], [2], [3]]
