import pytest

from labkit.catalog import lab_dirs, load_all, load_lab
from labkit.errors import NotFoundError, SpecError


def test_labs_are_folders_with_lab_yaml_and_underscore_hides_them(labkit_home):
    found = lab_dirs()
    assert "adder" in found
    assert "_template" not in found


def test_unknown_lab_names_the_nearest_one(labkit_home):
    with pytest.raises(NotFoundError) as info:
        load_lab("addr")
    assert "did you mean 'adder'" in str(info.value)
    assert "labkit list" in str(info.value)


def test_a_broken_lab_is_listed_apart_and_hides_no_other(labs_copy):
    broken = labs_copy / "broken-lab"
    broken.mkdir()
    (broken / "lab.yaml").write_text("apiVersion: labkit/v1\nid: broken-lab\n")
    labs, invalid = load_all()
    assert [lab.id for lab in labs if lab.id == "adder"] == ["adder"]
    assert isinstance(invalid["broken-lab"], SpecError)


def test_the_shipped_catalog_is_valid(monkeypatch):
    monkeypatch.delenv("LABKIT_LABS_PATH", raising=False)
    labs, invalid = load_all()
    assert not invalid, invalid
    assert "drift-detection" in {lab.id for lab in labs}


def test_the_catalog_cache_follows_edits_and_never_hides_a_broken_lab(labs_copy):
    from labkit.catalog import summaries

    first, _ = summaries()
    assert {lab["id"] for lab in first} >= {"adder"}
    spec = labs_copy / "adder" / "lab.yaml"
    spec.write_text(spec.read_text().replace("title: Adder", "title: Renamed adder"))
    renamed, _ = summaries()
    assert next(lab for lab in renamed if lab["id"] == "adder")["title"].startswith("Renamed adder")
    (labs_copy / "adder" / "BRIEF.md").unlink()
    listed, invalid = summaries()
    assert "adder" not in {lab["id"] for lab in listed} and "BRIEF.md" in invalid["adder"]
