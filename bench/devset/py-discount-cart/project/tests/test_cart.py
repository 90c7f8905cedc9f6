from shop.cart import Cart


def make_cart() -> Cart:
    cart = Cart()
    cart.add("pen", 150, 2)
    cart.add("book", 1200)
    return cart


def test_total_without_discount():
    assert make_cart().total() == 1500


def test_ten_percent_off():
    assert make_cart().total(10) == 135 * 2 + 1080
