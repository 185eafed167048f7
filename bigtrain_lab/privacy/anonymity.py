"""Anonymisation is not privacy: re-identify a "de-identified" table by joining it with a public one.

``make_population`` generates people with a ZIP code, a birth date, a sex (the *quasi-identifiers*: not names,
but together nearly unique) and a sensitive diagnosis. The hospital releases ``(zip, birth date, sex,
diagnosis)`` with the names dropped; a public voter list holds ``(name, zip, birth date, sex)`` for the
registered share of the same people. ``link_attack`` joins the two on the quasi-identifiers: every voter whose
combination matches exactly one released record gets a name attached to a diagnosis. (Sweeney re-identified
the Governor of Massachusetts this way and estimated that ZIP, birth date and sex single out about 87 % of the
US population -- her figure, a citation, not measured here.)

``generalise`` coarsens the quasi-identifiers (ZIP prefix, birth month / year / decade) until every combination
is shared by at least ``k`` people (*k-anonymity*, ``k_anonymity``); ``homogeneous_share`` shows what
k-anonymity still leaks: a group whose members all have the same diagnosis gives it away without any
re-identification (hence l-diversity, and in the end differential privacy).

>>> people = make_population(200, seed=0)
>>> voters = voter_list(people, fraction=0.5, seed=1)
>>> r = link_attack(people, voters)
>>> 0 <= r["reidentified"] <= 1 and r["wrong"] == 0
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BIRTH_LEVELS", "DIAGNOSES", "Population", "generalise", "homogeneous_share", "k_anonymity",
           "link_attack", "make_population", "quasi_identifier_groups", "voter_list"]

DIAGNOSES = ("none", "asthma", "diabetes", "hypertension", "depression", "HIV", "cancer")
_DIAGNOSIS_P = (0.55, 0.1, 0.1, 0.12, 0.08, 0.02, 0.03)
_FIRST = ("Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jun", "Kim", "Lea", "Mo", "Nia",
          "Omar", "Pia", "Quinn", "Ravi", "Sara", "Tom", "Uma", "Vik", "Wen", "Yara", "Zoe")
_LAST = ("Li", "Smith", "Garcia", "Kumar", "Nguyen", "Muller", "Rossi", "Sato", "Silva", "Novak", "Okafor",
         "Cohen", "Haddad", "Jensen", "Kowalski", "Lopez", "Wang", "Brown", "Ivanova", "Tanaka")
BIRTH_LEVELS = ("date", "month", "year", "decade")
_EPOCH, _LAST_DAY = np.datetime64("1940-01-01"), np.datetime64("2005-12-31")


@dataclass(frozen=True)
class Population:
    """Columns of one table, one row per person; ``person`` is the row's true identity (for scoring only)."""

    person: np.ndarray  # int64 id
    name: np.ndarray  # str
    zip: np.ndarray  # int64, 5 digits
    birth: np.ndarray  # datetime64[D]
    sex: np.ndarray  # "F" / "M"
    diagnosis: np.ndarray  # str, one of DIAGNOSES

    def __len__(self) -> int:
        return len(self.person)

    def take(self, rows: np.ndarray) -> Population:
        return Population(*(getattr(self, f)[rows] for f in ("person", "name", "zip", "birth", "sex", "diagnosis")))


def make_population(n: int = 5000, *, seed: int = 0, n_zips: int = 20) -> Population:
    """``n`` people in ``n_zips`` ZIP codes (under three 3-digit prefixes, uneven sizes), born uniformly between
    1940 and 2005, sex 50/50, a diagnosis drawn from ``DIAGNOSES`` (55 % none)."""
    if n < 1 or n_zips < 3:
        raise ValueError(f"need n >= 1 and n_zips >= 3, got {n}, {n_zips}")
    rng = np.random.default_rng(seed)
    prefixes = np.array([21, 24, 100])  # 021xx, 024xx, 100xx
    zips = np.unique(prefixes[np.arange(n_zips) % 3] * 100 + rng.choice(100, size=n_zips, replace=False))
    zip_p = rng.dirichlet(np.full(len(zips), 2.0))
    days = int((_LAST_DAY - _EPOCH).astype(int)) + 1
    first, last = rng.choice(_FIRST, size=n), rng.choice(_LAST, size=n)
    return Population(
        person=np.arange(n, dtype=np.int64),
        name=np.char.add(np.char.add(first, " "), last),
        zip=rng.choice(zips, size=n, p=zip_p).astype(np.int64),
        birth=_EPOCH + rng.integers(0, days, size=n).astype("timedelta64[D]"),
        sex=rng.choice(np.array(["F", "M"]), size=n),
        diagnosis=rng.choice(np.array(DIAGNOSES), size=n, p=_DIAGNOSIS_P),
    )


