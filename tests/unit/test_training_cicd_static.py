"""training-cicd's static reading of workflow files: pins, credentials, stage calls, filters.

What a workflow does is learnt by playing it on act (tests/unit/test_training_cicd_engine.py
and tests/labs); these pin down the text-level rules in milliseconds, including the false
positives an outside review found in the old secret check.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("check_jsonschema")

LAB = Path(__file__).resolve().parents[2] / "labs" / "training-cicd"
LEAKED = ("mlf-ci-4f9d2c7e1b8a60357c21",)


def _import(name: str, monkeypatch: pytest.MonkeyPatch):
    """The lab's support package, imported fresh (other labs also call theirs `support`)."""
    for module in [m for m in sys.modules if m == "support" or m.startswith("support.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.syspath_prepend(str(LAB))
    return importlib.import_module(name)


@pytest.fixture
def static(monkeypatch):
    yield _import("support.static", monkeypatch)
    for module in [m for m in sys.modules if m == "support" or m.startswith("support.")]:
        del sys.modules[module]


@pytest.fixture
def engine(monkeypatch):
    yield _import("support.engine", monkeypatch)
    for module in [m for m in sys.modules if m == "support" or m.startswith("support.")]:
        del sys.modules[module]


def solved(tmp_path: Path, wrong: str | None = None) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(LAB / "starter", root)
    shutil.copytree(LAB / "solution", root, dirs_exist_ok=True)
    if wrong:
        subprocess.run(["git", "apply", str(LAB / "wrong" / f"{wrong}.diff")], cwd=root, check=True)
    return root


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_the_solution_is_clean_and_the_starter_is_not(static, tmp_path):
    root = solved(tmp_path)
    assert static.secret_problems(root, LEAKED) == []
    assert static.unpinned(root) == []
    assert static.stage_calls(root) == set(static.STAGES)
    assert all(not static.schema_problems(w.raw) for w in static.read_workflows(root))
    starter = tmp_path / "starter"
    shutil.copytree(LAB / "starter", starter)
    assert any("leaked" in p for p in static.secret_problems(starter, LEAKED))
    assert sorted(static.unpinned(starter)) == [".github/workflows/train.yml: actions/checkout@main",
                                                ".github/workflows/train.yml: actions/checkout@v4",
                                                ".github/workflows/train.yml: actions/setup-python@v4",
                                                ".github/workflows/train.yml: actions/setup-python@v4"]


def test_settings_that_only_name_a_credential_are_not_leaks(static, tmp_path):
    """The review's false positives: each of these read as a leak before."""
    root = solved(tmp_path)
    write(root, ".github/workflows/hardening.yml", """\
name: hardening
on: push
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683
        with:
          persist-credentials: false
          token: ${{ steps.app.outputs.token }}
      - uses: actions/setup-python@0b93645e9fea7318ecaed2b359559ac225c90a2b
        with:
          mask-password: "true"
      - run: python -m pipeline deploy
        env:
          MLFLOW_TRACKING_TOKEN: ${{ secrets['MLFLOW_TRACKING_TOKEN'] }}
          API_KEY_FILE_MODE: "on"
""")
    assert static.secret_problems(root, LEAKED) == []


@pytest.mark.parametrize("setting", [
    "MLFLOW_TRACKING_TOKEN: mlf-ci-0a1b2c3d4e5f",
    "MLFLOW_TRACKING_TOKEN: ${{ 'mlf-ci-0a1b2c3d4e5f' }}",
    "DB_PASSWORD: hunter2hunter2",
])
def test_a_literal_credential_in_env_is_a_leak(static, tmp_path, setting):
    root = solved(tmp_path)
    write(root, ".github/workflows/leak.yml", f"""\
name: leak
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    env:
      {setting}
    steps:
      - run: python -m pipeline deploy
""")
    problems = static.secret_problems(root, LEAKED)
    assert len(problems) == 1 and "leak.yml" in problems[0] and "literal" in problems[0]


def test_a_credential_written_in_a_script_is_a_leak_but_a_secret_reference_is_not(static, tmp_path):
    root = solved(tmp_path)
    write(root, ".github/workflows/script.yml", """\
name: script
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: export MLFLOW_TRACKING_TOKEN="${{ secrets.MLFLOW_TRACKING_TOKEN }}"
      - run: MLFLOW_TRACKING_TOKEN=mlf-0a1b2c3d4e python -m pipeline train
""")
    assert static.secret_problems(root, LEAKED) == [".github/workflows/script.yml: a `run:` script writes a credential inline"]


def test_the_wrong_fix_with_an_inlined_secret_is_caught(static, tmp_path):
    assert static.secret_problems(solved(tmp_path, "secret_inlined"), LEAKED)


def test_actions_in_local_composite_actions_must_be_pinned_too(static, tmp_path):
    root = solved(tmp_path)
    write(root, ".github/actions/setup/action.yml", """\
name: setup
runs:
  using: composite
  steps:
    - uses: actions/setup-python@v5
""")
    assert static.unpinned(root) == [".github/actions/setup/action.yml: actions/setup-python@v5"]


@pytest.mark.parametrize(("filters", "changed", "ref", "runs"), [
    (None, ("data/train.csv",), "refs/heads/main", True),
    ({"branches": ["main"]}, ("x",), "refs/heads/main", True),
    ({"branches": ["release/*"]}, ("x",), "refs/heads/main", False),
    ({"branches": ["**", "!main"]}, ("x",), "refs/heads/main", False),
    ({"branches-ignore": ["main"]}, ("x",), "refs/heads/main", False),
    ({"tags": ["v*"]}, ("x",), "refs/heads/main", False),  # only tags filtered: branch pushes never start it
    ({"tags": ["v*"]}, ("x",), "refs/tags/v1.2", True),
    ({"paths": ["**.py", "tests/**"]}, ("data/train.csv",), "refs/heads/main", False),  # the data-only push
    ({"paths": ["**.py", "data/**"]}, ("data/train.csv",), "refs/heads/main", True),
    ({"paths": ["*.py"]}, ("pipeline/stages.py",), "refs/heads/main", False),  # * stops at /
    ({"paths-ignore": ["data/**"]}, ("data/train.csv",), "refs/heads/main", False),
    ({"paths-ignore": ["docs/**"]}, ("data/train.csv",), "refs/heads/main", True),
])
def test_push_filters_as_github_applies_them(engine, filters, changed, ref, runs):
    event = engine.Event("push", ref, "0" * 40, changed, {})
    assert engine.accepts(filters, event) is runs


@pytest.mark.parametrize(("filters", "runs"), [
    (None, True),
    ({"branches": ["main"]}, True),
    ({"branches": ["develop"]}, False),
    ({"types": ["closed"]}, False),
    ({"paths": ["data/**"]}, True),
])
def test_pull_request_filters_match_the_base_branch_and_the_action(engine, filters, runs):
    event = engine.Event("pull_request", "refs/pull/7/merge", "0" * 40, ("data/train.csv",), {"action": "opened"},
                         base_ref="main", head_ref="week-47")
    assert engine.accepts(filters, event) is runs


def test_every_remote_action_is_mapped_to_a_stand_in_or_named_as_missing(engine, tmp_path):
    root = solved(tmp_path)
    write(root, ".github/workflows/extra.yml", """\
name: extra
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/cache/restore@v4
      - uses: docker/login-action@v3
""")
    mapped, missing = engine.remote_actions(root)
    assert mapped["actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"] == "checkout"
    assert mapped["actions/cache@v4"] == "cache"
    assert missing == ["docker/login-action@v3 (in .github/workflows/extra.yml)"]
