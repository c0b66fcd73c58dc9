"""The shared argument checks (``sofgan_lab._validate``): what they accept, what they refuse, and that a
wrong type is both a ``TypeError`` and a ``ValueError`` (callers and tests that catch either keep working)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sofgan_lab._validate import ArgumentTypeError, check_bool, check_finite_tensor, check_int, check_number


@pytest.mark.parametrize("value, want", [(3, 3), (np.int64(3), 3), (np.uint8(3), 3), (torch.tensor(3), 3),
                                         (np.array(3), 3), (2 ** 70, 2 ** 70)])
def test_check_int_accepts_integers_of_every_kind(value, want):
    got = check_int(value, "n")
    assert got == want and type(got) is int


@pytest.mark.parametrize("value", [True, 2.0, 2.7, "3", None, torch.tensor(3.0), np.float64(3), [3], 3j])
def test_check_int_refuses_other_types_as_type_and_value_errors(value):
    with pytest.raises(ArgumentTypeError, match=r"^n: expected an integer in 0\.\.5, got ") as info:
        check_int(value, "n", 0, 5)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_check_int_ranges():
    assert check_int(0, "n", 0) == 0
    for v, lo, hi, text in [(-1, 0, None, ">= 0"), (6, 0, 5, "in 0..5"), (6, None, 5, "<= 5")]:
        with pytest.raises(ValueError, match=f"n: expected an integer {text}, got {v}") as info:
            check_int(v, "n", lo, hi)
        assert not isinstance(info.value, TypeError)


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.int8(1), torch.tensor(0.5), np.array(0.25)])
def test_check_number_accepts_reals_of_every_kind(value):
    got = check_number(value, "x", 0, 1)
    assert type(got) is float and 0 <= got <= 1


@pytest.mark.parametrize("value, exc", [(math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError),
                                        (10 ** 400, ValueError), (True, TypeError), ("1", TypeError),
                                        (None, TypeError), (1j, TypeError), (torch.ones(2), TypeError)])
def test_check_number_refuses_non_finite_and_non_numbers(value, exc):
    with pytest.raises(exc, match="^x: expected a finite number"):
        check_number(value, "x")


def test_check_number_bounds():
    assert check_number(0.0, "x", 0) == 0.0
    with pytest.raises(ValueError, match=r"x: expected a finite number > 0, got 0.0"):
        check_number(0.0, "x", 0, low_open=True)
    with pytest.raises(ValueError, match=r"x: expected a number in \[0, 1\], got 1.5"):
        check_number(1.5, "x", 0, 1)
    with pytest.raises(ValueError, match=r"x: expected a number in \[0, 1\), got 1.0"):
        check_number(1.0, "x", 0, 1, high_open=True)


def test_check_bool_and_finite_tensor():
    assert check_bool(np.bool_(True), "flag") is True
    with pytest.raises(TypeError, match="flag: expected True or False, got 1 \\(int\\)"):
        check_bool(1, "flag")
    t = torch.zeros(3)
    assert check_finite_tensor(t, "t") is t
    assert check_finite_tensor(torch.zeros(2, dtype=torch.long), "t") is not None
    with pytest.raises(ValueError, match=r"t: contains NaN or infinite values \(2 of 3\)"):
        check_finite_tensor(torch.tensor([0.0, math.nan, math.inf]), "t")


def test_messages_are_one_line_and_short():
    with pytest.raises(TypeError) as info:
        check_number("a" * 10_000 + "\n", "x")
    assert len(str(info.value)) < 200


def test_check_finite_tensor_bound():
    check_finite_tensor(torch.full((2,), 1e6), "z", 1e6)
    with pytest.raises(ValueError, match=r"z: values must lie within ±1e\+06, got one of magnitude 2e\+06"):
        check_finite_tensor(torch.tensor([0.0, -2e6]), "z", 1e6)
