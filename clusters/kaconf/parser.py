"""keepalived.conf syntax as keepalived 2.2.7 reads it: a tree of nodes with file:line positions.

The rules follow keepalived's own reader (lib/parser.c in 2.2.7: decomment(), read_line(),
alloc_strvec_r(), check_include()), not a guess at the format:
- `#` and `!` start a comment anywhere outside double quotes, also in the middle of a word.
  keepalived's decomment() turns `\\#` into `#`, but 2.2.7 reads the config twice (once to
  copy it for its child processes, decommented, then the copy), so the second reading cuts the
  line there: `virtual_router_id 30\\#0` is VRID 30 to keepalived -t (tested). We do the same.
- A double-quoted string is one word, without its quotes; a word ends at blanks or a `"`.
  Single quotes mean nothing here. An unterminated `"` is an error.
- Every `{` and `}` outside quotes is a token of its own, wherever it stands: `name {` on one
  line or `{` on the next, and one-line blocks like `virtual_ipaddress { 10.0.0.1/24 }`, are the
  same to keepalived and to us. A words line followed by `{` opens a block named by its first
  word; any other words line is a leaf.
- A line starting `@name` is kept only on a host whose config id (keepalived's `-i`, by default
  the host name up to its first dot) is `name`; `@^name` only on the others. With no blank after
  the name the line is dropped. Dropped lines are listed in Config.skipped.
- `include PATTERN` (also `includer`, `includem`, `includew`, `includeb`, `includea`) at the
  start of a line reads the files the glob matches, in sorted order, at that place; a relative
  pattern is relative to the directory of the file that includes it (keepalived changes into
  that directory while it reads the file). A pattern matching nothing is a warning, as in
  keepalived.

Differences, each on purpose and reported rather than silently accepted:
- keepalived's parameter definitions (`$NAME=value`, `~SEQ`, `~LST`) are refused with a
  ParseError: expanding them is a language of its own, and a value read without its expansion
  would be wrong.
- Each file must balance its own braces (keepalived lets a block open in one file and close in
  another); vipanel keeps each block inside one file so it can write it back unchanged.
- A line longer than MAX_LINE is refused: keepalived's fgets() would split it in two.
- Limits keepalived does not have, because these files come from remote hosts: at most
  MAX_FILE_BYTES per file, MAX_FILES files, include depth MAX_INCLUDE_DEPTH, no include loops.

Nothing here touches the disk or the network: the caller passes read(path) -> str and
glob(pattern) -> list of paths, so the same code parses local test files and files read over
SSH. read should itself stop reading after MAX_FILE_BYTES + 1 bytes; the size is checked again.
"""

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 64
MAX_INCLUDE_DEPTH = 8
MAX_LINE = 1023  # keepalived's MAXBUF (1024) less the terminating NUL, in lib/parser.h

_BLANKS = " \t\f\v"
_INCLUDE = re.compile(r"include[rmwba]?[ \t]")
_DEFINITION = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*(\([^)]*\))?[ \t]*=")


class ParseError(Exception):
    """A file keepalived would refuse, or one vipanel will not read; says file:line and why."""

    def __init__(self, file, line, message):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}")


@dataclass
class Node:
    """One statement: a leaf (children is None) or a block.

    start and end are character offsets into the source file's text: text[start:end] is the
    statement exactly as written, from its first character (an `@name ` prefix included) to its
    last word or closing brace, comments inside it included.
    """

    keyword: str
    args: list[str]
    file: str
    line: int
    end_line: int
    start: int
    end: int
    children: list["Node"] | None = None
    condition: str | None = None  # "@name" or "@^name" when the statement's line has one
    source: "SourceFile | None" = field(default=None, repr=False)

    @property
    def is_block(self):
        return self.children is not None

    @property
    def where(self):
        return f"{self.file}:{self.line}"

    @property
    def text(self):
        """The statement byte for byte as in its file."""
        return self.source.text[self.start : self.end]

    def expanded(self):
        """Children with include statements replaced by the statements of the files they read."""
        return expand(self.children or [])


@dataclass
class Include:
    pattern: str
    file: str
    line: int
    files: list["SourceFile"] = field(default_factory=list)
    keyword: str = "include"

    @property
    def where(self):
        return f"{self.file}:{self.line}"


@dataclass
class SourceFile:
    path: str
    text: str
    nodes: list = field(default_factory=list)  # Node and Include, in file order


@dataclass
class Skipped:
    """A line keepalived on this host would not read (an @name line for another host)."""

    file: str
    line: int
    text: str


@dataclass
class Config:
    root: SourceFile
    files: list[SourceFile]
    skipped: list[Skipped]
    warnings: list[str]

    @property
    def nodes(self):
        """Top-level statements of all files, includes expanded, in keepalived's reading order."""
        return expand(self.root.nodes)


