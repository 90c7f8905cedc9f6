from slugs.make import slug


def test_simple_title():
    assert slug("Hello World") == "hello-world"


def test_punctuation_and_extra_spaces():
    assert slug("  Hello,   World!  ") == "hello-world"
