"""Back-of-envelope drills: every kind's answer is its formula, seeds reproduce, grading and the review card."""

import datetime as dt
import json
import math

import pytest

from bigtrain_lab.estimate import formulas
from bigtrain_lab.estimate.drills import DRILL_KINDS, Drill, DrillResult, card_id, drill, parse_value
from bigtrain_lab.llm.kv_cache import kv_cache_bytes
from bigtrain_lab.quiz import review
from bigtrain_lab.quiz.review import due_drill_kinds
from bigtrain_lab.quiz.review import record_drill as record

GiB = 2 ** 30


def expected_answer(d: Drill) -> float:
    """The answer recomputed from the drill's inputs with the reference formulas."""
    x = d.inputs
    if d.kind == "training_flops":
        return formulas.training_flops(x["n_params"], x["n_tokens"])
    if d.kind == "training_days":
        return formulas.training_days(x["n_params"], x["n_tokens"], x["n_gpus"], x["peak_flops"], x["mfu"])
    if d.kind == "memory_per_gpu":
        return formulas.training_memory_per_gpu(x["n_params"], dp=x["dp"], tp=x["tp"], pp=x["pp"],
                                                zero_stage=x["zero_stage"]) / GiB
    if d.kind == "kv_cache_bytes":
        return kv_cache_bytes(n_layer=x["n_layer"], n_kv_head=x["n_kv_head"], head_dim=x["head_dim"],
                              tokens=x["tokens"], batch=x["batch"]) / GiB
    if d.kind == "allreduce_seconds":
        return formulas.allreduce_seconds(x["message_bytes"], x["n_gpus"], x["bandwidth"]) * 1e3
    if d.kind == "bubble_fraction":
        return formulas.bubble_fraction(x["num_stages"], x["num_microbatches"])
    raise AssertionError(d.kind)


@pytest.mark.parametrize("kind", DRILL_KINDS)
@pytest.mark.parametrize("seed", range(15))
def test_answer_is_the_formula(kind, seed):
    d = drill(kind, seed=seed)
    assert d.kind == kind and isinstance(d, Drill)
    assert d.answer == pytest.approx(expected_answer(d), rel=1e-12)
    assert d.answer > 0 and math.isfinite(d.answer)
    assert d.rel_tol == 0.10
    assert d.question and d.question_zh and d.question != d.question_zh
    assert d.unit in d.question or (d.unit == "fraction" and "fraction" in d.question)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in d.question_zh)  # Chinese text
    assert "=" in d.explanation


def test_realistic_ranges():
    for seed in range(40):
        days = drill("training_days", seed=seed).inputs
        assert 8 <= days["n_gpus"] <= 16384 and 0.3 <= days["mfu"] <= 0.55
        assert 1e9 <= days["n_params"] <= 400e9 * 1.02 and 20e9 <= days["n_tokens"] <= 15e12
        assert days["peak_flops"] in (989e12, 312e12)
        kv = drill("kv_cache_bytes", seed=seed).inputs
        assert kv["n_head"] % kv["n_kv_head"] == 0


def test_kv_drill_uses_kv_heads_not_query_heads():
    d = next(d for d in (drill("kv_cache_bytes", seed=s) for s in range(100)) if d.inputs["n_kv_head"] < d.inputs["n_head"])
    with_query_heads = d.answer * d.inputs["n_head"] / d.inputs["n_kv_head"]
    assert not d.grade(with_query_heads).correct
    assert "grouped-query" in d.grade(with_query_heads).message


@pytest.mark.parametrize("kind", [*DRILL_KINDS, None])
def test_seeded_drills_reproduce_and_unseeded_differ(kind):
    assert drill(kind, seed=7) == drill(kind, seed=7)
    fresh = {(d.kind, d.question) for d in (drill(kind) for _ in range(12))}
    assert len(fresh) > 1


def test_random_kind_covers_all_kinds():
    assert {drill(seed=s).kind for s in range(60)} == set(DRILL_KINDS)


@pytest.mark.parametrize("kind", DRILL_KINDS)
def test_grading_tolerance(kind):
    d = drill(kind, seed=3)
    for factor in (1.0, 1.09, 0.91):
        result = d.grade(d.answer * factor)
        assert isinstance(result, DrillResult) and result.correct, (factor, result.message)
        assert result.expected == d.answer and result.got == pytest.approx(d.answer * factor)
    for factor in (2.0, 0.5, 1.15, 1000.0, 1e-3, -1.0):
        result = d.grade(d.answer * factor)
        assert not result.correct, factor
        assert d.explanation in result.message
    assert d.grade(repr(d.answer)).correct  # a numeric string
    assert d.grade(f"{d.answer:.3e}").correct