def expand(nodes):
    out = []
    for node in nodes:
        if isinstance(node, Include):
            for source in node.files:
                out.extend(expand(source.nodes))
        else:
            out.append(node)
    return out


# --- Tokens of one file ------------------------------------------------------------------------


@dataclass
class _Token:
    kind: str  # "word", "{", "}"
    value: str
    line: int
    start: int  # offsets in the file's text
    end: int
    line_start: int  # offset where this physical line's content (or its @ prefix) begins
    condition: str | None


def _scan_line(path, text, lineno, begin, stop, condition, content_start, tokens):
    """Append the tokens of text[begin:stop] (one physical line, past any @ prefix)."""
    i = begin
    first = True
    while i < stop:
        c = text[i]
        if c in _BLANKS:
            i += 1
            continue
        if c in "#!" or (c == "\\" and text.startswith(("\\#", "\\!"), i)):
            return
        if c in "{}":
            tokens.append(_Token(c, c, lineno, i, i + 1, content_start, condition))
            i += 1
            first = False
            continue
        if c == '"':
            close = text.find('"', i + 1, stop)
            if close < 0:
                raise ParseError(
                    path, lineno, 'this line opens a quoted string with " but never closes it.'
                )
            tokens.append(
                _Token("word", text[i + 1 : close], lineno, i, close + 1, content_start, condition)
            )
            i = close + 1
            first = False
            continue
        j = i
        value = []
        while j < stop:
            c = text[j]
            if c in _BLANKS or c in '"{}#!':
                break
            if c == "\\" and j + 1 < stop and text[j + 1] in "#!":
                break  # see the module docstring: an escaped '#' or '!' starts a comment too
            if c == "\\" and j + 1 < stop:
                value.append(text[j : j + 2])
                j += 2
                continue
            value.append(c)
            j += 1
        word = "".join(value)
        if first and word.startswith("~") and word[:4] in ("~SEQ", "~LST"):
            raise ParseError(
                path,
                lineno,
                f"{word[:4]} (keepalived's generated lines) is not supported by "
                "vipanel; write the lines out in full before adopting this host.",
            )
        tokens.append(_Token("word", word, lineno, i, j, content_start, condition))
        i = j
        first = False


def _decommented_rest(text, begin, stop):
    """The rest of a line without its comment and trailing blanks (for include patterns)."""
    out, quote, i = [], False, begin
    while i < stop:
        c = text[i]
        if c == '"':
            quote = not quote
        elif not quote and (c in "#!" or (c == "\\" and text.startswith(("\\#", "\\!"), i))):
            break
        out.append(c)
        i += 1
    return "".join(out).rstrip(_BLANKS)


