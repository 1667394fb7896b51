"""One exception type for problems the user can fix; the CLI prints it as one line."""


class SaflexError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""
