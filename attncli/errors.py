"""Errors a user can cause and fix. Each message is one sentence that names the file, line or option."""


class AttncliError(Exception):
    """Base class: the CLI prints the message on one stderr line and exits with status 1."""


class CorpusError(AttncliError):
    """A corpus file is missing, unreadable, not UTF-8 or not `source<TAB>target`."""


class ModelFileError(AttncliError):
    """A model folder is missing, incomplete, corrupt, or not an attncli model."""


class OptionError(AttncliError):
    """An option value is out of range or inconsistent with another."""


class InputError(AttncliError):
    """A sentence to translate or align is unusable (empty, or longer than the model allows)."""


class InputTooLongError(InputError):
    """A sentence has more pieces than the model takes (tokenizer.MAX_INPUT_PIECES)."""