def test_suffixes():
    kv = drill("kv_cache_bytes", seed=1)
    assert kv.grade(f"{kv.answer} GiB").correct
    assert kv.grade(f"{kv.answer * GiB / 1e9:.4f} GB").correct  # decimal gigabytes, 7 % apart
    assert kv.grade(f"{kv.answer * 1024:.1f} MiB").correct
    assert not kv.grade(f"{kv.answer * GiB:.4g} KiB").correct  # 1024 x too big
    assert parse_value("1.5 TiB", "GiB") == 1536
    ar = drill("allreduce_seconds", seed=1)
    assert ar.grade(f"{ar.answer / 1000:.6f} s").correct and ar.grade(f"{ar.answer} ms").correct
    assert not ar.grade(f"{ar.answer} s").correct  # seconds read as seconds: 1000 x off
    bubble = drill("bubble_fraction", seed=1)
    assert bubble.grade(f"{100 * bubble.answer:.2f}%").correct
    flops = drill("training_flops", seed=1)
    assert flops.grade(f"{flops.answer / 1e21:.4g} ZFLOPs").correct
    assert flops.grade(f"{flops.answer / 1e21:.4g} x 10^21").correct
    assert flops.grade(f"{flops.answer:,.0f}").correct  # commas
    days = drill("training_days", seed=1)
    assert days.grade(f"{days.answer * 24:.2f} hours").correct


@pytest.mark.parametrize("bad", ["", "abc", "12 parsecs", "1e400", "1.2.3", "GiB 3"])
def test_unreadable_answer_says_what_to_write(bad):
    d = drill("kv_cache_bytes", seed=0)
    result = d.grade(bad)
    assert not result.correct and result.got is None
    assert "GiB" in result.message
    with pytest.raises(ValueError):
        parse_value(bad, "GiB")


@pytest.mark.parametrize("bad", [None, [1.0], True, {"x": 1}])
def test_wrong_type_raises(bad):
    with pytest.raises(TypeError, match="number or a numeric string"):
        drill("training_flops", seed=0).grade(bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="one of training_flops"):
        drill("flops")
    with pytest.raises(TypeError, match="seed"):
        drill("training_flops", seed="1")
    with pytest.raises(ValueError):
        card_id("nope")


def test_record_writes_the_drill_card(tmp_path):
    path = tmp_path / "review.json"
    d = drill("bubble_fraction", seed=0)
    day = dt.date(2026, 1, 5)
    card = record(d, d.grade(d.answer), path=path, on=day)
    assert card.box == 2 and card.hits == 1
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert "drill:bubble_fraction" in json.dumps(stored)
    assert review.load_cards(path)["drill:bubble_fraction"].box == 2
    card = record(d, d.grade(d.answer * 2), path=path, on=day)  # a miss: back to box 1, due the same day
    assert card.box == 1 and card.misses == 1 and card.due == day
    assert record(d, d.grade("what?"), path=path, on=day) is None  # unreadable: not an attempt
    assert review.load_cards(path)["drill:bubble_fraction"].misses == 1
    with pytest.raises(TypeError):
        record(d, True, path=path)


def test_record_defaults_to_the_isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("BIGTRAIN_LAB_HOME", str(tmp_path / "home"))
    d = drill("training_flops", seed=0)
    record(d, d.grade(d.answer))
    assert "drill:training_flops" in review.load_cards(tmp_path / "home" / "review.json")


def test_missed_kinds_come_back_first(tmp_path):
    path = tmp_path / "review.json"
    day = dt.date(2026, 1, 5)
    hit, miss = drill("training_days", seed=1), drill("allreduce_seconds", seed=2)
    record(hit, hit.grade(hit.answer), path=path, on=day)
    assert due_drill_kinds(path, on=day) == []  # a hit is due again in a day, not today
    record(miss, miss.grade(miss.answer * 1000), path=path, on=day)
    assert due_drill_kinds(path, on=day) == ["allreduce_seconds"]
    assert due_drill_kinds(path, on=day + dt.timedelta(days=1)) == ["allreduce_seconds", "training_days"]
    from bigtrain_lab.widgets.estimate import new_drill_state

    assert new_drill_state(None, seed=0, due_first=True, path=path)["kind"] == "allreduce_seconds"
