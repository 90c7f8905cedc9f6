"""A pytest plugin the agent loads into the user's test run: it records the parameters of each
parametrized test in the junit report, so that the model sees the inputs of a failing case and
not only its id (`test_sort[input_data1-expected1]` says nothing about the data).

Imported by the user's interpreter, so it uses nothing but pytest and the standard library.
"""

import reprlib

PROPERTY_PREFIX = "smallcoder.param."
_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxstring = _REPR.maxother = 200
_REPR.maxlist = _REPR.maxtuple = 20
_REPR.maxdict = _REPR.maxset = 10
_REPR.maxlevel = 4


def pytest_runtest_setup(item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name, value in params.items():
        item.user_properties.append((PROPERTY_PREFIX + name, _REPR.repr(value)))
