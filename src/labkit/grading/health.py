"""Watching the lab's services while a grade runs, so an outage is never the candidate's fail.

A check that fails or a candidate command that times out while MLflow was down says
nothing about the candidate. The grader therefore polls every service's health URL
during the whole grade (one thread per service) and keeps the outages it saw: a
failure while a service was or had been down is reported as ``error`` naming the
service and when it was down, and a service that is down now stops the grade's
candidate commands and fails the remaining checks' setup within seconds instead of
after the timeouts.

A single missed probe is not an outage (a loaded machine answers late): a service is
down after ``DOWN_AFTER`` consecutive failed probes, and up again at its next answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from labkit.runtimes.local import http_ok

PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 5.0
DOWN_AFTER = 2  # consecutive failed probes


@dataclass
class Outage:
    service: str
    url: str
    started: float  # epoch seconds of the first failed probe
    ended: float | None = None  # epoch seconds of the first answer after it

    def describe(self) -> str:
        since = _clock(self.started)
        if self.ended is None:
            return f"{self.service} at {self.url} has not answered since {since} UTC"
        return f"{self.service} at {self.url} did not answer from {since} to {_clock(self.ended)} UTC"

    def to_dict(self) -> dict[str, object]:
        return {"service": self.service, "url": self.url, "started": self.started, "ended": self.ended}


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S")


class HealthWatch:
    """Polls health URLs in the background and records outages.

    ``probe`` answers whether a URL is healthy (tests pass a fake); ``on_change`` is told
    of every outage when it starts and when it ends (the plugin streams them to the
    grade's results file, where the parent process reads them).
    """

    def __init__(self, targets: dict[str, str], *, probe: Callable[[str, float], bool] | None = None,
                 interval_s: float = PROBE_INTERVAL_S, probe_timeout_s: float = PROBE_TIMEOUT_S,
                 on_change: Callable[[Outage], None] | None = None) -> None:
        self._targets: dict[str, tuple[str, str]] = {}  # name -> (service url, health url)
        self._probe = probe or (lambda url, timeout: http_ok(url, timeout=timeout))
        self._interval, self._timeout = interval_s, probe_timeout_s
        self._on_change = on_change
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (consecutive failures, first failure)
        self._current: dict[str, Outage] = {}
        self._history: list[Outage] = []
        self._stop = threading.Event()
        self._started = False
        self._threads: list[threading.Thread] = []
        for name, (url, health_url) in targets.items():
            self._targets[name] = (url, health_url)

    def check_now(self) -> None:
        """Probe every service up to DOWN_AFTER times, synchronously: before the first
        check, so that a service already down is known before anything runs."""
        for name in list(self._targets):
            for attempt in range(DOWN_AFTER):
                if self._probe_once(name):
                    break
                if attempt + 1 < DOWN_AFTER:
                    time.sleep(self._interval)

    def start(self) -> None:
        self._started = True
        for name in list(self._targets):
            self._start_thread(name)

    def add(self, name: str, url: str, health_url: str) -> None:
        """Watch one more service from now on (a private server the grade started)."""
        with self._lock:
            self._targets[name] = (url, health_url)
        if self._started:
            self._start_thread(name)

    def remove(self, name: str) -> None:
        """Stop watching a service (a private server the grade is about to stop)."""
        with self._lock:
            self._targets.pop(name, None)
            self._current.pop(name, None)
            self._failures.pop(name, None)

    def stop(self) -> None:
        self._stop.set()

    def confirm(self) -> None:
        """Before a failure is given to the candidate: probe every service now, so that a
        failure that raced the watcher (a command that crashed on a refused connection
        before two probes missed) still finds the outage. Costs one quick request per
        service while they answer."""
        with self._lock:
            names = list(self._targets)
        for name in names:
            for attempt in range(DOWN_AFTER):
                if self._probe_once(name) or name in self._current:
                    break
                time.sleep(self._interval)

    def down(self) -> list[Outage]:
        with self._lock:
            return list(self._current.values())

    def outages(self) -> list[Outage]:
        """Every outage seen in this grade, the ongoing ones included."""
        with self._lock:
            return [*self._history, *self._current.values()]

    def reason_down(self) -> str:
        """Why candidate commands must stop now ("" while every service answers)."""
        return "; ".join(o.describe() for o in self.down())

    # ---- internals ----------------------------------------------------------------------

    def _start_thread(self, name: str) -> None:
        thread = threading.Thread(target=self._loop, args=(name,), name=f"labkit-health-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _loop(self, name: str) -> None:
        while not self._stop.is_set() and name in self._targets:
            self._probe_once(name)
            self._stop.wait(self._interval)

    def _probe_once(self, name: str) -> bool:
        with self._lock:
            target = self._targets.get(name)
        if target is None:
            return True
        url, health_url = target
        started = time.time()
        healthy = self._probe(health_url, self._timeout)
        changed: Outage | None = None
        with self._lock:
            if name not in self._targets:
                return True
            if healthy:
                self._failures[name] = (0, 0.0)
                outage = self._current.pop(name, None)
                if outage is not None:
                    outage.ended = time.time()
                    self._history.append(outage)
                    changed = outage
            else:
                count, first = self._failures.get(name, (0, 0.0))
                count, first = count + 1, first if count else started
                self._failures[name] = (count, first)
                if count >= DOWN_AFTER and name not in self._current:
                    changed = self._current[name] = Outage(name, url, first)
        if changed is not None and self._on_change is not None:
            self._on_change(changed)
        return healthy


def describe(outages: list[Outage]) -> str:
    return "; ".join(o.describe() for o in outages)
