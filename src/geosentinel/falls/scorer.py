"""The shipped fall model as the pipeline uses it: a device's motion window in, a verdict out."""

from __future__ import annotations

import logging

import numpy as np

from geosentinel.detect.falls import FallScorer
from geosentinel.falls.classifier import FallModel, FallVerdict
from geosentinel.model import ImuWindow

log = logging.getLogger(__name__)


def window_scorer(model: FallModel) -> FallScorer:
    """Judges :class:`ImuWindow`\\ s with ``model``; raises ``WindowError`` (a ValueError) for a window
    that cannot be judged."""

    def score(window: ImuWindow) -> FallVerdict:
        accel_t_s = np.asarray(window.accel_t_ms, dtype=np.float64) / 1000.0
        if not window.gyro_dps:
            return model.score_window(accel_t_s, window.accel_g)
        gyro_t_s = np.asarray(window.gyro_t_ms, dtype=np.float64) / 1000.0
        return model.score_window(accel_t_s, window.accel_g, gyro_t_s, window.gyro_dps)

    return score


def shipped_scorer() -> FallScorer | None:
    """The shipped model's scorer, or None (logged) if it cannot be loaded: device fall alarms then
    count on their own, rather than the service refusing to start."""
    try:
        return window_scorer(FallModel.load())
    except Exception:
        log.exception("the fall model could not be loaded: device fall alarms will count unconfirmed")
        return None
