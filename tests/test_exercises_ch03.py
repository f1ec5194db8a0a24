"""Chapter 03's checkers accept right answers, reject the classic wrong ones with the matching hint."""

import pytest
from einops import rearrange
from test_exercises import assert_rejected

from course_lib import exercises
from course_lib.exercises import answer, check


@pytest.fixture(autouse=True)
def fresh_progress(monkeypatch):
    monkeypatch.setattr(exercises, "_PASSED", {})


def test_split_heads():
    assert check("ch03.split_heads", lambda x, nh: rearrange(x, "b t (h d) -> b h t d", h=nh)).passed
    plain = check("ch03.split_heads", lambda x, nh: x.reshape(x.shape[0], nh, x.shape[1], -1))
    assert not plain.passed and "mixes channels" in plain.message
    interleaved = check("ch03.split_heads", lambda x, nh: rearrange(x, "b t (d h) -> b h t d", h=nh))
    assert not interleaved.passed and "wrong places" in interleaved.message
    assert "returned None" in check("ch03.split_heads", lambda x, nh: None).message


def test_merge_heads():
    assert check("ch03.merge_heads", lambda y: rearrange(y, "b h t d -> b t (h d)")).passed
    plain = check("ch03.merge_heads", lambda y: y.reshape(y.shape[0], y.shape[2], -1))
    assert not plain.passed and "transpose(1, 2)" in plain.message
    wrong_order = check("ch03.merge_heads", lambda y: rearrange(y, "b h t d -> b t (d h)"))
    assert not wrong_order.passed and "order" in wrong_order.message


def test_n_params():
    assert check("ch03.n_params", 2_362_368).passed
    assert "bias" in check("ch03.n_params", 4 * 768 * 768).message
    assert "c_proj" in check("ch03.n_params", 3 * 768 * 768 + 3 * 768).message
    assert "split the C channels" in check("ch03.n_params", 12 * 2_362_368).message
    assert_rejected(check("ch03.n_params", 1), "count the fused q/k/v projection")


def test_kv_cache_bytes():
    assert check("ch03.kv_cache_bytes", 75_497_472).passed
    assert "keys and the values" in check("ch03.kv_cache_bytes", 75_497_472 // 2).message
    assert "4 bytes" in check("ch03.kv_cache_bytes", 75_497_472 // 4).message
    assert "12 layers" in check("ch03.kv_cache_bytes", 75_497_472 // 12).message
    assert_rejected(check("ch03.kv_cache_bytes", 0), "multiply: (key + value) x layers")


@pytest.mark.parametrize("name, right", [("ch03.q1", "b"), ("ch03.q2", "a"), ("ch03.q3", "b")])
def test_questions_have_one_right_choice(name, right):
    assert answer(name, right).startswith("right")
    for letter in "abc":
        if letter != right:
            assert answer(name, letter).startswith("not quite")


def test_kv_cache_bytes_half_size_names_both_causes():
    half = check("ch03.kv_cache_bytes", 2 * 768 * 12 * 1024 * 2)  # float16: 2 bytes per number
    assert not half.passed and "keys and the values" in half.message and "4 bytes" in half.message
