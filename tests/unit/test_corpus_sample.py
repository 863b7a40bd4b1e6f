"""The rotating sample of wrong fixes CI grades (tests/labs, LABKIT_WRONG_SAMPLE): every
entry is graded within a few days, and no day grades one twice."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")  # tests/labs imports the verify machinery and the labs' stack
SPEC = importlib.util.spec_from_file_location(
    "lab_graders", Path(__file__).resolve().parents[1] / "labs" / "test_lab_graders.py")


@pytest.fixture(scope="module")
def sample_of():
    module = importlib.util.module_from_spec(SPEC)
    SPEC.loader.exec_module(module)
    return module.sample_of


def test_a_day_grades_distinct_entries_and_days_cover_the_whole_corpus(sample_of):
    entries = [f"w{i}" for i in range(13)]
    days = [sample_of(entries, 7, day=d) for d in range(738000, 738002)]
    assert all(len(set(day)) == 7 for day in days)
    assert set().union(*days) == set(entries)


def test_no_sample_or_a_large_one_grades_everything(sample_of):
    entries = list("abcde")
    assert sample_of(entries, 0) == entries and sample_of(entries, 9) == entries
