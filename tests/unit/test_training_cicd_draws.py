"""training-cicd's hidden pushes are drawn from the hidden seed (issue: hidden data a
candidate can replay): the workspace's own data stays a function of the lab seed, so the
pipeline trains on what the candidate has, but the rows, breaks and regression a hidden
grade pushes come from another seed the candidate cannot know."""

from __future__ import annotations

import pytest


@pytest.fixture
def lab(lab_support):
    pytest.importorskip("pandas")
    return lab_support("training-cicd", "support.data", "support.changes")


def test_the_hidden_draws_change_the_pushes_not_the_population(lab) -> None:
    data, _ = lab
    visible = data.Shipments.from_seed(2026)
    hidden = visible.hidden(987654321)
    assert data.training_set(hidden).equals(data.training_set(visible))
    assert data.holdout_set(hidden).equals(data.holdout_set(visible))
    assert not data.new_rows(hidden).equals(data.new_rows(visible))
    assert list(data.new_rows(hidden).columns) == list(data.new_rows(visible).columns)
    assert data.new_rows(hidden).equals(data.new_rows(visible.hidden(987654321))), "a hidden draw is reproducible"


def test_a_visible_grade_draws_from_the_lab_seed(lab) -> None:
    data, _ = lab
    shipments = data.Shipments.from_seed(7)
    assert shipments.draws == 7 and shipments.hidden(8).draws == 8


def test_every_kind_of_break_is_pushed_whatever_the_draw(lab) -> None:
    data, changes = lab
    kinds = {tuple(c.name for c in changes.schema_violations(data.Shipments.from_seed(2026).hidden(s)))
             for s in (1, 2, 3)}
    assert len(kinds) == 1, "the kinds of break must not depend on the draw"
