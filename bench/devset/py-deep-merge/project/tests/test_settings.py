from settings.load import DEFAULTS, effective


def test_a_top_level_value_wins():
    assert effective({"theme": "dark"})["theme"] == "dark"


def test_a_nested_value_keeps_its_siblings():
    assert effective({"editor": {"wrap": True}})["editor"] == {"tab": 4, "wrap": True}


def test_the_defaults_are_not_changed():
    effective({"editor": {"tab": 2}})
    assert DEFAULTS["editor"]["tab"] == 4
