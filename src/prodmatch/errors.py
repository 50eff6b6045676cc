"""The one exception type users see for bad input: the CLI prints it without a traceback."""


class DataError(ValueError):
    """Input data (a table, an image folder, a submission) is not what the stage needs."""


def preview(items, limit: int = 5) -> str:
    """First few offenders for an error message, with a count of the rest."""
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:limit])
    rest = len(items) - limit
    return shown + (f" (+{rest} more)" if rest > 0 else "")
