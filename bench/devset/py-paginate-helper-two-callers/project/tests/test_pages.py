from paging.pages import last_page, pages


def test_exact_pages():
    assert pages([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]


def test_a_partial_last_page_is_a_page():
    assert pages([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_last_page_holds_the_rest():
    assert last_page([1, 2, 3, 4, 5], 2) == [5]


def test_no_items_no_pages():
    assert pages([], 3) == []
