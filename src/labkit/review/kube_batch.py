"""The k8s backend's batch: pick the cluster, get the review image into it, run the Jobs,
and turn each outcome into the same job folder, record and reports as the local backend."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from labkit.errors import RuntimeUnavailable
from labkit.review.kube import JobRunner, KubeOptions, Submission, split_archive
from labkit.review.sandbox import Enforcement, SandboxPolicy
from labkit.session import write_json_atomic
from labkit.ui import UI

KIND_NETWORK_WARNING = ("network: NOT isolated. The reviews' namespace has a default-deny NetworkPolicy, but this "
                        "kind cluster's CNI does not enforce NetworkPolicy: candidate code in a review pod could reach "
                        "the cluster's network (not the reviewer's files: those are not in the pod)")


def kube_enforcement(options: KubeOptions) -> Enforcement:
    """Reviews in pods: non-root, read-only root, no capabilities, pod limits. What a kind
    cluster cannot enforce (its CNI ignores NetworkPolicy) is a warning in every report."""
    warnings = [KIND_NETWORK_WARNING] if _kind_name(options) else []
    return Enforcement("kubernetes", warnings=warnings)


def _kind_name(options: KubeOptions) -> str | None:
    """The kind cluster the Jobs go to, if they go to one (kind load reaches it)."""
    from labkit.kube import tools

    if options.kubeconfig is None and options.context is None:
        return tools.cluster_name()
    context = options.context or _current_context(_kubeconfig_path(options))
    return context[len("kind-"):] if context and context.startswith("kind-") else None


def _kubeconfig_path(options: KubeOptions) -> Path:
    if options.kubeconfig is not None:
        return options.kubeconfig
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first or "~/.kube/config").expanduser()


def _current_context(path: Path) -> str | None:
    from lightkube import KubeConfig

    try:
        return KubeConfig.from_file(path).current_context
    except Exception:  # noqa: BLE001 - an unreadable kubeconfig is reported when it is used
        return None


def connect(options: KubeOptions, ui: UI) -> tuple[Any, Any]:
    """(Cluster, KindCluster or None). With no --kubeconfig/--context: the lab's kind cluster,
    created when missing (and left standing: it is named in the output)."""
    from labkit.kube.api import Cluster, ClusterInfo
    from labkit.kube.cluster import KindCluster
    from labkit.kube.tools import cluster_config

    if options.kubeconfig is None and options.context is None:
        kind = KindCluster.default(progress=ui.note)
        if kind.ensure():
            ui.note(f"created the kind cluster {kind.name!r} for the reviews; delete it when done: "
                    f"kind delete cluster --name {kind.name}")
        return Cluster(ClusterInfo(kind.name, str(kind.kubeconfig), kind.context)), kind
    path = _kubeconfig_path(options)
    if not path.is_file():
        raise RuntimeUnavailable(f"no kubeconfig at {path}", hint="--kubeconfig FILE, or KUBECONFIG")
    context = options.context or _current_context(path)
    if not context:
        raise RuntimeUnavailable(f"{path} names no current context", hint="--context NAME")
    name = _kind_name(options)
    kind = KindCluster(name, cluster_config()) if name else None
    if kind is not None and not kind.exists():
        kind = None
    return Cluster(ClusterInfo(context, str(path), context)), kind


def review_on_cluster(pending: list[tuple[Path, Path, str]], *, hidden: bool, policy: SandboxPolicy,
                      enforcement: Enforcement, parallel: int, options: KubeOptions, ui: UI) -> list[dict[str, Any]]:
    """Review `pending` (archive, job folder, sha) as Jobs; the records in input order."""
    from labkit.review.batch import _error_record, _save, announce, oversized_record, stage

    records: dict[Path, dict[str, Any]] = {}
    items: dict[str, Submission] = {}
    for archive, job_dir, sha in pending:
        record = oversized_record(archive, job_dir, sha, enforcement)
        if record is None and sha in items:  # the same bytes under another name: one Job for both
            items[sha].extra_dirs.append((archive, job_dir))
            continue
        if record is None:
            job = stage(archive, job_dir, sha, hidden, policy, enforcement, root=Path("/review"))
            try:
                split_archive((job_dir / Path(job["archive"]).name).read_bytes())
            except ValueError as exc:
                record = _save(_error_record(archive, job_dir, sha, enforcement, f"{archive.name}: {exc}"), job_dir)
            else:
                items[sha] = Submission(archive, job_dir, sha, job)
        if record is not None:
            records[job_dir] = record
            announce(archive, record, ui)
    if items:
        cluster, kind = connect(options, ui)
        image = _image(options, policy, kind, ui)
        runner = JobRunner(cluster, image=image, policy=policy, hidden=hidden, namespace=options.namespace,
                           batch=time.strftime("%Y%m%dt%H%M%S"), parallel=parallel, progress=ui.note)
        runner.prepare()
        ui.note(f"reviewing {len(items)} submission(s) as Jobs in {cluster.info.context}/{options.namespace} "
                f"({parallel} at a time, image {image})")

        def done(item: Submission, outcome: dict[str, Any]) -> None:
            for archive, job_dir in [(item.archive, item.job_dir), *item.extra_dirs]:
                if "record" in outcome:
                    record = {**outcome["record"], "id": job_dir.name, "archive": str(archive)}
                else:
                    record = _error_record(archive, job_dir, item.sha, enforcement, outcome["error"])
                if job_dir != item.job_dir:
                    stage(archive, job_dir, item.sha, hidden, policy, enforcement, root=Path("/review"))
                (job_dir / "worker.log").write_text(outcome.get("log", ""), encoding="utf-8")
                if outcome.get("kube"):
                    record["kube"] = outcome["kube"]
                    write_json_atomic(job_dir / "kube.json", outcome["kube"])
                records[job_dir] = _save(record, job_dir)
                announce(archive, record, ui)

        try:
            runner.run(list(items.values()), done)
        except KeyboardInterrupt:
            ui.note(f"interrupted: the Jobs already created go on in namespace {options.namespace} (deleted an hour "
                    "after they finish); rerun the same command to collect their results")
            raise
    return [records[job_dir] for _, job_dir, _ in pending if job_dir in records]


def _image(options: KubeOptions, policy: SandboxPolicy, kind: Any, ui: UI) -> str:
    """The image the Jobs run: --grader-image as given, else built here; loaded into kind."""
    from labkit.catalog import labs_roots
    from labkit.review.kube_image import ensure_review_image

    if options.grader_image:
        image = options.grader_image
    elif kind is None:
        raise RuntimeUnavailable(
            "this cluster is not a kind cluster on this machine, so it cannot run an image built here",
            hint="build the review image (infra/images/review/Dockerfile), push it where the cluster pulls from, "
                 "and pass --grader-image IMAGE",
        )
    else:
        image, facts = ensure_review_image(base=options.grader_base or policy.image, labs_roots=labs_roots(),
                                           progress=ui.note)
        if facts.get("built_s"):
            ui.note(f"built {image} in {facts['built_s']:g} s ({facts.get('size_mb')} MB)")
    if kind is not None:
        from labkit.kube.images import image_exists

        if image_exists(image):
            started = time.monotonic()
            kind.load_image(image)
            ui.note(f"image {image} in kind cluster {kind.name!r} ({time.monotonic() - started:.1f} s)")
    return image
