"""Re-identification by joining quasi-identifiers (``bigtrain_lab.privacy.anonymity``)."""

import numpy as np
import pytest

from bigtrain_lab.privacy.anonymity import (
    Population,
    generalise,
    homogeneous_share,
    k_anonymity,
    link_attack,
    make_population,
    voter_list,
)


def _table(zips, births, sexes, diagnoses):
    n = len(zips)
    return Population(np.arange(n), np.array([f"p{i}" for i in range(n)]), np.array(zips),
                      np.array(births, dtype="datetime64[D]"), np.array(sexes), np.array(diagnoses))


def test_link_attack_on_a_hand_made_table():
    release = _table([2138, 2138, 2139, 2139], ["1960-01-01", "1960-01-01", "1970-05-05", "1971-05-05"],
                     ["F", "F", "M", "M"], ["HIV", "none", "asthma", "cancer"])
    voters = release.take(np.array([0, 2, 3]))
    r = link_attack(release, voters)
    assert r["n_reidentified"] == 2 and r["wrong"] == 0 and r["reidentified"] == pytest.approx(2 / 3)
    assert r["k"] == 1
    coarse = link_attack(release, voters, zip_digits=3, birth="decade")  # 0213x, 196x/197x
    assert coarse["n_reidentified"] == 0 and coarse["k"] == 2
    assert homogeneous_share(generalise(release, zip_digits=3, birth="decade"), release.diagnosis) == 0.0


def test_generalise_and_k():
    t = _table([2138, 2139, 10025], ["1964-03-02", "1968-11-30", "1964-03-20"], ["F", "M", "F"], ["a", "b", "a"])
    qi = generalise(t, zip_digits=3, birth="month")
    assert qi[:, 0].tolist() == [21, 21, 100]
    assert qi[0, 1] == qi[2, 1] != qi[1, 1]  # March 1964 twice
    assert generalise(t, birth="year")[:, 1].tolist() == [1964, 1968, 1964]
    assert generalise(t, birth="decade")[:, 1].tolist() == [196, 196, 196]
    assert k_anonymity(generalise(t, zip_digits=0, birth="decade")) == 1  # two F, one M
    assert homogeneous_share(generalise(t, zip_digits=0, birth="decade"), t.diagnosis) == 1.0
    with pytest.raises(ValueError, match="birth"):
        generalise(t, birth="week")
    with pytest.raises(ValueError, match="zip_digits"):
        generalise(t, zip_digits=6)


def test_a_generated_population_is_mostly_unique_until_generalised():
    people = make_population(2000, seed=0)
    assert len(people) == 2000 and set(np.unique(people.sex)) == {"F", "M"}
    voters = voter_list(people, fraction=0.5, seed=1)
    assert len(voters) == 1000 and np.all(voters.diagnosis == "")
    exact = link_attack(people, voters)
    coarse = link_attack(people, voters, zip_digits=3, birth="decade")
    assert exact["reidentified"] > 0.9 and exact["wrong"] == 0
    assert coarse["reidentified"] < 0.05 and coarse["k"] > exact["k"]
    assert np.array_equal(make_population(50, seed=3).birth, make_population(50, seed=3).birth)
    with pytest.raises(ValueError, match="fraction"):
        voter_list(people, fraction=0.0)
