"""labkit.kube.nodes: what a check sees of a pod from its node, parsed the same on
cgroup v1 (this machine's kind nodes) and v2 (most laptops), with a fake runner."""

from __future__ import annotations

import pytest

from labkit.kube.nodes import STATUS_MARK, parse_memory, pod_memory, pod_request, quantity
from labkit.proc import Completed

POD = {"metadata": {"name": "churn-api-1", "uid": "ab-cd-ef"}, "spec": {"nodeName": "labkit-control-plane"},
       "status": {"podIP": "10.244.0.9"}}

V1 = """pod memory.usage_in_bytes 312442880
pod memory.max_usage_in_bytes 391045120
pod stat cache 2039808
pod stat total_inactive_file 319488
kills 0
kills 2
"""
V2 = """pod memory.current 300000000
pod memory.peak 400000000
pod stat inactive_file 1000000
kills 3
kills 1
"""


class FakeRunner:
    def __init__(self, stdout: str = "", stderr: str = "", returncode: int = 0) -> None:
        self.calls: list[dict] = []
        self.stdout, self.stderr, self.returncode = stdout, stderr, returncode

    def run(self, argv, *, timeout, check=True, input_text=None, **_):  # noqa: ANN001, ANN201
        self.calls.append({"argv": list(argv), "input": input_text, "timeout": timeout})
        return Completed(list(argv), self.returncode, self.stdout, self.stderr, 0.1)


def test_cgroup_v1_memory_drops_reclaimable_cache_and_takes_the_larger_kill_count() -> None:
    memory = parse_memory(V1)
    assert memory.usage_bytes == 312442880 - 319488
    assert memory.peak_bytes == 391045120
    assert memory.oom_kills == 2


def test_cgroup_v2_memory_is_read_from_its_own_files() -> None:
    memory = parse_memory(V2)
    assert (memory.usage_bytes, memory.peak_bytes, memory.oom_kills) == (299000000, 400000000, 3)


def test_a_pod_whose_cgroup_is_not_on_the_node_is_an_error_not_zero_use() -> None:
    with pytest.raises(LookupError, match="not found"):
        parse_memory("")


def test_pod_memory_looks_the_pod_up_by_uid_on_its_own_node() -> None:
    runner = FakeRunner(stdout=V1)
    assert pod_memory(POD, runner=runner).oom_kills == 2
    argv = runner.calls[0]["argv"]
    assert argv[:3] == ["docker", "exec", "labkit-control-plane"]
    assert "*podab_cd_ef.slice" in argv[-1]


def test_pod_request_goes_to_the_pod_ip_from_its_node_with_the_body_on_stdin() -> None:
    runner = FakeRunner(stdout='{"predictions": [1]}' + STATUS_MARK + "200")
    answer = pod_request(POD, 3000, "/predict", method="POST", body='{"rows": []}',
                         headers={"Authorization": "Bearer t"}, runner=runner)
    assert (answer.status, answer.body) == (200, '{"predictions": [1]}')
    call = runner.calls[0]
    assert call["argv"][:4] == ["docker", "exec", "-i", "labkit-control-plane"]
    assert call["argv"][-1] == "http://10.244.0.9:3000/predict"
    assert "Authorization: Bearer t" in call["argv"] and call["input"] == '{"rows": []}'


def test_a_request_to_a_pod_carries_the_headers_a_service_call_carries() -> None:
    """The pod cannot tell the grader's direct request from its checks' urllib calls."""
    import sys

    runner = FakeRunner(stdout=STATUS_MARK + "200")
    pod_request(POD, 3000, "/predict", method="POST", body="{}", headers={"Content-Type": "application/json"},
                runner=runner)
    argv = runner.calls[0]["argv"]
    sent = [argv[i + 1] for i, a in enumerate(argv) if a == "-H"]
    assert f"User-Agent: Python-urllib/{sys.version_info.major}.{sys.version_info.minor}" in sent
    assert "Accept:" in sent and "Connection: close" in sent and "Content-Type: application/json" in sent


def test_no_http_answer_is_status_zero_with_curls_reason() -> None:
    runner = FakeRunner(stdout=STATUS_MARK + "000", stderr="curl: (7) Failed to connect", returncode=7)
    answer = pod_request(POD, 3000, "/livez", runner=runner)
    assert answer.status == 0 and "Failed to connect" in answer.error


def test_a_pod_without_an_ip_is_not_asked() -> None:
    runner = FakeRunner()
    answer = pod_request({**POD, "status": {}}, 3000, "/livez", runner=runner)
    assert answer.status == 0 and not runner.calls


@pytest.mark.parametrize(("text", "value"), [("384Mi", 384 * 2**20), ("1Gi", 2**30), ("100m", 0.1), ("2", 2.0),
                                              ("1.5", 1.5), ("500M", 5e8), ("64Ki", 65536)])
def test_kubernetes_quantities(text: str, value: float) -> None:
    assert quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "12 Mi", "1Xi", "Mi"])
def test_what_is_not_a_quantity_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity(text)
