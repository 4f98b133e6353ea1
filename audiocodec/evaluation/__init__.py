"""Evaluation: objective metrics (`metrics`), the test-set reader (`dataset`), the Opus baseline (`opus`), the
evaluation loop (`evaluate`), reports and plots (`report`, `plots`) and the `audiocodec eval` command (`cli`)."""

from ..errors import AudioCodecError


class EvaluationError(AudioCodecError):
    """Data, tools or options of `audiocodec eval` that the user can fix; the CLI prints it as one line."""
