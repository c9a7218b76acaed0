"""NER tag schemes: parse tags, read chunks, convert between schemes, build label lists.

A tag is ``O``, or a prefix joined to an entity type by ``-`` or ``_`` (``B-PER``; ``S_NAME``, the
MindSpore zoo's spelling; ``M-NT``, MSRA's), or a prefix alone (``B``: a chunk without a type, whose
type is ``""``).

======  ===================  ==============  ======================  ==================================
scheme  prefixes besides O   aliases         one-token / 3-token     notes
======  ===================  ==============  ======================  ==================================
IOB2    B I                  BIO             B-X / B-X I-X I-X
IOB1    B I                                  I-X / I-X I-X I-X       B-X only where a chunk directly
                                                                     follows one of the same type
IOBES   B I E S              BIOES           S-X / B-X I-X E-X
BILOU   B I L U                              U-X / B-X I-X L-X
BMES    B M E S              BMESO           S-X / B-X M-X E-X       MSRA; M = inside
======  ===================  ==============  ======================  ==================================

Chunks are ``(type, start, end)`` tuples with ``end`` exclusive. Every prefix has one *role* that
is the same in every scheme: begin (B), inside (I, M), end (E, L) or single (S, U). :func:`get_chunks`
reads a sequence in one of two modes:

* default (conlleval, seqeval's default mode): every tag belongs to some chunk. A sequence that
  breaks its scheme is read the way conlleval reads it: an inside or end tag after ``O``, after a
  finished chunk or after another type starts a chunk, a change of type ends one. BILOU and BMES
  are read through the roles, so they give the chunks of the same sequence in IOBES. (seqeval's
  default mode knows only B/I/E/S: it merges ``U-X U-X`` into one chunk and loses the chunk before a
  ``B-`` that follows ``L-`` or ``M-``. Rename the prefixes to IOBES before giving it such tags.)
* strict (seqeval's strict mode, ``strict=True``): only chunks that follow the scheme count, the
  others are dropped (``I-X I-X`` holds no chunk in IOB2). Needs the scheme, because IOB1 and IOB2
  use the same prefixes but read them differently.

Data readers should report :func:`count_invalid` (transitions the scheme does not allow) rather
than silently repair a sequence; :func:`convert_tags` repairs by reading in default mode.
"""
from __future__ import annotations

import functools
from typing import Iterable, Optional, Sequence, Union

__all__ = ["SCHEMES", "canonical_scheme", "canonical_tag", "chunks_to_tags", "convert_tags",
           "count_invalid", "detect_scheme", "get_chunks", "invalid_positions", "label_list",
           "split_tag"]

Chunk = tuple[str, int, int]

SCHEMES: dict[str, tuple[str, ...]] = {
    "IOB2": ("B", "I"),
    "IOB1": ("B", "I"),
    "IOBES": ("B", "I", "E", "S"),
    "BILOU": ("B", "I", "L", "U"),
    "BMES": ("B", "M", "E", "S"),
}
"""Scheme name -> its prefixes besides ``O``, in label-list order."""

_ALIASES = {"BIO": "IOB2", "BIOES": "IOBES", "BMESO": "BMES"}

_ROLE = {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S", "O": "O"}
"""Prefix -> role: begin, inside, end, single, outside."""

_PREFIX_OF_ROLE = {name: {_ROLE[p]: p for p in prefixes} for name, prefixes in SCHEMES.items()}


def canonical_scheme(scheme: str) -> str:
    """The name in :data:`SCHEMES` of ``scheme`` or an alias of it, any case (``"bio"`` -> ``"IOB2"``)."""
    if not isinstance(scheme, str):
        raise ValueError(f"scheme must be a name such as 'IOB2', got {scheme!r}")
    name = _ALIASES.get(scheme.upper(), scheme.upper())
    if name not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; valid: {', '.join(SCHEMES)} "
                         f"(aliases {', '.join(f'{a}={n}' for a, n in _ALIASES.items())})")
    return name


