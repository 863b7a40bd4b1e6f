"""The rotating sample of wrong fixes CI grades (tests/labs, LABKIT_WRONG_SAMPLE): every
entry is graded within a few days, and no day grades one twice."""

from labkit.verify.entries import rotating_sample


def test_a_day_grades_distinct_entries_and_days_cover_the_whole_corpus():
    entries = [f"w{i}" for i in range(13)]
    days = [rotating_sample(entries, 7, day=d) for d in range(738000, 738002)]
    assert all(len(set(day)) == 7 for day in days)
    assert set().union(*days) == set(entries)


def test_no_sample_or_a_large_one_grades_everything():
    entries = list("abcde")
    assert rotating_sample(entries, 0) == entries and rotating_sample(entries, 9) == entries
