"""Fall confirmation from a bracelet's IMU window (wrist accelerometer, optionally gyroscope).

``signals`` (resampling, pure) → ``features`` (candidate impacts and their window features, pure) →
``classifier`` (:class:`FallModel`, the shipped model, verdicts; ``trees`` makes its scoring fast).
``umafall`` reads the training data, ``training`` and ``metrics`` train and measure the model, ``cli`` is
``geosentinel falls``. See docs/falls.md.
"""

from geosentinel.falls.classifier import FallModel, FallVerdict, score_recording
from geosentinel.falls.signals import WindowError

__all__ = ["FallModel", "FallVerdict", "WindowError", "score_recording"]
