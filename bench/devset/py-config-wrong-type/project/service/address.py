from service.config import parse


def address(text: str) -> str:
    settings = parse(text)
    return f"{settings.get('host', 'localhost')}:{settings.get('port', 80)}"


def next_port(text: str) -> int:
    return parse(text).get("port", 80) + 1
