"""The learned cost model: gradient-boosted trees (LightGBM) on candidates' features.

As TVM's AutoTVM and Ansor do with XGBoost, the model is trained online on the
measurements so far, to predict a candidate's normalized throughput (the best time
measured / its time, in (0, 1]); the search measures what it ranks highest. Errors are
trained as throughput 0, so the model learns to avoid them too.
"""

from __future__ import annotations

import math

import numpy as np

MIN_SAMPLES = 8                  # below this, the model ranks at random


class CostModel:
    def __init__(self, seed: int = 0):
        self.seed = seed
        self.names: list[str] = []
        self.booster = None

    def fit(self, rows: list[dict], seconds: list[float | None]) -> None:
        """Train on feature dicts and their times (None: an error)."""
        timed = [s for s in seconds if s is not None]
        if len(rows) < MIN_SAMPLES or not timed:
            self.booster = None
            return
        try:
            import lightgbm
        except ImportError:
            from ..errors import TdslError
            raise TdslError("td.tune's cost model needs LightGBM: pip install 'tdsl[tune]' "
                            "(or search='random', which needs no model)") from None
        best = min(timed)
        y = np.array([best / s if s is not None else 0.0 for s in seconds])
        self.names = sorted({k for r in rows for k in r})
        x = self._matrix(rows)
        params = {"objective": "regression", "learning_rate": 0.1, "num_leaves": 15,
                  "min_data_in_leaf": 2, "min_data_in_bin": 1, "seed": self.seed,
                  "num_threads": 1, "deterministic": True, "force_row_wise": True,
                  "verbosity": -1}
        data = lightgbm.Dataset(x, y, params={"verbosity": -1})
        self.booster = lightgbm.train(params, data, num_boost_round=80)

    @property
    def trained(self) -> bool:
        return self.booster is not None

    def predict(self, rows: list[dict]) -> np.ndarray:
        """Predicted normalized throughput per row (higher is faster)."""
        if self.booster is None:
            raise RuntimeError("the cost model is not trained yet")
        return self.booster.predict(self._matrix(rows))

    def _matrix(self, rows: list[dict]) -> np.ndarray:
        x = np.full((len(rows), len(self.names)), np.nan)
        for i, r in enumerate(rows):
            for j, name in enumerate(self.names):
                v = r.get(name)
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    x[i, j] = v
        return x
