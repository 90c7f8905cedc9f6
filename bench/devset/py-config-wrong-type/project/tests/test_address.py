from service.address import address, next_port
from service.config import parse

CONFIG = "host = example.org\nport = 8080  # the public port\n"


def test_address():
    assert address(CONFIG) == "example.org:8080"


def test_the_port_is_a_number():
    assert parse(CONFIG)["port"] == 8080


def test_next_port():
    assert next_port(CONFIG) == 8081
