from geometry.shapes import perimeter, rectangle_area


def test_area_in_metres():
    assert rectangle_area(2, 3) == 6


def test_area_in_centimetres():
    assert abs(rectangle_area(200, 300, "cm") - 6.0) < 1e-9


def test_perimeter_in_centimetres():
    assert abs(perimeter(100, 50, "cm") - 3.0) < 1e-9
