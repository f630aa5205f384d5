"""Links from a chapter's equations to the lines of the package that compute them.

A method chapter ends its derivation with a table: one row per term of the equation, each
linking to the line that computes it. The line is found by a short piece of its text (a
*needle*) inside the function or class, so the links follow the code when it moves; a needle
that is no longer there raises, so a chapter cannot link to a line that is gone.
"""

from __future__ import annotations

import inspect

from sepcore.paths import REPOSITORY_BRANCH, REPOSITORY_URL


def code_link(obj, needle: str, label: str | None = None) -> str:
    """A Markdown link ``[`label`](<repository>/blob/<branch>/sepcore/<file>#L<line>)`` to the first
    line of ``obj``'s source that contains ``needle``."""
    obj = inspect.unwrap(obj)                         # decorated functions (torch.no_grad) link to their own source
    lines, start = inspect.getsourcelines(obj)
    offset = next((i for i, line in enumerate(lines) if needle in line), None)
    if offset is None:
        raise ValueError(f"{needle!r} does not occur in the source of {obj.__qualname__}")
    file = inspect.getsourcefile(obj).replace("\\", "/").rsplit("sepcore/", 1)[1]
    return f"[`{label or needle}`]({REPOSITORY_URL}/blob/{REPOSITORY_BRANCH}/sepcore/{file}#L{start + offset})"


def equation_table(rows) -> str:
    """``rows``: ``(term, link)`` pairs -> a two-column Markdown table (term, code)."""
    return "| term | code |\n| --- | --- |\n" + "\n".join(f"| {term} | {link} |" for term, link in rows)
