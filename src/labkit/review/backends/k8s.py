"""The k8s backend: one Kubernetes Job per submission.

Pick the cluster, get the review image into it, run the Jobs (labkit.review.kube), and
turn each outcome into the same job folder, record and reports as the local backend.
The pod runs the same worker (labkit.review.kube_entry); only the transport differs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from labkit.errors import RuntimeUnavailable
from labkit.review.jobs import JobFolder, Pending, ReviewJob, ReviewRecord, stage, staged_archive
from labkit.review.kube import JobRunner, KubeOptions, Submission, split_archive
from labkit.review.report import announce, save
from labkit.review.sandbox import Enforcement, SandboxPolicy
from labkit.session import write_json_atomic
from labkit.ui import UI

KIND_NETWORK_WARNING = ("network: NOT isolated. The reviews' namespace has a default-deny NetworkPolicy, but this "
                        "kind cluster's CNI does not enforce NetworkPolicy: candidate code in a review pod could reach "
                        "the cluster's network (not the reviewer's files: those are not in the pod)")


def kube_enforcement(options: KubeOptions) -> Enforcement:
    """Reviews in pods: non-root, read-only root, no capabilities, pod limits. What a kind
    cluster cannot enforce (its CNI ignores NetworkPolicy) is a warning in every report."""
    from labkit.sandbox.enforcement import DOCKER_SOURCES_WARNING

    # A review pod is one container like Docker mode's: the candidate's commands share it
    # with the lab's full sources.
    warnings = ([KIND_NETWORK_WARNING] if _kind_name(options) else []) + [
        DOCKER_SOURCES_WARNING.replace("the review's container", "the review's pod")]
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


class KubeBackend:
    name = "k8s"

    def __init__(self, *, policy: SandboxPolicy, sandbox: str, kube: KubeOptions | None, ui: UI) -> None:
        self.policy, self.ui, self.options = policy, ui, kube or KubeOptions()
        self.enforcement = kube_enforcement(self.options)

    def review(self, pending: list[Pending], *, hidden: bool, parallel: int) -> list[ReviewRecord]:
        """Review `pending` as Jobs; the records in input order."""
        policy, enforcement, options, ui = self.policy, self.enforcement, self.options, self.ui
        records: dict[Path, ReviewRecord] = {}
        items: dict[str, Submission] = {}
        jobs: dict[str, ReviewJob] = {}
        for item in pending:
            if item.sha in items:  # the same bytes under another name: one Job for both
                items[item.sha].extra_dirs.append((item.archive, item.folder.path))
                continue
            job = stage(item, hidden=hidden, policy=policy, enforcement=enforcement, root=Path("/review"))
            try:
                split_archive(staged_archive(item, job).read_bytes())
            except ValueError as exc:
                records[item.folder.path] = record = save(
                    ReviewRecord.error(job, archive=item.archive, reason=f"{item.archive.name}: {exc}"), item.folder)
                announce(item.archive, record, ui)
            else:
                items[item.sha], jobs[item.sha] = Submission(item.archive, item.folder.path, item.sha, job.to_dict()), job
        if items:
            cluster, kind = connect(options, ui)
            image = _image(options, policy, kind, ui)
            runner = JobRunner(cluster, image=image, policy=policy, hidden=hidden, namespace=options.namespace,
                               batch=time.strftime("%Y%m%dt%H%M%S"), parallel=parallel, progress=ui.note)
            runner.prepare()
            ui.note(f"reviewing {len(items)} submission(s) as Jobs in {cluster.info.context}/{options.namespace} "
                    f"({parallel} at a time, image {image})")

            def done(sub: Submission, outcome: dict[str, Any]) -> None:
                job = jobs[sub.sha]
                for archive, job_dir in [(sub.archive, sub.job_dir), *sub.extra_dirs]:
                    folder = Pending(archive, JobFolder(job_dir), sub.sha)
                    if job_dir != sub.job_dir:
                        stage(folder, hidden=hidden, policy=policy, enforcement=enforcement, root=Path("/review"))
                    record = _outcome_record(outcome, job, folder)
                    folder.folder.log_file.write_text(outcome.get("log", ""), encoding="utf-8")
                    if outcome.get("kube"):
                        write_json_atomic(folder.folder.kube_file, outcome["kube"])
                    records[job_dir] = save(record, folder.folder)
                    announce(archive, record, ui)

            try:
                runner.run(list(items.values()), done)
            except KeyboardInterrupt:
                ui.note(f"interrupted: the Jobs already created go on in namespace {options.namespace} (deleted an "
                        "hour after they finish); rerun the same command to collect their results")
                raise
        return [records[p.folder.path] for p in pending if p.folder.path in records]


def _outcome_record(outcome: dict[str, Any], job: ReviewJob, pending: Pending) -> ReviewRecord:
    """A pod's record (checked against the schema: the log is the pod's word) or the Job's failure."""
    folder = pending.folder
    if "record" in outcome:
        try:
            record = ReviewRecord.from_dict({**outcome["record"], "id": folder.name, "archive": str(pending.archive)})
        except (ValueError, TypeError) as exc:
            record = ReviewRecord.error(job, archive=pending.archive, reason=f"the review pod's record is unreadable: {exc}")
    else:
        record = ReviewRecord.error(job, archive=pending.archive, reason=outcome["error"])
    record = record.with_(id=folder.name, archive=str(pending.archive))
    return record.with_(kube=outcome["kube"]) if outcome.get("kube") else record


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
