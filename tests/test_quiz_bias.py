"""No answer-position or answer-length strategy beats chance on the quiz as the learner sees it.

Over 200 seeded draws of the whole bank, for every single-answer question, the strategies "always the
first choice", "always the last" and "always the longest" (by characters of the shown text, the first
longest on a tie) must score at most chance + 0.10, in English and in Chinese; chance is the mean of
1 / number of choices. First and last are defeated by the shuffle; "longest" depends on the bank's
content (the shuffle cannot change which choice is longest). The measurement is shown to fail on a bank
whose right answer is always first when the choices are not shuffled.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import MappingProxyType

import pytest

from bigtrain_lab.quiz import draw, load_bank, shuffle_choices
from bigtrain_lab.quiz.bank import LANGS, Question

SEEDS = range(200)
MARGIN = 0.10
Strategy = Callable[[Sequence[str]], int]

STRATEGIES: dict[str, Strategy] = {
    "first": lambda choices: 0,
    "last": lambda choices: len(choices) - 1,
    "longest": lambda choices: max(range(len(choices)), key=lambda k: len(choices[k])),
}


def single_answer(questions: Sequence[Question]) -> list[Question]:
    return [q for q in questions if q.is_quiz and not q.multiple]


def measure(draws: Callable[[int], Sequence[Question]], strategy: Strategy, lang: str) -> tuple[float, float]:
    """(score of ``strategy``, chance) over the single-answer questions of every seed's draw."""
    hits = chance = total = 0.0
    for seed in SEEDS:
        for q in single_answer(draws(seed)):
            assert q.choices is not None
            shown = q.choices[lang]
            hits += strategy(shown) == q.correct[0]
            chance += 1 / len(shown)
            total += 1
    assert total, "no single-answer questions drawn"
    return hits / total, chance / total


@functools.cache
def shown_bank(seed: int) -> tuple[Question, ...]:
    """What the learner sees: the whole bank, drawn and shuffled with ``seed``."""
    return tuple(draw(None, None, seed, choices_only=True))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", ["first", "last"])
def test_position_strategies_score_no_better_than_chance(name, lang):
    score, chance = measure(shown_bank, STRATEGIES[name], lang)
    print(f"\n{name} ({lang}): {score:.3f} vs chance {chance:.3f}")
    assert score <= chance + MARGIN, f"always the {name} choice scores {score:.1%} ({lang}); chance {chance:.1%}"


@pytest.mark.parametrize("lang", LANGS)
def test_longest_choice_scores_no_better_than_chance(lang):
    """Depends on the bank's content: the right answer must not stand out by its length."""
    score, chance = measure(shown_bank, STRATEGIES["longest"], lang)
    print(f"\nlongest ({lang}): {score:.3f} vs chance {chance:.3f}")
    longest = [q.id for q in single_answer(load_bank())
               if STRATEGIES["longest"](q.choices[lang]) == q.correct[0]]
    assert score <= chance + MARGIN, (
        f"always the longest choice scores {score:.1%} ({lang}); chance {chance:.1%}. The right answer is the "
        f"longest choice in {len(longest)} entries: {', '.join(longest)}")


def right_answer_first(q: Question) -> Question:
    """``q`` with its right choice moved to the front: the worst case of an unshuffled bank."""
    assert q.choices is not None
    order = [q.correct[0], *(k for k in range(len(q.choices["en"])) if k != q.correct[0])]
    return replace(q, choices=MappingProxyType({lang: tuple(q.choices[lang][k] for k in order) for lang in LANGS}),
                   correct=(0,))


def test_the_measurement_catches_an_unshuffled_biased_bank():
    biased = [right_answer_first(q) for q in single_answer(load_bank())]

    def unshuffled(seed: int) -> list[Question]:
        return random.Random(seed).sample(biased, len(biased))  # the old draw: questions shuffled, choices not

    def shuffled(seed: int) -> list[Question]:
        rng = random.Random(seed)
        return [shuffle_choices(q, rng) for q in rng.sample(biased, len(biased))]

    first, chance = measure(unshuffled, STRATEGIES["first"], "en")
    assert first == 1.0 and first > chance + MARGIN
    assert measure(unshuffled, STRATEGIES["last"], "zh")[0] == 0.0
    first_shuffled, _ = measure(shuffled, STRATEGIES["first"], "en")
    assert first_shuffled <= chance + MARGIN


def test_the_bank_order_itself_is_not_what_the_learner_sees():
    """The right answer lands in every position: over the seeds, each position of a 4-choice question is
    right between 15% and 35% of the time."""
    q = next(q for q in single_answer(load_bank()) if len(q.choices["en"]) == 4)
    positions = [next(p for p in shown_bank(seed) if p.id == q.id).correct[0] for seed in SEEDS]
    for k in range(4):
        assert 0.15 <= positions.count(k) / len(positions) <= 0.35, (k, positions.count(k))
