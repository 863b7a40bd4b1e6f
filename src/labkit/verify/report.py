"""What `labkit verify` found, as data (``--json``) and as text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    section: str  # starter | solution | wrong | fair | stress
    name: str
    ok: bool
    summary: str
    detail: str = ""


@dataclass(frozen=True)
class MutantOutcome:
    id: str
    description: str
    outcome: str  # killed | survived | error | equivalent
    detail: str = ""
    seconds: float = 0.0  # its grade's wall time (0 for an equivalent one, not graded)


@dataclass
class VerifyReport:
    lab_id: str
    seeds: list[int]
    findings: list[Finding] = field(default_factory=list)
    mutants: list[MutantOutcome] = field(default_factory=list)
    mutants_total: int = 0  # generated, of which ``mutants`` were graded

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def count(self, outcome: str) -> int:
        return sum(1 for m in self.mutants if m.outcome == outcome)

    @property
    def kill_rate(self) -> float | None:
        """Killed share of the graded, non-equivalent mutants that did not error."""
        judged = self.count("killed") + self.count("survived")
        return self.count("killed") / judged if judged else None

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings) and self.count("survived") == 0 and self.count("error") == 0

    def to_dict(self) -> dict[str, Any]:
        return {"lab": self.lab_id, "seeds": self.seeds, "ok": self.ok,
                "findings": [asdict(f) for f in self.findings],
                "mutants": {"generated": self.mutants_total, "graded": len(self.mutants),
                            **{k: self.count(k) for k in ("killed", "survived", "error", "equivalent")},
                            "kill_rate": self.kill_rate, "outcomes": [asdict(m) for m in self.mutants]}}

    def render(self) -> str:
        lines = [f"labkit verify {self.lab_id} (seeds {', '.join(map(str, self.seeds))})"]
        for f in self.findings:
            lines.append(f"  {'ok  ' if f.ok else 'FAIL'} {f.section:<8} {f.name}: {f.summary}")
            lines += [f"         {line}" for line in f.detail.splitlines()[:12] if not f.ok]
        if self.mutants:
            rate = "n/a" if self.kill_rate is None else f"{100 * self.kill_rate:.0f}%"
            lines.append(f"  mutants: {len(self.mutants)} graded of {self.mutants_total}: {self.count('killed')} killed, "
                         f"{self.count('survived')} survived, {self.count('error')} error, "
                         f"{self.count('equivalent')} equivalent; killed {rate}")
            for m in self.mutants:
                if m.outcome in ("survived", "error"):
                    lines.append(f"    {m.outcome.upper()} {m.id} ({m.description})")
                    lines += [f"      {line}" for line in m.detail.splitlines()[:10]]
        lines.append("verified" if self.ok else "NOT verified")
        return "\n".join(lines)
