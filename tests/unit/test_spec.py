from pathlib import Path

import pytest
import yaml

from labkit.errors import SpecError
from labkit.spec import load_spec


def write_lab(root: Path, data: dict | str, *, folders=("starter", "solution", "checks"), brief=True) -> Path:
    lab = root / "my-lab"
    lab.mkdir()
    (lab / "lab.yaml").write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    for name in folders:
        (lab / name).mkdir()
    if brief:
        (lab / "BRIEF.md").write_text("brief")
    return lab


VALID = {"apiVersion": "labkit/v1", "id": "my-lab", "title": "My lab", "minutes": 30, "runtimes": ["local"]}


def test_a_valid_lab_loads_with_defaults(tmp_path):
    spec = load_spec(write_lab(tmp_path, VALID))
    assert spec.id == "my-lab" and spec.services == [] and spec.grading.max_starter_percent == 20


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path):
    data = {**VALID, "apiVersion": "labkit/v2", "minutes": -5, "services": ["mlflow", "redis"],
            "grading": {"timeout_s": 10, "max_starter_pct": 5}, "colour": "blue"}
    lab = write_lab(tmp_path, data, folders=("starter",), brief=False)
    with pytest.raises(SpecError) as info:
        load_spec(lab)
    text = "\n".join(info.value.problems)
    for expected in ("apiVersion:", "minutes:", "services[1]:", "grading.max_starter_pct: unknown key",
                     "colour: unknown key", "BRIEF.md: missing", "checks: missing"):
        assert expected in text, f"{expected!r} not reported in:\n{text}"
    assert "solution" not in text  # a candidate copy has none; the commands that need it say so


def test_yaml_syntax_errors_name_the_line(tmp_path):
    lab = write_lab(tmp_path, "apiVersion: labkit/v1\nid: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_spec(lab)
    assert "line 3" in info.value.problems[0] or "line 2" in info.value.problems[0]


def test_id_must_match_the_folder_and_the_provision_module_must_exist(tmp_path):
    lab = write_lab(tmp_path, {**VALID, "id": "other-lab", "provision": "support.setup:provision"})
    with pytest.raises(SpecError) as info:
        load_spec(lab)
    text = "\n".join(info.value.problems)
    assert "does not match the folder name" in text and "provision: module 'support/setup' not found" in text


def test_a_top_level_list_is_rejected_clearly(tmp_path):
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(write_lab(tmp_path, "- a\n- b\n"))


def test_variant_overlays_must_exist(tmp_path):
    lab = write_lab(tmp_path, {**VALID, "variants": [{"id": "a", "overlay": "variants/a"}]})
    with pytest.raises(SpecError, match=r"variants\[0\]\.overlay"):
        load_spec(lab)
