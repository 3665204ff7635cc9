"""The one exception type for errors a user can cause.

Anything a user can get wrong (a keyframe file, an expression, a model path, an ffmpeg failure) raises
:class:`AnimatorError` with a message that says *where* (file, line, field) and *what to do*. The CLI prints it
without a traceback and exits with status 2; the notebook shows the same text.
"""

from __future__ import annotations

import os


class AnimatorError(Exception):
    """A problem the user can fix.

    Args:
        message: what is wrong and what was expected.
        file: the file the problem is in, if any.
        line: 1-based line number in ``file``, if known.
        field: dotted name of the offending field (``motion.translation_z``) or argument name.
        hint: what to do about it, shown on its own line.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = os.fspath(file) if file is not None else None
        self.line = line
        self.field = field
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def with_location(
        self, *, file: str | os.PathLike | None = None, line: int | None = None, field: str | None = None
    ) -> AnimatorError:
        """A copy with missing location parts filled in (parts already set are kept)."""
        return AnimatorError(
            self.message,
            file=self.file or file,
            line=self.line or line,
            field=self.field or field,
            hint=self.hint,
        )
