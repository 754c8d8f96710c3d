"""Where AWS found a key, as text a person can read and no mail or chat client turns into a link.

The place is attacker-influenced (whoever published the key chose the repository, path and file name), and
a notice is read at 3 a.m. by someone who should scrub it, not click it: control, format and bidirectional
characters (which can make `gpj.exe` read as `exe.jpg`) are removed, the scheme becomes `hxxp`/`hxxps`
(`ftp` becomes `fxp`, any other scheme loses its `://`), and every dot is bracketed (`github[.]com`,
`deploy[.]env`: a bare `name.tld` is auto-linked by chat clients). The result is the conventional defanged
form security teams paste into tickets, cut to a bounded length.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_URL = 400
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,30}):/{0,3}")
_SPACES = re.compile(r"\s+")
_INNER = re.compile(r"(?i)(https?|[a-z][a-z0-9+-]{0,30})://")  # a URL inside the URL (?next=https://...)


def printable(value: object, limit: int = MAX_URL) -> str:
    """One line of visible text: no control, format (bidi, zero-width) or line/paragraph separators."""
    text = _SPACES.sub(" ", _visible_line(str(value))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def printable_lines(value: object) -> str:
    """The same filter for text of several lines (a notice's body): line breaks kept, every other
    whitespace a space (columns stay aligned), everything invisible or re-ordering dropped. A user agent or
    name with U+202E must not turn the e-mail's facts around."""
    return "\n".join(_visible_line(line) for line in str(value).split("\n"))


def visible_strings(value: Any) -> Any:
    """printable_lines() on every string inside a document (dicts and lists): its JSON copy for machines."""
    if isinstance(value, str):
        return printable_lines(value)
    if isinstance(value, dict):
        return {k: visible_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible_strings(v) for v in value]
    return value


def _visible_line(text: str) -> str:
    return "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or _visible(ch))


def defang_url(value: object, limit: int = MAX_URL) -> str:
    """`https://github.com/o/r/blob/main/.env` -> `hxxps://github[.]com/o/r/blob/main/[.]env`."""
    text = printable(value, limit * 2)
    found = _SCHEME.match(text)
    rest = text[found.end() :] if found else text
    rest = _INNER.sub(_inner, rest.replace(".", "[.]"))
    if found:
        scheme = found.group(1).lower()
        named = {"http": "hxxp", "https": "hxxps", "ftp": "fxp"}.get(scheme)
        text = f"{named}://{rest}" if named else f"{scheme}[:]//{rest}"
    else:
        text = rest
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _inner(found: re.Match[str]) -> str:
    scheme = found.group(1)
    named = "hxxp" + scheme[4:] if scheme.lower() in ("http", "https") else scheme
    return f"{named}[://]"


def _visible(ch: str) -> bool:
    return unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp")