@functools.lru_cache(maxsize=4096)
def _split(tag: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    if len(tag) == 1 and tag in _ROLE:
        return tag, ""
    if len(tag) >= 3 and tag[0] in _ROLE and tag[0] != "O" and tag[1] in "-_":
        return tag[0], tag[2:]
    raise ValueError(f"tag {tag!r} fits no tag scheme: expected 'O', a prefix alone "
                     f"(B, I, M, E, L, S, U) or a prefix, '-' or '_' and a type ('B-PER', 'S_NAME')")


def split_tag(tag: str) -> tuple[str, str]:
    """Prefix and entity type of a tag.

    ``"B-PER"`` and ``"B_PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``; ``"B"`` ->
    ``("B", "")``. Only the first separator counts: ``"B-ORG_NAME"`` -> ``("B", "ORG_NAME")``.

    Raises:
        ValueError: naming the tag, for anything else (``"X-PER"``, ``"B-"``, ``"O-PER"``, ``""``).
    """
    if not isinstance(tag, str):
        raise ValueError(f"tag {tag!r} is a {type(tag).__name__}, not a str")
    return _split(tag)


def canonical_tag(tag: str) -> str:
    """``tag`` spelt with ``-``: ``"S_NAME"`` -> ``"S-NAME"``; ``"O"`` and ``"B"`` unchanged."""
    return _join(*split_tag(tag))


def _join(prefix: str, type_: str) -> str:
    return f"{prefix}-{type_}" if type_ else prefix


def _iter_tags(labels: Iterable) -> Iterable[str]:
    for item in labels:
        if isinstance(item, str):
            yield item
        else:
            yield from item


def detect_scheme(labels: Iterable[Union[str, Sequence[str]]], *, bio: str = "IOB2") -> str:
    """The smallest scheme whose prefixes cover every tag in ``labels``.

    Only B and I: ``bio`` (IOB2 unless told IOB1; the prefixes cannot tell them apart). E or S
    besides: IOBES. L or U: BILOU. M: BMES. Only ``O`` (or nothing): ``bio``. B/E/S without I or M
    fits IOBES and BMES, which read it alike: IOBES.

    Args:
        labels: a label set, a label list or ``label2id`` dict (its keys), or tag sequences.
        bio: the answer for B/I-only labels, ``"IOB2"`` or ``"IOB1"``.

    Raises:
        ValueError: a tag that fits no scheme, or prefixes from two schemes (``E`` and ``L``).
    """
    bio = canonical_scheme(bio)
    if bio not in ("IOB2", "IOB1"):
        raise ValueError(f"bio must be 'IOB2' or 'IOB1', got {bio!r}")
    prefixes = {split_tag(tag)[0] for tag in _iter_tags(labels)} - {"O"}
    for name in (bio, "IOBES", "BILOU", "BMES"):
        if prefixes <= set(SCHEMES[name]):
            return name
    known = "; ".join(f"{name} {' '.join(p)}" for name, p in SCHEMES.items())
    raise ValueError(f"prefixes {', '.join(sorted(prefixes))} fit no single scheme ({known})")


def _parse(tags: Sequence[str], scheme: Optional[str]) -> list[tuple[str, str]]:
    """``(role, type)`` of every tag; with a scheme, a tag whose prefix it lacks is an error."""
    allowed = None if scheme is None else set(SCHEMES[scheme]) | {"O"}
    out = []
    for i, tag in enumerate(tags):
        prefix, type_ = split_tag(tag)
        if allowed is not None and prefix not in allowed:
            raise ValueError(f"tag {tag!r} at position {i} is not in scheme {scheme} "
                             f"(prefixes O {' '.join(SCHEMES[scheme])})")
        out.append((_ROLE[prefix], type_))
    return out


def _ends(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """Default mode: the chunk holding ``prev`` ends before ``cur`` (conlleval's endOfChunk)."""
    (pr, pt), (cr, ct) = prev, cur
    return pr != "O" and (pr in "ES" or cr in "BSO" or pt != ct)


def _starts(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """Default mode: ``cur`` starts a chunk (conlleval's startOfChunk)."""
    (pr, pt), (cr, ct) = prev, cur
    return cr != "O" and (cr in "BS" or pr in "ESO" or pt != ct)


def _default_chunks(items: list[tuple[str, str]]) -> list[Chunk]:
    chunks, begin, prev = [], 0, ("O", "")
    for i, cur in enumerate(items + [("O", "")]):
        if _ends(prev, cur):
            chunks.append((prev[1], begin, i))
        if _starts(prev, cur):
            begin = i
        prev = cur
    return chunks


_ANY, _SAME, _DIFF = "any", "same", "diff"
_ALL_ROLES = "BIESO"

# Strict mode, as seqeval's scheme classes: (previous roles, current roles, type condition).
# A chunk starts at a `start` pair, takes tokens while `inside` holds, and counts only when the
# pair after its last token is an `end` pair. BILOU and BMES use the IOBES grammar through roles.
_GRAMMARS = {
    "IOB2": dict(start=[(_ALL_ROLES, "B", _ANY)],
                 inside=[("BI", "I", _SAME)],
                 end=[("BI", "BO", _ANY), ("BI", "I", _DIFF)]),
    "IOB1": dict(start=[("OB", "I", _ANY), ("I", "I", _DIFF), ("BI", "B", _SAME)],
                 inside=[("BI", "I", _SAME)],
                 # as seqeval: B-X is dropped before B-Y (no (B, B, diff) end pair), kept before I-Y
                 end=[("BI", "O", _ANY), ("BI", "I", _DIFF), ("I", "B", _ANY), ("B", "B", _SAME)]),
    "IOBES": dict(start=[(_ALL_ROLES, "BS", _ANY)],
                  inside=[("BI", "IE", _SAME)],
                  end=[("ES", _ALL_ROLES, _ANY)]),
}
_GRAMMAR_OF = {"IOB2": "IOB2", "IOB1": "IOB1", "IOBES": "IOBES", "BILOU": "IOBES", "BMES": "IOBES"}


def _matches(patterns, prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    for prev_roles, cur_roles, cond in patterns:
        if prev[0] in prev_roles and cur[0] in cur_roles and (
                cond == _ANY or (prev[1] == cur[1]) == (cond == _SAME)):
            return True
    return False


def _strict_chunks(items: list[tuple[str, str]], grammar: dict) -> list[Chunk]:
    ext = items + [("O", "")]
    chunks, prev, i = [], ("O", ""), 0
    while i < len(ext):
        if _matches(grammar["start"], prev, ext[i]):
            j = i + 1
            while _matches(grammar["inside"], ext[j - 1], ext[j]):  # stops at the final O at the latest
                j += 1
            if _matches(grammar["end"], ext[j - 1], ext[j]):
                chunks.append((ext[i][1], i, j))
            i = j
        else:
            i += 1
        prev = ext[i - 1]
    return chunks


def get_chunks(tags: Sequence[str], scheme: Optional[str] = None, *, strict: bool = False) -> list[Chunk]:
    """Entity chunks of one tag sequence.

    Args:
        tags: [S] tags of one sentence, ``-`` or ``_`` spelling.
        scheme: name or alias from :data:`SCHEMES`. Default mode reads any prefixes without it;
            with it, a tag outside the scheme is an error. Strict mode needs it.
        strict: drop chunks that break the scheme (seqeval strict mode) instead of reading every
            tag conlleval-style (seqeval default mode).

    Returns:
        ``(type, start, end)`` per chunk, ``end`` exclusive, in order of ``start``.

    Example:
        >>> get_chunks(["B-PER", "I-PER", "O", "I-LOC"])
        [('PER', 0, 2), ('LOC', 3, 4)]
        >>> get_chunks(["B-PER", "I-PER", "O", "I-LOC"], "IOB2", strict=True)
        [('PER', 0, 2)]
    """
    scheme = None if scheme is None else canonical_scheme(scheme)
    items = _parse(tags, scheme)
    if not strict:
        return _default_chunks(items)
    if scheme is None:
        raise ValueError(f"strict=True needs a scheme ({', '.join(SCHEMES)}): IOB1 and IOB2 share "
                         f"their prefixes but not their chunks")
    return _strict_chunks(items, _GRAMMARS[_GRAMMAR_OF[scheme]])


def _allowed(grammar: str, prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    (pr, pt), (cr, ct) = prev, cur
    if grammar == "IOB2":  # I-X continues B-X or I-X
        return cr != "I" or (pr in "BI" and pt == ct)
    if grammar == "IOB1":  # B-X separates two chunks of type X
        return cr != "B" or (pr in "BI" and pt == ct)
    if pr in "BI":  # IOBES family: an open chunk takes inside or end of its type
        return cr in "IE" and pt == ct
    return cr in "BSO"


def invalid_positions(tags: Sequence[str], scheme: str) -> list[int]:
    """Positions whose tag the scheme does not allow after the previous one.

    The sentence starts and ends with an implicit ``O``: ``I-X`` first is invalid in IOB2 (position
    0), and an IOBES ``B-X`` or ``I-X`` last leaves a chunk open (position ``len(tags)``).

    Args:
        tags: [S] tags of one sentence.
        scheme: name or alias from :data:`SCHEMES`.
    """
    scheme = canonical_scheme(scheme)
    grammar = _GRAMMAR_OF[scheme]
    items = [("O", "")] + _parse(tags, scheme) + [("O", "")]
    return [i for i in range(len(items) - 1) if not _allowed(grammar, items[i], items[i + 1])]


def count_invalid(tags: Sequence[str], scheme: str) -> int:
    """Number of transitions in ``tags`` that ``scheme`` does not allow (see :func:`invalid_positions`).

    Example:
        >>> count_invalid(["O", "I-PER", "I-PER", "B-LOC", "I-PER"], "IOB2")  # I-PER after O, after B-LOC
        2
    """
    return len(invalid_positions(tags, scheme))


def chunks_to_tags(chunks: Iterable[Chunk], length: int, scheme: str) -> list[str]:
    """Tags of a sentence of ``length`` tokens that hold exactly ``chunks``, in ``-`` spelling.

    Args:
        chunks: ``(type, start, end)``, ``end`` exclusive, not overlapping, in any order; type
            ``""`` writes a bare prefix.
        length: number of tokens.
        scheme: name or alias from :data:`SCHEMES`.

    Raises:
        ValueError: naming the chunk, for an empty, out-of-range or overlapping chunk.
    """
    scheme = canonical_scheme(scheme)
    prefix = _PREFIX_OF_ROLE[scheme]
    tags = ["O"] * length
    prev: Optional[Chunk] = None
    for chunk in sorted(chunks, key=lambda c: (c[1], c[2])):
        type_, start, end = chunk
        if not 0 <= start < end <= length:
            raise ValueError(f"chunk {chunk!r} is empty or outside a sentence of {length} tokens")
        if prev is not None and start < prev[2]:
            raise ValueError(f"chunks {prev!r} and {chunk!r} overlap")
        n = end - start
        if scheme in ("IOB2", "IOB1"):
            follows_same = prev is not None and prev[2] == start and prev[0] == type_
            first = "B" if scheme == "IOB2" or follows_same else "I"
            roles = [first] + ["I"] * (n - 1)
        else:
            roles = ["S"] if n == 1 else ["B"] + ["I"] * (n - 2) + ["E"]
        tags[start:end] = [_join(prefix[r], type_) for r in roles]
        prev = chunk
    return tags


def convert_tags(tags: Sequence[str], source_scheme: Optional[str], target_scheme: str) -> list[str]:
    """Re-tag a sentence in another scheme, through its default-mode chunks.

    A sequence that breaks ``source_scheme`` is read conlleval-style (see :func:`get_chunks`), so
    ``O I-PER`` becomes IOBES ``O S-PER``; count such sequences with :func:`count_invalid` first if
    they matter. ``B_PER`` input comes out as ``B-PER``.

    Args:
        tags: [S] tags of one sentence.
        source_scheme: scheme of ``tags``, or None to accept any prefixes.
        target_scheme: scheme of the result.
    """
    return chunks_to_tags(get_chunks(tags, source_scheme), len(tags), target_scheme)


def label_list(types: Iterable[str], scheme: str) -> list[str]:
    """Every tag of ``scheme`` over ``types``: ``O`` first (id 0), then per type (sorted) the
    scheme's prefixes in :data:`SCHEMES` order; the same list whatever the order of ``types``.

    Example:
        >>> label_list({"PER", "LOC"}, "BIO")
        ['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER']
    """
    scheme = canonical_scheme(scheme)
    types = set(types)
    for type_ in types:
        if not isinstance(type_, str) or not type_:
            raise ValueError(f"entity type {type_!r} is not a non-empty str")
    return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in SCHEMES[scheme]]
