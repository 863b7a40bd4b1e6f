"""The churn population the model is trained on, and the grader's hidden requests.

Training data and hidden inputs come from different streams of the same seed, so no
request the grader sends is ever in the workspace.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract"]
CONTRACTS = ["monthly", "annual", "two_year"]
MODEL_NAME = "churn-classifier"


def population(seed: int, n: int, stream: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng([seed, stream])
    frame = pd.DataFrame({
        "tenure_months": rng.integers(1, 72, n),
        "monthly_charges": np.round(rng.normal(70, 25, n).clip(15, 150), 2),
        "support_calls": rng.poisson(1.5, n),
        "contract": rng.choice(CONTRACTS, n, p=[0.55, 0.3, 0.15]),
    })
    logit = (-1.0 - 0.045 * frame.tenure_months + 0.02 * frame.monthly_charges + 0.45 * frame.support_calls
             - 1.2 * (frame.contract != "monthly"))
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def hidden_requests(seed: int, n: int = 40) -> list[dict]:
    """Rows only the grader knows (another stream of the seed)."""
    frame = population(seed, n, stream=7919)[FEATURES]
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]
