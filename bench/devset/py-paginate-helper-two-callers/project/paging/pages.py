from paging.count import page_count


def pages(items: list, per_page: int) -> list[list]:
    return [items[i * per_page:(i + 1) * per_page] for i in range(page_count(len(items), per_page))]


def last_page(items: list, per_page: int) -> list:
    count = page_count(len(items), per_page)
    return items[(count - 1) * per_page:] if count else []
