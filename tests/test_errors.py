"""Every bad call in tests/error_cases.py raises its exception, with a message naming op, rule and values."""
import re

import pytest

from error_cases import TABLES

ROWS = [(family, case) for family, table in TABLES.items() for case in table]


@pytest.mark.parametrize("family, case", ROWS, ids=[f"{family}: {case.id}" for family, case in ROWS])
def test_bad_call_raises_a_precise_error(family, case):
    with pytest.raises(case.error) as raised:
        case.call()
    # The exact type, not a subclass that happens to match (FormatError is a ValueError, for instance).
    assert type(raised.value) is case.error, f"{type(raised.value).__name__}: {raised.value}"
    message = str(raised.value)
    assert re.search(case.match, message), f"message {message!r} does not match {case.match!r}"


def test_tables_are_well_formed():
    for family, table in TABLES.items():
        assert len(table) >= 7, f"{family}: a family needs more than a token table"
        ids = [case.id for case in table]
        assert len(set(ids)) == len(ids), f"{family}: duplicate ids"
        for case in table:
            # Anchored at the op's name (or the exit status, for the command line), so a message
            # that stops naming its op fails.
            assert case.match.startswith("^") or family == "load_state_dict", (family, case.id)
            assert issubclass(case.error, Exception)
