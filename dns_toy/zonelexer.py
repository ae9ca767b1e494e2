"""Split zone-file text into entries of tokens, and decode backslash escapes.

`_lex` follows RFC 1035 section 5.1. An entry is one line, or several lines
joined by parentheses, and its tokens keep their line number and their
escapes. `_lex` raises ZoneFileError itself for unbalanced parentheses, an
unterminated quoted string and a backslash that ends a line.

The parsers of fields decode the escapes with `_unescape` and `_read_escape`.
They raise `_TokenError` for a bad token, and the reader in zonefile turns it
into a ZoneFileError at that token's line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from .errors import ZoneFileError


class _TokenError(Exception):
    """A bad token, raised by the parsing helpers and located by the reader."""

    def __init__(self, token: _Token, message: str) -> None:
        super().__init__(message)
        self.token = token


# Lexing (RFC 1035 section 5.1). Every character matches one alternative.
# Only two reach "other": a quote that does not close on its line, and a
# backslash that ends a line.
_LEXEME = re.compile(
    r"""
    (?P<newline>\n)
    | (?P<space>[^\S\n]+)
    | (?P<comment>;[^\n]*)
    | "(?P<quoted>(?:[^"\\\n]|\\[^\n])*)"
    | (?P<word>(?:[^\s;()"\\]|\\[^\n])+)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<other>[\s\S])
    """,
    re.VERBOSE,
)


class _Token(NamedTuple):
    """One field of an entry, with its escapes kept, and its line number."""

    text: str
    quoted: bool
    line: int


class _Entry(NamedTuple):
    """The tokens of one line, or of several lines joined by parentheses."""

    line: int
    blank_owner: bool
    tokens: list[_Token]


def _lex(text: str, path: str) -> Iterator[_Entry]:
    line = 1
    depth = 0
    open_line = 0
    blank_owner = False
    at_line_start = True
    tokens: list[_Token] = []
    for match in _LEXEME.finditer(text):
        kind = match.lastgroup
        if at_line_start and depth == 0:
            # A line that starts with white space has a blank owner.
            blank_owner = kind == "space"
        at_line_start = kind == "newline"
        if kind == "newline":
            if depth == 0 and tokens:
                yield _Entry(tokens[0].line, blank_owner, tokens)
                tokens = []
            line += 1
        elif kind == "word" or kind == "quoted":
            tokens.append(_Token(match.group(kind), kind == "quoted", line))
        elif kind == "open":
            open_line = line if depth == 0 else open_line
            depth += 1
        elif kind == "close":
            if depth == 0:
                raise ZoneFileError(path, line, "unexpected ')'")
            depth -= 1
        elif kind == "other":
            message = "unterminated quoted string"
            if match.group() == "\\":
                message = "backslash at the end of a line"
            raise ZoneFileError(path, line, message)
    if depth:
        raise ZoneFileError(path, open_line, "unclosed '(' opened here")
    if tokens:
        yield _Entry(tokens[0].line, blank_owner, tokens)


# Escapes (RFC 1035 section 5.1).
_ESCAPE_DIGITS = re.compile(r"[0-9]{3}")


def _unescape(token: _Token) -> bytes:
    """Return the octets of a string token, with its escapes decoded."""
    text = token.text
    output = bytearray()
    index = 0
    while (backslash := text.find("\\", index)) >= 0:
        output += _encode(token, text[index:backslash])
        octets, index = _read_escape(token, backslash)
        output += octets
    output += _encode(token, text[index:])
    return bytes(output)


def _read_escape(token: _Token, index: int) -> tuple[bytes, int]:
    """Decode the escape at `index`: \\DDD is a decimal octet, \\X is X."""
    text = token.text
    following = text[index + 1 : index + 2]
    if not following:
        raise _TokenError(token, f"backslash at the end of {_show(token)}")
    if "0" <= following <= "9":
        digits = text[index + 1 : index + 4]
        if not _ESCAPE_DIGITS.fullmatch(digits) or int(digits) > 255:
            raise _TokenError(token, f"invalid escape '\\{digits}' in {_show(token)}")
        return bytes([int(digits)]), index + 4
    return _encode(token, following), index + 2


def _encode(token: _Token, text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _TokenError(token, f"invalid character in {_show(token)}") from None


def _show(token: _Token) -> str:
    """Quote a token for an error message, shortened and printable."""
    text = f'"{token.text}"' if token.quoted else token.text
    if len(text) > 60:
        text = text[:57] + "..."
    return "'" + text.encode("utf-8", "backslashreplace").decode("utf-8") + "'"
