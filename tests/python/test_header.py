"""errors.py against include/privline.h: every ``PRIVLINE_RESULT_*`` of the
header has exactly one exception class with that ``result`` and ``name``,
and every class that claims a C result is in the header. A result added in
C fails here until the binding has its class."""

from __future__ import annotations

import inspect
import re

import pytest

import privline
from privline import errors


def _header_results(header_text):
    """``{name: value}`` of the ``enum privline_result`` block, parsed from
    the header text (comments removed)."""
    body = re.sub(r"//[^\n]*|/\*.*?\*/", "", header_text, flags=re.S)
    block = re.search(r"enum\s+privline_result\b[^{]*\{(.*?)\};", body, re.S)
    assert block, "enum privline_result not found in include/privline.h"
    found = {}
    for name, value in re.findall(r"\b(PRIVLINE_RESULT_\w+)\s*=\s*(\d+)\s*,?", block.group(1)):
        assert name not in found, f"{name} twice in the header"
        found[name] = int(value)
    # Nothing in the block escaped the pattern (a value written otherwise).
    assert len(found) == len(re.findall(r"\bPRIVLINE_RESULT_\w+", block.group(1)))
    return found


def _result_classes():
    """Every exception class of privline.errors that stands for a C result."""
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.Error) and cls.__module__ == errors.__name__ and cls.result is not None
    ]


def test_the_header_has_the_results_this_test_knows_of(header_text):
    results = _header_results(header_text)
    assert results["PRIVLINE_RESULT_OK"] == 0
    assert results["PRIVLINE_RESULT_BUSY"] == 8
    assert len(set(results.values())) == len(results), "two results share a value"


def test_every_header_result_has_exactly_one_class(header_text):
    results = _header_results(header_text)
    classes = _result_classes()
    for name, value in results.items():
        if value == 0:
            continue  # OK is no error
        matching = [cls for cls in classes if cls.result == value]
        assert len(matching) == 1, f"{name} = {value}: classes {matching} (add one to privline/errors.py)"
        cls = matching[0]
        assert cls.name == name, f"{cls.__name__}.name is {cls.name!r}, the header says {name!r}"
        assert privline.error_class(value) is cls
        assert getattr(privline, cls.__name__) is cls
        assert cls.__name__ in privline.__all__ and cls.__name__ in errors.__all__


def test_every_result_class_is_in_the_header(header_text):
    results = _header_results(header_text)
    by_value = {value: name for name, value in results.items()}
    for cls in _result_classes():
        assert cls.result in by_value, f"{cls.__name__}.result = {cls.result} is not in include/privline.h"
        assert by_value[cls.result] == cls.name, cls
    assert sorted(errors.ERRORS_BY_RESULT) == sorted(v for v in results.values() if v)
    names = [cls.name for cls in _result_classes()]
    assert len(names) == len(set(names))


def test_a_new_result_would_fail(header_text):
    """The check itself: a header with one more result has no class."""
    extra = header_text.replace(
        "PRIVLINE_RESULT_OK = 0,", "PRIVLINE_RESULT_OK = 0,\n    PRIVLINE_RESULT_SOMETHING_NEW = 99,"
    )
    with pytest.raises(AssertionError, match="SOMETHING_NEW"):
        test_every_header_result_has_exactly_one_class(extra)


def test_invalid_argument_is_also_a_value_error():
    assert issubclass(privline.InvalidArgument, ValueError)
    assert issubclass(privline.InvalidArgument, privline.Error)
    assert issubclass(privline.Truncated, EOFError) and issubclass(privline.Timeout, TimeoutError)
    with pytest.raises(ValueError):
        raise privline.error_from_result(privline.InvalidArgument.result)


def test_sizes_come_from_the_library(header_text):
    """The binding's sizes are the library's (privline_*_len); the three
    SHS1 sizes the header defines without a function equal its defines."""
    defines = {name: int(value) for name, value in re.findall(r"#define PRIVLINE_(\w+_LEN) (\d+)", header_text)}
    lib = privline._lib.lib()
    for name, value in defines.items():
        function = getattr(lib, f"privline_{name.lower()}", None)
        if function is not None:
            assert function() == value == getattr(privline, name), name
        else:
            assert getattr(privline, name) == value, name
    assert privline.IDENTITY_KEYPAIR_LEN == lib.privline_seed_len() + lib.privline_public_key_len()
