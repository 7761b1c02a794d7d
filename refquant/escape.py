"""One escaping helper per output format, for text that comes from a model, a dump or a manifest.

A ``.tflite`` file is untrusted input: its tensor names, description and signature keys are arbitrary
bytes decoded as UTF-8. Whatever refquant writes that another program interprets goes through here:

* :func:`c_comment` for text inside ``/* ... */`` of a generated C file (a ``*/`` in a tensor name
  must not end the comment and turn the rest of the name into code);
* :func:`terminal` for text printed to a terminal (no escape sequences, no control or bidirectional
  formatting characters);
* :func:`shell_word` for one argument of a command line refquant suggests;
* HTML pages use :func:`html.escape` (report.py) and JSON uses :func:`json.dumps`, which escape by
  themselves.

Each helper keeps printable text as it is and turns everything else into a visible ``\\xNN`` /
``\\uNNNN`` escape, so the output still says what the input held and never acts on the reader.
"""

from __future__ import annotations

import shlex
import unicodedata

__all__ = ["c_comment", "terminal", "shell_word", "visible"]

#: Unicode's bidirectional formatting characters (the "Trojan Source" set) and other invisible controls.
_BIDI = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


def _escape_char(ch: str) -> str:
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else (f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control, format (category C*) and bidirectional character as a visible escape.

    Backslashes are kept as they are (so paths and quoted shell words stay usable): a ``\\x1b`` in the
    output may be an escape or those four characters, never an escape character itself.
    """
    out = []
    for ch in str(text):
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch in _BIDI or unicodedata.category(ch).startswith("C"):
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    return "".join(out)


def terminal(text: str, *, keep_newlines: bool = False) -> str:
    """Text safe to print to a terminal: no ESC sequences, control or bidirectional characters."""
    return visible(text, keep_newlines=keep_newlines)


def c_comment(text: str) -> str:
    """One line of text safe inside a C ``/* ... */`` comment (C99, trigraphs included).

    Control and non-ASCII characters are escaped (C compilers reject or misread some of them, and
    bidirectional controls hide code), ``*/`` cannot close the comment, ``/*`` cannot nest a warning,
    and ``??`` cannot start a trigraph (``??/`` is a backslash that splices lines).
    """
    s = visible(text)
    s = "".join(ch if ord(ch) < 0x7F else _escape_char(ch) for ch in s)
    while "*/" in s or "/*" in s or "??" in s:
        s = s.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
    return s


def shell_word(text: str) -> str:
    """One shell word (POSIX quoting) standing for exactly ``text``, printable for a terminal too."""
    return shlex.quote(terminal(text))
