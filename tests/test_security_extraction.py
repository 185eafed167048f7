"""bigtrain_lab.security.extraction: the query API (answers, counting, the budget), the attacker's queries,
and a surrogate trained on the answers agreeing with the victim."""

import pytest
import torch
import torch.nn.functional as F

from bigtrain_lab.compress.digits import load_digits
from bigtrain_lab.fit import fit_classifier
from bigtrain_lab.models import MLP
from bigtrain_lab.security.extraction import (
    QueryAPI,
    QueryLimitExceeded,
    agreement,
    extraction_curve,
    query_inputs,
    steal,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def victim(digits):
    torch.manual_seed(0)
    model = MLP(64, (64,), 10)
    fit_classifier(model, digits.X_train, digits.y_train, epochs=10)
    return model.train()  # the API must switch it to eval itself


def test_the_api_answers_labels_or_probabilities_and_counts_queries(victim, digits):
    x = digits.X_test[:20]
    with torch.no_grad():
        logits = victim.eval()(x)
    victim.train()
    labels = QueryAPI(victim)
    assert torch.equal(labels(x), logits.argmax(1)) and labels.queries == 20
    assert victim.training  # the API put it back
    probs = QueryAPI(victim, returns="probabilities")
    assert torch.allclose(probs(x), F.softmax(logits, 1))
    rounded = QueryAPI(victim, returns="probabilities", decimals=1)(x)
    assert torch.equal(rounded, torch.round(F.softmax(logits, 1), decimals=1))


def test_the_query_budget_refuses_the_batch_that_would_exceed_it(victim, digits):
    api = QueryAPI(victim, limit=25)
    api(digits.X_test[:20])
    with pytest.raises(QueryLimitExceeded, match="20 of 25"):
        api(digits.X_test[:6])
    assert api.queries == 20
    api(digits.X_test[:5])
    assert api.queries == 25


@pytest.mark.parametrize("kwargs, match", [({"returns": "logits"}, "returns"), ({"limit": -1}, "limit"),
                                           ({"decimals": 1.5}, "decimals")])
def test_the_api_refuses_bad_settings(victim, kwargs, match):
    with pytest.raises(ValueError, match=match):
        QueryAPI(victim, **kwargs)


def test_query_inputs(digits):
    noise = query_inputs("uniform", 30, seed=1)
    assert noise.shape == (30, 64) and noise.min() >= 0 and noise.max() <= 1
    assert torch.equal(noise, query_inputs("uniform", 30, seed=1)) and not torch.equal(noise, query_inputs("uniform", 30))
    pool = digits.X_val[:40]
    first = query_inputs("pool", 40, pool=pool)
    assert sorted(map(tuple, first.tolist())) == sorted(map(tuple, pool.tolist()))  # the pool itself, reordered
    more = query_inputs("pool", 100, pool=pool)
    assert more.shape == (100, 64) and more.min() >= 0 and more.max() <= 1
    assert not any(torch.equal(row, p) for row in more[40:45] for p in pool)  # variants, not copies
    with pytest.raises(ValueError, match="pool"):
        query_inputs("pool", 10)
    with pytest.raises(ValueError, match="kind"):
        query_inputs("gaussian", 10)
    with pytest.raises(ValueError, match="positive"):
        query_inputs("uniform", 0)


def test_a_surrogate_trained_on_answers_agrees_with_the_victim(victim, digits):
    api = QueryAPI(victim, returns="labels")
    torch.manual_seed(1)
    surrogate = MLP(64, (64,), 10)
    before = agreement(surrogate, victim, digits.X_test)
    steal(api, query_inputs("pool", 270, pool=digits.X_val), surrogate, steps=300)
    after = agreement(surrogate, victim, digits.X_test)
    assert api.queries == 270
    assert before < 0.3 and after > 0.85


def test_probabilities_leak_more_than_labels_from_few_noise_queries(victim, digits):
    rows = extraction_curve(victim, lambda: MLP(64, (64,), 10), digits.X_test, (200,), kinds=("uniform",),
                            y_eval=digits.y_test, steps=300)
    by = {r["returns"]: r for r in rows}
    assert set(by) == {"labels", "probabilities"} and all(r["queries"] == 200 for r in rows)
    assert by["probabilities"]["agreement"] > by["labels"]["agreement"]
    assert 0 <= by["labels"]["accuracy"] <= 1


def test_agreement_is_symmetric_and_restores_modes(victim, digits):
    torch.manual_seed(3)
    other = MLP(64, (16,), 10).train()
    a = agreement(victim, other, digits.X_test)
    assert a == agreement(other, victim, digits.X_test) and other.training
    assert agreement(victim, victim, digits.X_test) == 1.0