def voter_list(people: Population, *, fraction: float = 0.6, seed: int = 1) -> Population:
    """The public list: a random ``fraction`` of the people, with names and quasi-identifiers (its diagnosis
    column is blanked: the register does not hold one)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(people), size=max(1, round(fraction * len(people))), replace=False))
    voters = people.take(rows)
    return Population(voters.person, voters.name, voters.zip, voters.birth, voters.sex,
                      np.full(len(rows), "", dtype=people.diagnosis.dtype))


def generalise(people: Population, *, zip_digits: int = 5, birth: str = "date") -> np.ndarray:
    """The ``(n, 3)`` int64 quasi-identifiers ``(zip prefix, birth, sex)``: the first ``zip_digits`` digits of the
    ZIP and the birth date coarsened to ``birth`` in ``BIRTH_LEVELS``."""
    if not 0 <= zip_digits <= 5:
        raise ValueError(f"zip_digits must be in 0..5, got {zip_digits!r}")
    if birth not in BIRTH_LEVELS:
        raise ValueError(f"birth must be one of {BIRTH_LEVELS}, got {birth!r}")
    zip_part = people.zip // 10 ** (5 - zip_digits)
    years = people.birth.astype("datetime64[Y]").astype(np.int64) + 1970
    birth_part = {"date": people.birth.astype(np.int64), "month": people.birth.astype("datetime64[M]").astype(np.int64),
                  "year": years, "decade": years // 10}[birth]
    return np.stack([zip_part, birth_part, (people.sex == "F").astype(np.int64)], axis=1)


def quasi_identifier_groups(qi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(group of each row, size of each group)`` of the rows of ``qi`` with identical quasi-identifiers."""
    _, inverse, counts = np.unique(np.asarray(qi), axis=0, return_inverse=True, return_counts=True)
    return inverse.reshape(-1), counts


def k_anonymity(qi: np.ndarray) -> int:
    """The ``k`` of the table: the size of its smallest group of rows sharing all quasi-identifiers."""
    if len(qi) == 0:
        raise ValueError("an empty table has no k")
    return int(quasi_identifier_groups(qi)[1].min())


def homogeneous_share(qi: np.ndarray, sensitive: np.ndarray) -> float:
    """Share of rows whose group (same quasi-identifiers) has a single sensitive value: for them, knowing the
    quasi-identifiers reveals the diagnosis though no row is singled out."""
    groups, _ = quasi_identifier_groups(qi)
    pairs = np.unique(np.stack([groups, np.unique(sensitive, return_inverse=True)[1].reshape(-1)], 1), axis=0)
    values_per_group = np.bincount(pairs[:, 0], minlength=groups.max() + 1)
    return float((values_per_group[groups] == 1).mean())


def link_attack(release: Population, voters: Population, *, zip_digits: int = 5, birth: str = "date") -> dict[str, Any]:
    """Join the released table (names dropped) with the voter list on the quasi-identifiers, both generalised
    the same way. A voter is *re-identified* when exactly one released record matches; ``wrong`` counts those
    matches that are someone else (0 when the voter is in the release). Shares are of the voters."""
    rel_qi, vot_qi = generalise(release, zip_digits=zip_digits, birth=birth), generalise(voters, zip_digits=zip_digits,
                                                                                         birth=birth)
    keys, inverse, counts = np.unique(np.concatenate([rel_qi, vot_qi]), axis=0, return_inverse=True,
                                      return_counts=True)
    inverse = inverse.reshape(-1)
    in_release = np.bincount(inverse[:len(rel_qi)], minlength=len(keys))
    voter_groups = inverse[len(rel_qi):]
    unique = in_release[voter_groups] == 1
    only_row = np.full(len(keys), -1)
    only_row[inverse[:len(rel_qi)]] = np.arange(len(rel_qi))  # the row of a group with one released record
    matched = release.person[only_row[voter_groups[unique]]]
    return {"voters": len(voters), "reidentified": float(unique.mean()), "n_reidentified": int(unique.sum()),
            "wrong": int((matched != voters.person[unique]).sum()),
            "mean_matches": float(in_release[voter_groups].mean()), "k": k_anonymity(rel_qi),
            "homogeneous": homogeneous_share(rel_qi, release.diagnosis)}
