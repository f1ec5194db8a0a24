"""The bag-of-words baseline: its features, its optimum (checked with float64 Newton steps) and its errors."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.baselines import train_bag_of_words, words

TEXTS = ["a good film", "good , good fun", "a bad film", "bad and dull", "dull but good", "not good at all"]
LABELS = [1, 1, 0, 0, 1, 0]


def test_words_lowercase_and_split_punctuation():
    assert words("It isn't GOOD, really!") == ["it", "isn't", "good", ",", "really", "!"]


def test_optimum_matches_float64_newton():
    """The same convex objective minimised independently: dense float64 features and Newton's method."""
    l2 = 1e-2
    model = train_bag_of_words(TEXTS, LABELS, min_count=1, l2=l2)
    V, K = len(model.vocab), 2
    X = torch.zeros(len(TEXTS), V, dtype=torch.float64)  # presence of each word, built without the library
    for row, text in enumerate(TEXTS):
        for w in set(text.lower().split()):
            X[row, model.vocab[w]] = 1.0
    y = torch.tensor(LABELS)
    theta = torch.zeros(V * K + K, dtype=torch.float64)

    def objective(t):
        W, b = t[: V * K].view(V, K), t[V * K :]
        return F.cross_entropy(X @ W + b, y) + l2 * W.pow(2).sum()

    for _ in range(30):
        g = torch.autograd.functional.jacobian(objective, theta)
        H = torch.autograd.functional.hessian(objective, theta)
        theta = theta - torch.linalg.lstsq(H, g).solution  # the softmax's shift symmetry makes H singular
    W, b = theta[: V * K].view(V, K), theta[V * K :]
    # scores are defined up to a constant per sentence (softmax); compare the score differences
    ours = model.scores(TEXTS).double()
    ref = X @ W + b
    assert torch.allclose(ours[:, 1] - ours[:, 0], ref[:, 1] - ref[:, 0], atol=1e-3)
    assert model.predict(TEXTS).tolist() == LABELS


def test_unknown_words_are_ignored_and_top_words():
    model = train_bag_of_words(TEXTS, LABELS, min_count=2)
    assert "fun" not in model.vocab  # seen once
    assert torch.equal(model.scores(["fun"]), model.bias[None])  # nothing known: the bias alone
    assert model.top_words(1, k=1)[0][0] == "good"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(texts=["a"], labels=[0, 1]), "as many labels"),
        (dict(texts=["a", "b"], labels=[0, 2]), "labels must be in 0..1"),
        (dict(texts=["a", "b"], labels=[0, 1], min_count=0), "min_count"),
        (dict(texts=["a", "b"], labels=[0, 1], l2=-1.0), "l2"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_bag_of_words(**kwargs)


def test_one_string_is_not_a_list_of_texts():
    """A bare str would be read as one text per character."""
    model = train_bag_of_words(TEXTS, LABELS)
    with pytest.raises(
        TypeError, match=r"texts must be a list of strings, got one str; for one sentence use predict\("
    ):
        model.predict("a good film")
    with pytest.raises(TypeError, match=r"for one sentence use scores\(\[text\]\)"):
        model.scores("a good film")
    with pytest.raises(TypeError, match=r"texts\[1\] is a list"):
        model.predict(["a good film", [1, 2]])
    with pytest.raises(TypeError, match="texts must be a list of strings, got one str"):
        train_bag_of_words("good", [0, 1, 0, 1])


@pytest.mark.parametrize(
    "labels, message",
    [
        (["pos", "neg"], "labels must be class ids 0..K-1, got 'pos' .* map them to ids first"),
        ([0.7, 0.2], r"labels must be class ids 0..K-1, got 0.7 \(a float\)"),  # would be truncated to 0, 0
        (torch.tensor([1.0, 0.0]), "got a 1-D torch.float32 tensor"),
    ],
)
def test_labels_must_be_class_ids(labels, message):
    with pytest.raises(TypeError, match=message):
        train_bag_of_words(["good", "bad"], labels)
