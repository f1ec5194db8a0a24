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
