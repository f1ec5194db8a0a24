"""The exercise checkers' machinery: verdicts, 'not yet' for unanswered cells, progress, questions."""

import pytest
import torch

from course_lib import exercises
from course_lib.exercises import answer, check, compare, exercise, progress, question


@exercise("chtest.double")
def _double(fn):
    ok = fn(3) == 6
    return ok, "doubles 3 to 6" if ok else "try returning 2 * x"


question("chtest.q", "What is 1 + 1?", [("1", False, "that is 1 + 0"), ("2", True, "yes, 1 + 1 = 2")])


def assert_rejected(result, hint: str) -> None:
    """``result`` is the checker's own "not yet" with ``hint`` in it, not a crash of the checker.

    check() turns a checker's own exception into a failing Result ("could not check this answer: ..."), so a bare
    ``not result.passed`` also holds when the checker is broken; the other chapters' tests import this helper.
    """
    assert not result.passed, result.message
    assert not result.message.startswith("could not check"), result.message
    assert hint in result.message, result.message


@pytest.fixture(autouse=True)
def fresh_progress(monkeypatch):
    monkeypatch.setattr(exercises, "_PASSED", {})


def test_check_reports_right_and_wrong_with_hint():
    assert check("chtest.double", lambda x: 2 * x).passed
    wrong = check("chtest.double", lambda x: x + 1)
    assert not wrong.passed and "try returning 2 * x" in str(wrong)


def test_unanswered_exercise_says_not_yet_instead_of_raising():
    result = check("chtest.double", ...)
    assert not result.passed and "replace the `...`" in result.message


def test_an_answer_that_raises_becomes_a_hint():
    result = check("chtest.double", lambda x: 1 / 0)
    assert not result.passed and "ZeroDivisionError" in result.message


def test_unknown_names_are_clear_errors():
    with pytest.raises(KeyError, match="unknown exercise 'chtest.nope'"):
        check("chtest.nope", 1)
    with pytest.raises(KeyError, match="no exercises for chapter 'ch99'"):
        check("ch99.anything", 1)


def test_progress_summarises_this_kernel():
    assert progress() == "no exercise checked yet in this kernel"
    check("chtest.double", lambda x: x)
    check("chtest.double", lambda x: 2 * x)
    assert progress().startswith("1 of 1 checked exercises passed")


def test_questions_explain_each_choice():
    assert answer("chtest.q", "b") == "right: yes, 1 + 1 = 2"
    assert answer("chtest.q", "A").startswith("not quite: that is 1 + 0")
    with pytest.raises(ValueError, match="from a to b"):
        answer("chtest.q", "c")
    with pytest.raises(ValueError, match="exactly one correct"):
        question("chtest.bad", "?", [("x", True, ""), ("y", True, "")])


def test_quiz_widget_explains_the_picked_choice():
    box = exercises.quiz("chtest.q")
    buttons, feedback = box.children[1], box.children[2]
    buttons.value = buttons.options[1]
    assert feedback.value.startswith("right")


def test_compare_distinguishes_exact_approximate_wrong():
    a = torch.tensor([1.0, 2.0])
    assert compare("x", a, a.clone()) == "x: exact"
    assert compare("x", a, a + 1e-7).startswith("x: approximate")
    assert compare("x", a, a + 1).startswith("x: WRONG (maxdiff 1.0e+00)")
    assert compare("x", a, a[:1]).startswith("x: WRONG shape")


FUNCTION_EXERCISES = [
    "ch00.next_char_probs", "ch01.one_hot_lookup", "ch02.scores", "ch03.split_heads", "ch04.layer_norm",
    "ch05.top_k", "ch06.merge", "ch07.baseline", "ch08.accuracy", "ch09.tokens_for", "ch10.rmsnorm",
]  # fmt: skip


@pytest.mark.parametrize("name", FUNCTION_EXERCISES)
def test_a_value_for_a_function_exercise_asks_for_the_function(name):
    result = check(name, 0.5)  # what my_fn(...) returned, not my_fn
    assert not result.passed and "pass the function itself" in result.message


def test_only_the_learners_exceptions_are_blamed_on_the_answer():
    learner = check("chtest.double", lambda x: [][1])
    assert learner.message == "your answer raised IndexError: list index out of range"
    checker = check("ch02.spread", "eight")  # float("eight") fails in the checker, not in learner code
    assert not checker.passed and checker.message.startswith("could not check this answer: ValueError")


def test_answer_accepts_a_letter_with_punctuation_and_names_the_choices_otherwise():
    for written in ("b", "B", " b) ", "(b)", "b."):
        assert answer("chtest.q", written) == "right: yes, 1 + 1 = 2"
    for wrong in (1, "bb", "", None):
        with pytest.raises(ValueError, match="choose one letter from a to b"):
            answer("chtest.q", wrong)
    with pytest.raises(KeyError, match="unknown question 'chtest.q9'; this chapter has: chtest.q"):
        answer("chtest.q9", "a")
    with pytest.raises(KeyError, match="unknown question 'ch02.q9'; this chapter has: ch02.q1, ch02.q2, ch02.q3"):
        answer("ch02.q9", "a")


def test_nonfinite_and_dtype_helpers():
    from course_lib.exercises import changed_in_place, dtype_mismatch, nonfinite

    assert nonfinite(torch.tensor([1.0, float("nan")])) == "NaN"
    assert nonfinite([0.5, float("inf")]) == "inf"
    assert nonfinite(float("nan")) == "NaN"
    assert nonfinite(torch.ones(3)) is None and nonfinite("text") is None
    hint = dtype_mismatch(torch.ones(2), torch.ones(2, dtype=torch.float64))
    assert "your result is float32; the inputs are float64" in hint
    assert dtype_mismatch(torch.ones(2), torch.ones(2)) is None
    q = torch.ones(2)
    assert changed_in_place(q=(q, q.clone())) == ""
    assert "changed its input `q` in place" in changed_in_place(q=(q * 2, q))
