"""The churn population of the retraining-trigger lab, as a pure function of the seed.

Two regimes. Before the shift, customers churn on high charges and many support calls.
After a competitor's cheaper plan (the shift), charges fall, newer customers arrive,
support calls rise, and churn turns around: now the *cheap* plans churn. A champion
trained before the shift ranks the new traffic badly; a challenger trained on a window
of new, correctly labelled traffic ranks it well. That gap is what lets the grader
tell "promoted because it is better" from "promoted anyway".

A third concept, ``later``, is the traffic shifting again (same customers as after the
shift, but usage now drives churn and expensive plans churn again): a model of the
"after" traffic ranks it badly, so a challenger trained on it is better by far. Blending
the two concepts (``concept=w`` between 0 and 1) gives challengers that are better by a
chosen amount: the grader uses it for one that is better, but by less than the margin.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
LABEL = "churned"


@dataclass(frozen=True)
class Population:
    seed: int
    tilt: float  # the seed's variation of the concepts' coefficients (about +-10%)
    # The seed rows are drawn from: the lab seed for the workspace and a visible grade; in a
    # hidden grade the seed under the review key (labkit's scenario_seed), so a candidate,
    # who has the lab seed and this code, cannot regenerate the batches a hidden grade sends.
    draw_seed: int | None = None

    @classmethod
    def from_seed(cls, seed: int, *, draw_seed: int | None = None) -> Population:
        return cls(seed, float(np.random.default_rng([seed, 0]).uniform(0.9, 1.1)),
                   None if draw_seed == seed else draw_seed)

    @property
    def draws(self) -> int:
        return self.seed if self.draw_seed is None else self.draw_seed

    def sample(self, n: int, *, regime: str, stream: int, labels: str = "true", concept: float | None = None
               ) -> pd.DataFrame:
        """``n`` labelled rows of ``regime`` ("before" or "after" the shift, or "later").

        ``stream`` makes independent draws (the same stream always gives the same rows,
        whatever the concept); ``labels="inverted"`` is a broken labelling job that wrote
        every label backwards. After the shift the concept is ``concept`` of the way from
        the "after" one (0, the default of "after") to the "later" one (1, that of "later").
        """
        if regime not in ("before", "after", "later"):
            raise ValueError(f"unknown regime {regime!r}")
        w = float(concept if concept is not None else (1.0 if regime == "later" else 0.0))
        rng = np.random.default_rng([self.draws, stream, 0 if regime == "before" else 1])
        if regime == "before":
            tenure = rng.integers(1, 73, n).astype(float)
            charges = np.clip(rng.normal(70, 18, n), 20, 130)
            calls = rng.poisson(1.5, n).astype(float)
        else:
            tenure = np.clip(np.round(1 + rng.exponential(12, n)), 1, 72)
            charges = np.clip(rng.normal(50, 15, n), 20, 130)
            calls = rng.poisson(3.0, n).astype(float)
        usage = np.round(rng.lognormal(2.5, 0.5, n), 2)
        k = self.tilt
        if regime == "before":
            logit = -1.0 - 0.045 * k * (tenure - 36) + 0.04 * k * (charges - 70) + 0.45 * (calls - 1.5)
        else:
            after = -0.6 - 0.02 * k * (tenure - 12) - 0.07 * k * (charges - 50) + 0.12 * (calls - 3) + 0.06 * (usage - 13)
            later = -0.6 - 0.03 * k * (tenure - 12) + 0.05 * k * (charges - 50) + 0.10 * (calls - 3) - 0.15 * (usage - 13)
            logit = (1 - w) * after + w * later
        churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        if labels == "inverted":
            churned = 1 - churned
        elif labels != "true":
            raise ValueError(f"unknown labels {labels!r}")
        return pd.DataFrame({"tenure_months": tenure, "monthly_charges": np.round(charges, 2),
                             "support_calls": calls, "data_usage_gb": usage, LABEL: churned})


def to_csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def train_model(frame: pd.DataFrame):
    """The team's model: what the starter's training does, and what the baseline champion is."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(frame[FEATURES], frame[LABEL])


def auc(model, frame: pd.DataFrame) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(frame[LABEL], model.predict_proba(frame[FEATURES])[:, 1]))
