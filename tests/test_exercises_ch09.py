"""Chapter 09's checkers accept right answers, agree with course_lib.scaling, and catch the typical mistakes."""

import math

from test_exercises import assert_rejected

from course_lib import exercises
from course_lib.exercises import answer, check
from course_lib.scaling import fit_power_law


def _alpha(n1, l1, n2, l2):
    return -math.log(l2 / l1) / math.log(n2 / n1)


def test_two_point_exponent():
    assert check("ch09.two_point_exponent", _alpha).passed
    assert check("ch09.two_point_exponent", lambda *p: fit_power_law(p[0::2], p[1::2]).alpha).passed
    sign = check("ch09.two_point_exponent", lambda *p: -_alpha(*p))
    assert not sign.passed and "sign" in sign.message
    linear = check("ch09.two_point_exponent", lambda n1, l1, n2, l2: (l1 - l2) / (n2 - n1))
    assert not linear.passed and "linear" in linear.message
    assert "None" in check("ch09.two_point_exponent", lambda *p: None).message


def test_chinchilla_compute():
    assert check("ch09.chinchilla_compute", 5.88e23).passed
    forward = check("ch09.chinchilla_compute", 2 * 70e9 * 1.4e12)
    assert not forward.passed and "forward" in forward.message
    assert_rejected(check("ch09.chinchilla_compute", 70e9 * 1.4e12), "multiply 6 by the parameter count")


def test_tokens_for():
    assert check("ch09.tokens_for", lambda n: 20 * n).passed
    one = check("ch09.tokens_for", lambda n: n)
    assert not one.passed and "20" in one.message
    assert_rejected(check("ch09.tokens_for", lambda n: 200 * n), "(200.0 per parameter); aim for about 20")


def test_exact_from_digits():
    assert check("ch09.exact_from_digits", lambda p, k: p**k).passed
    added = check("ch09.exact_from_digits", lambda p, k: p * k)
    assert not added.passed and "multiply" in added.message
    assert_rejected(check("ch09.exact_from_digits", lambda p, k: p), "all k digits must be right")


def test_not_yet_and_questions():
    assert "replace the `...`" in check("ch09.exact_from_digits", ...).message
    assert answer("ch09.q1", "b").startswith("right")
    assert answer("ch09.q1", "a").startswith("not quite")
    assert answer("ch09.q2", "b").startswith("right")
    assert answer("ch09.q3", "b").startswith("right")
    assert all(answer("ch09.q3", wrong).startswith("not quite") for wrong in "ac")
    right = exercises._question("ch09.q3").choices[1]  # the text the learner picks, not only its explanation
    assert right.correct and "10 ** -0.076" in right.text
    assert f"about {10**-0.076:.2f} of what it was" in right.text  # 0.84: the quoted factor is the right one
