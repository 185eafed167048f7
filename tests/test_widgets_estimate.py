"""The state functions behind lesson 15's PlannerWidget and DrillWidget (and that the widgets build)."""

import pytest

from bigtrain_lab.estimate import drills
from bigtrain_lab.estimate.planner import H100_SXM, MODELS, Assumptions, plans
from bigtrain_lab.widgets.estimate import (
    DrillWidget,
    PlannerWidget,
    check_drill_state,
    new_drill_state,
    planner_state,
)


def test_planner_state_matches_the_planner():
    s = planner_state("Llama-2 70B", nodes=8, global_batch=1024, top=5)
    found = plans(MODELS["Llama-2 70B"], H100_SXM, 8, 1024, assumptions=Assumptions())
    assert s["rows"] == [e.row() for e in found[:5]]
    assert s["n_plans"] == len(found) and s["n_fit"] == sum(e.fits for e in found)
    assert s["chosen"] == 0
    assert sum(s["components"].values()) == pytest.approx(found[0].memory_per_gpu / 2**30)
    assert s["gpus"] == 64 and s["tokens_per_step"] == 1024 * 4096
    assert "fits" in s["summary"]


def test_planner_state_custom_model_choice_and_errors():
    s = planner_state("custom", layers=4, hidden=256, heads=4, vocab=1000, seq=512, global_batch=16,
                      gpus_per_node=2, nodes=1, hardware="A100-80GB", chosen=99)
    assert s["chosen"] == len(s["rows"]) - 1  # clamped
    assert all(r["tp"] in (1, 2) and r["dp"] * r["tp"] * r["pp"] == 2 for r in s["rows"])
    none = planner_state("custom", layers=3, hidden=258, heads=3, seq=128, global_batch=1, gpus_per_node=2,
                         nodes=2)
    assert none["chosen"] is None and "no valid plan" in none["summary"]  # dp * mb cannot divide a batch of 1
    for bad in ({"model": "GPT-5"}, {"model": "custom"}, {"hardware": "TPU"}, {"nodes": 0}, {"global_batch": 0}):
        with pytest.raises(ValueError):
            planner_state(**bad)


def test_planner_widget_builds_and_follows_its_controls():
    w = PlannerWidget("Llama-2 7B", nodes=1, global_batch=64, top=4)
    assert "<table>" in w.table.value and len(w.figure.data) == 6  # 5 components + the usable-memory marker
    w.nodes.value = 2
    assert "2 x 8" in w.summary.value
    assert w.layers.disabled and w.layers.value == 32
    w.model.value = "custom"
    assert not w.layers.disabled
    w.heads.value = 3
    assert "divisible" in w.summary.value  # the error is shown, not raised
    w.model.value = "GPT-3 175B"
    assert w.layers.value == 96 and w.heads.value == 96 and w.heads.disabled


def test_drill_states(tmp_path):
    s = new_drill_state("training_flops", seed=3)
    assert s["drill"] == drills.drill("training_flops", seed=3)
    assert s["question"] == s["drill"].question and s["kind"] == "training_flops"
    assert new_drill_state("training_flops", seed=3, language="zh")["question"] == s["drill"].question_zh
    review = tmp_path / "review.json"
    right = check_drill_state(s["drill"], s["drill"].answer, path=review)
    assert right["correct"] and right["recorded"] and right["expected"] == s["drill"].answer
    wrong = check_drill_state(s["drill"], 3 * s["drill"].answer, path=review)
    assert not wrong["correct"] and wrong["recorded"] and "not right" in wrong["html"]
    unreadable = check_drill_state(s["drill"], "lots", path=review)
    assert not unreadable["correct"] and not unreadable["recorded"]
    not_recorded = check_drill_state(s["drill"], 1.0, record=False)
    assert not not_recorded["recorded"]
    with pytest.raises(ValueError):
        new_drill_state(language="fr")
    with pytest.raises(TypeError):
        check_drill_state("a drill", 1.0)


def test_drill_widget(tmp_path):
    w = DrillWidget("bubble_fraction", path=tmp_path / "review.json", seed=5)
    assert w.state["drill"] == drills.drill("bubble_fraction", seed=5)
    w.kind.value = "training_days"
    assert w.state["drill"] == drills.drill("training_days", seed=5)  # a kind's questions restart at the seed
    w.answer.value = str(w.state["drill"].answer)  # an answer entered is graded
    assert "right" in w.feedback.value
    w.kind.value = "bubble_fraction"
    state = w.next_question(seed=1)
    assert state["kind"] == "bubble_fraction" and state["question"] in w.question.value.replace("&#x27;", "'")
    w.answer.value = str(state["drill"].answer)
    out = w.grade()
    assert out["correct"] and "right" in w.feedback.value
