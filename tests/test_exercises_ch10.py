"""Chapter 10's checkers accept right answers, including in-place ones, and explain dtype mistakes."""

import numpy as np
import pytest
import torch
from test_exercises import assert_rejected

from course_lib.exercises import answer, check


def rms_norm(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def dequantize(raw):
    d, m = raw[0:2].view(np.float16)[0].astype(np.float32), raw[2:4].view(np.float16)[0].astype(np.float32)
    codes = np.concatenate([raw[4:20] & 0x0F, raw[4:20] >> 4])
    return d * codes + m


def test_rmsnorm_right_in_place_and_wrong():
    assert check("ch10.rmsnorm", rms_norm).passed

    def in_place(x, weight, eps):
        x *= torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return x * weight

    assert check("ch10.rmsnorm", in_place).passed
    no_eps = check("ch10.rmsnorm", lambda x, w, eps: x / x.pow(2).mean(-1, keepdim=True).sqrt() * w)
    assert not no_eps.passed and "inside the square root" in no_eps.message
    f32 = check("ch10.rmsnorm", lambda x, w, eps: rms_norm(x.float(), w.float(), eps))
    assert not f32.passed and "your result is float32; the inputs are float64" in f32.message
    nan = check("ch10.rmsnorm", lambda x, w, eps: torch.full_like(x, float("nan")))
    assert not nan.passed and "contains NaN" in nan.message


def test_q4_1_block_right_and_float16_arithmetic():
    pytest.importorskip("gguf")
    assert check("ch10.q4_1_block", dequantize).passed

    def in_float16(raw):
        d, m = raw[0:2].view(np.float16)[0], raw[2:4].view(np.float16)[0]
        return (d * np.concatenate([raw[4:20] & 0x0F, raw[4:20] >> 4]) + m).astype(np.float32)

    result = check("ch10.q4_1_block", in_float16)
    assert not result.passed and "convert d and m to float32 before multiplying" in result.message


def test_numbers():
    assert check("ch10.swiglu_params", 3 * 576 * 1536).passed
    assert_rejected(check("ch10.swiglu_params", 2 * 576 * 1536), "SwiGLU has three matrices")
    assert check("ch10.kv_cache_mb", 30 * 2 * 3 * 64 * 2 * 2048 / 1e6).passed
    assert_rejected(check("ch10.kv_cache_mb", float("nan")), "the KV cache in MB is nan, which is not right")


def test_questions_have_one_right_answer_each():
    for name, right in [("ch10.q1", "b"), ("ch10.q2", "b"), ("ch10.q3", "b")]:
        assert answer(name, right).startswith("right")
        for wrong in "abcd".replace(right, ""):
            assert answer(name, wrong).startswith("not quite")
