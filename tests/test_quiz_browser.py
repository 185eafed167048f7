"""The quiz in a real JupyterLab, in headless Chromium: a notebook calls ``quiz("metrics", n=2, seed=SEED)``;
the test clicks the right choice of the first question (its letter read from ``draw`` with the same seed)
and sees "correct", then a wrong choice of the second and sees "wrong", and finds both answers in the
review schedule of the server's ``$BIGTRAIN_LAB_HOME``.

The seed is one whose first question has its right answer at another position than in the bank, so a
widget that showed (or graded) the bank's order instead of the shuffled one would fail this test.
Skipped like tests/test_browser.py where Playwright or /usr/bin/chromium is absent; one server, one page.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from bigtrain_lab.quiz import draw, get_question
from bigtrain_lab.quiz.bank import Question
from tests.jupyterlab_driver import JupyterLabServer, NotebookPage, launch_chromium, skip_reason

SKIP_REASON = skip_reason()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=f"browser test skipped: {SKIP_REASON}"),
]
TOPIC = "metrics"
NOTEBOOK = "quiz_drill.ipynb"


def pick_seed() -> tuple[int, list[Question]]:
    """The first seed whose two drawn questions are single-answer and whose first question's right choice
    is shown at another position than the bank's."""
    for seed in range(1000):
        qs = draw(TOPIC, 2, seed)
        if all(q.is_quiz and not q.multiple for q in qs) and qs[0].correct != get_question(qs[0].id).correct:
            return seed, qs
    raise AssertionError("no suitable seed")


def write_notebook(path: Path, seed: int) -> None:
    source = f'from bigtrain_lab.quiz import quiz\n\nquiz(topic="{TOPIC}", n=2, seed={seed})'
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "quiz-cell", "metadata": {},
                   "outputs": [], "source": source.splitlines(keepends=True)}],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                    "name": "python3"}, "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("`", "").replace("**", "")).strip()


def wait_for(locator, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if locator.count():
            return
        time.sleep(0.2)
    raise AssertionError(f"did not see {what} within {timeout:.0f} s")


def answer(output, question: Question, choice: int, expected: str) -> str:
    """Click the choice ``choice`` (by its letter) and Submit; wait for the ``expected`` verdict."""
    wait_for(output.locator(f".bt-quiz-question[data-id='{question.id}']"), f"question {question.id}")
    letter = chr(ord("A") + choice)
    output.locator("button.widget-toggle-button", has_text=re.compile(rf"^\s*{letter}\s*$")).click()
    output.locator("button", has_text=re.compile(r"^\s*Submit\s*$")).click()
    feedback = output.locator(".bt-quiz-feedback")
    wait_for(feedback, f"feedback on {question.id}")
    status = feedback.first.get_attribute("data-status")
    assert status == expected, f"{question.id}: clicked {letter}, got {status!r}, expected {expected!r}"
    return feedback.first.inner_text()


def test_answer_shuffled_questions_in_jupyterlab(tmp_path_factory, tmp_path):
    from playwright.sync_api import sync_playwright

    seed, (first, second) = pick_seed()
    root = tmp_path_factory.mktemp("quiz-lab-root")
    write_notebook(root / NOTEBOOK, seed)
    with JupyterLabServer(root, tmp_path_factory.mktemp("quiz-lab-state")) as server, \
            sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        lab = NotebookPage(page, server)
        try:
            lab.open(NOTEBOOK)
            lab.run_all(1)
            output = page.locator(".jp-OutputArea-output", has=page.locator(".bt-quiz-question"))
            wait_for(output, "the quiz widget")
            lab.check_no_widget_errors()
            shown = plain(output.first.inner_text())
            positions = [shown.find(plain(text)[:40]) for text in first.choices["en"]]
            assert -1 not in positions and positions == sorted(positions), "choices not in the shuffled order"

            text = answer(output, first, first.correct[0], "correct")
            assert "Correct" in text
            output.locator("button", has_text=re.compile(r"^\s*Next\s*$")).click()
            wrong = next(k for k in range(len(second.choices["en"])) if k not in second.correct)
            text = answer(output, second, wrong, "wrong")
            assert "Not quite" in text and plain(second.choices["en"][second.correct[0]])[:40] in plain(text)
            lab.check_no_widget_errors()
            page.screenshot(path=str(tmp_path / "quiz.png"))
        except BaseException:
            lab.screenshot(tmp_path / "quiz-failure.png")
            raise
        finally:
            browser.close()
        cards = json.loads((server.state_dir / "home" / "review.json").read_text())["cards"]
    assert cards[first.id]["box"] == 2 and cards[second.id]["box"] == 1
    print(f"\nseed {seed}: {first.id} right, {second.id} wrong; screenshots in {tmp_path}")
