"""Errors that the command line turns into a one-line message and a non-zero exit.

Everything a user can cause (a bad file, a wrong model, a bad option) raises a subclass of
`AudioCodecError`; anything else that escapes is a bug and is reported as such.
"""


class AudioCodecError(Exception):
    """Base class of the errors a user can cause; `str(error)` is the whole message."""


class AudioReadError(AudioCodecError):
    """An input file is missing, empty, unreadable, not audio, or holds NaN/Inf samples."""


class FormatError(AudioCodecError):
    """A compressed file is truncated, corrupted, foreign, or of an unsupported version."""


class ModelMismatchError(AudioCodecError):
    """Weights or compressed data belong to another model than the one asked to use them."""


class ConfigError(AudioCodecError, ValueError):
    """A configuration holds an unknown key or a value of the wrong kind."""


class OutputExistsError(AudioCodecError):
    """An output file exists and `--force` was not given."""


class InvalidArgumentError(AudioCodecError, ValueError):
    """A value passed to the library or on the command line is out of range: a bandwidth the model lacks, a
    sample rate the format cannot record, audio of the wrong shape. A `ValueError` too, for library callers."""


class NonFiniteError(AudioCodecError, ValueError):
    """A training step met NaN or Inf: in the encoder's output, which the quantizer refuses before it changes a
    codebook. Every DDP rank raises it in the same step (the check is all-reduced), so the trainer can skip the step
    on all of them."""
