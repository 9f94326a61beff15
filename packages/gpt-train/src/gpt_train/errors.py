"""The one exception type gpt_train raises for problems a user can fix."""

from __future__ import annotations


class TrainError(Exception):
    """Bad config, missing data, an unknown checkpoint or a diverged run: a one-line message."""