class _Reader:
    def __init__(self, read, glob, config_id):
        self.read, self.glob, self.config_id = read, glob, config_id
        self.files = []
        self.skipped = []
        self.warnings = []

    def load(self, path, stack, at):
        if path in stack:
            chain = " -> ".join([*stack[stack.index(path) :], path])
            raise ParseError(*at, f"include loop: {chain}. Remove the include that closes it.")
        if len(stack) > MAX_INCLUDE_DEPTH:
            raise ParseError(
                *at,
                f"includes are nested more than {MAX_INCLUDE_DEPTH} deep; vipanel stops "
                "there (a loop through different paths looks the same).",
            )
        if len(self.files) >= MAX_FILES:
            raise ParseError(
                *at, f"more than {MAX_FILES} files are included; vipanel reads no more."
            )
        try:
            text = self.read(path)
        except OSError as error:
            raise ParseError(*at, f"cannot read {path}: {error.strerror or error}.") from None
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if len(text.encode()) > MAX_FILE_BYTES:
            raise ParseError(
                path,
                1,
                f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; vipanel does "
                "not read keepalived configs that large.",
            )
        source = SourceFile(path, text)
        self.files.append(source)
        source.nodes = self._tree(source, [*stack, path])
        return source

    def _tokens(self, source, stack):
        """Tokens of one file; include lines become ("include", pattern) tokens."""
        path, text = source.path, source.text
        tokens = []
        pos, lineno = 0, 0
        while pos < len(text):
            lineno += 1
            newline = text.find("\n", pos)
            stop = len(text) if newline < 0 else newline
            nxt = stop + 1
            end = stop
            while end > pos and text[end - 1] == "\r":
                end -= 1
            if end - pos > MAX_LINE:
                raise ParseError(
                    path,
                    lineno,
                    f"the line is longer than {MAX_LINE} characters; keepalived "
                    "would cut it there and read the rest as a line of its own.",
                )
            i = pos
            while i < end and text[i] in _BLANKS:
                i += 1
            content_start = i
            condition = None
            if i < end and text[i] == "@":
                reverse = i + 1 < end and text[i + 1] == "^"
                name_start = i + (2 if reverse else 1)
                j = name_start
                while j < end and text[j] not in " \t":
                    j += 1
                name = text[name_start:j]
                if j >= end:
                    keep = False  # keepalived drops an @name line with nothing after the name
                else:
                    keep = (self.config_id == name) != reverse
                if not keep:
                    self.skipped.append(Skipped(path, lineno, text[pos:end]))
                    pos = nxt
                    continue
                condition = text[i:j]
                i = j
                while i < end and text[i] in _BLANKS:
                    i += 1
            if text.startswith("$", i) and _DEFINITION.match(text, i):
                raise ParseError(
                    path,
                    lineno,
                    "keepalived parameter definitions ($NAME=...) are not "
                    "supported by vipanel; write the values out before adopting this host.",
                )
            if _INCLUDE.match(text, i):
                word_end = i + len(_INCLUDE.match(text, i).group(0)) - 1
                pattern = _decommented_rest(text, word_end, end).strip(_BLANKS)
                tokens.append(_Token("include", pattern, lineno, i, end, content_start, condition))
            else:
                _scan_line(path, text, lineno, i, end, condition, content_start, tokens)
            pos = nxt
        return tokens

    def _include(self, token, source, stack):
        pattern = token.value
        if not pattern:
            raise ParseError(source.path, token.line, "include without a file name.")
        if not pattern.startswith("/"):
            pattern = posixpath.join(posixpath.dirname(source.path), pattern)
        node = Include(token.value, source.path, token.line)
        try:
            paths = sorted(self.glob(pattern))
        except OSError as error:
            raise ParseError(
                source.path, token.line, f"cannot list {pattern}: {error.strerror or error}."
            ) from None
        if not paths:
            self.warnings.append(
                f"{source.path}:{token.line}: include {token.value} matches no file "
                "(keepalived reads nothing there either)."
            )
        for path in paths:
            node.files.append(self.load(path, stack, (source.path, token.line)))
        return node

    def _tree(self, source, stack):
        path = source.path
        tokens = self._tokens(source, stack)
        root = []
        # Each open block: (node, its children list).
        open_blocks = []
        current = root
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok.kind == "include":
                current.append(self._include(tok, source, stack))
                i += 1
                continue
            if tok.kind == "}":
                if not open_blocks:
                    raise ParseError(
                        path,
                        tok.line,
                        "a '}' closes a block that was never opened; remove it "
                        "or add the missing '{'.",
                    )
                node, _ = open_blocks.pop()
                node.end, node.end_line = tok.end, tok.line
                current = open_blocks[-1][1] if open_blocks else root
                i += 1
                continue
            if tok.kind == "{":
                raise ParseError(
                    path,
                    tok.line,
                    "a '{' stands where a keyword should be; a block starts "
                    "with its keyword, e.g. 'vrrp_instance VI_1 {'.",
                )
            # A statement: the words of this line (up to a brace or the line's end).
            words = [tok]
            j = i + 1
            while j < len(tokens) and tokens[j].kind == "word" and tokens[j].line == tok.line:
                words.append(tokens[j])
                j += 1
            # A statement that begins its line starts at the line's content (its @ prefix
            # included); one that follows a brace on the same line starts at its first word.
            if i > 0 and tokens[i - 1].line == tok.line and tokens[i - 1].kind != "include":
                start = tok.start
            else:
                start = tok.line_start
            node = Node(
                keyword=tok.value,
                args=[w.value for w in words[1:]],
                file=path,
                line=tok.line,
                end_line=words[-1].line,
                start=start,
                end=words[-1].end,
                condition=tok.condition,
                source=source,
            )
            current.append(node)
            if j < len(tokens) and tokens[j].kind == "{":
                node.children = []
                open_blocks.append((node, node.children))
                current = node.children
                j += 1
            i = j
        if open_blocks:
            node = open_blocks[-1][0]
            raise ParseError(
                path,
                node.line,
                f"the block '{node.keyword}' opened here is never closed: a "
                "'}' is missing (each file must close the blocks it opens).",
            )
        return root


def parse(
    path: str,
    read: Callable[[str], str],
    glob: Callable[[str], list[str]],
    *,
    config_id: str | None = None,
) -> Config:
    """Parse the keepalived.conf at path and every file it includes.

    config_id is the host's keepalived config id (its `-i` option, or the host name up to the
    first dot): `@name` lines are kept when it is name, `@^name` lines when it is not. None
    matches no name, so every `@name` line is dropped and every `@^name` line kept.
    """
    reader = _Reader(read, glob, config_id)
    root = reader.load(path, [], (path, 0))
    return Config(root, reader.files, reader.skipped, reader.warnings)


def parse_text(text: str, path: str = "keepalived.conf", **kwargs) -> Config:
    """Parse one file's text; an include in it is an error (nothing else can be read)."""

    def read(p):
        if p == path:
            return text
        raise OSError(f"only {path} is given")

    def glob(pattern):
        raise OSError("includes are not read when parsing one text")

    return parse(path, read, glob, **kwargs)
