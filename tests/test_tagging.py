"""src/tagging.py: tag parsing, scheme detection, chunks in both modes against seqeval, conversions."""
from __future__ import annotations

import itertools
import random
import warnings

import pytest

from src.tagging import (SCHEMES, canonical_scheme, canonical_tag, chunks_to_tags, convert_tags,
                         count_invalid, detect_scheme, get_chunks, invalid_positions, label_list,
                         split_tag)

seqeval_labeling = pytest.importorskip("seqeval.metrics.sequence_labeling")
seqeval_scheme = pytest.importorskip("seqeval.scheme")

TYPES = ("LOC", "ORG", "PER")
SEEDS = range(30)
TO_IOBES = {"BILOU": {"L": "E", "U": "S"}, "BMES": {"M": "I"}}


def renamed_to_iobes(tags: list[str], scheme: str) -> list[str]:
    """The same sequence with BILOU / BMES prefixes renamed to their IOBES roles (seqeval's input)."""
    rename = TO_IOBES.get(scheme, {})
    return [rename.get(t[0], t[0]) + t[1:] for t in tags]


def random_chunks(rng: random.Random, length: int, types=TYPES) -> list[tuple[str, int, int]]:
    chunks, i = [], 0
    while i < length:
        if rng.random() < 0.4:
            n = min(rng.choice([1, 1, 2, 3, 4]), length - i)
            chunks.append((rng.choice(types), i, i + n))
            i += n
        else:
            i += 1
    return chunks


def random_tags(rng: random.Random, scheme: str, length: int, noise: float) -> list[str]:
    """A valid sequence with each tag replaced, with probability ``noise``, by any tag of the scheme."""
    labels = label_list(TYPES, scheme)
    tags = chunks_to_tags(random_chunks(rng, length), length, scheme)
    return [rng.choice(labels) if rng.random() < noise else t for t in tags]


def seqeval_default_chunks(tags: list[str]) -> list[tuple[str, int, int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(t, s, e + 1) for t, s, e in seqeval_labeling.get_entities(list(tags))]


def seqeval_strict_chunks(tags: list[str], scheme_cls) -> list[tuple[str, int, int]]:
    entities = seqeval_scheme.Tokens(list(tags), scheme_cls).entities
    return [(e.tag, e.start, e.end) for e in entities]


# ---- split_tag, canonical_scheme, detect_scheme ------------------------------------------------

@pytest.mark.parametrize("tag, expected", [
    ("B-PER", ("B", "PER")), ("I-LOC", ("I", "LOC")), ("E-X", ("E", "X")), ("S-X", ("S", "X")),
    ("L-X", ("L", "X")), ("U-X", ("U", "X")), ("M-NT", ("M", "NT")), ("B-NR", ("B", "NR")),
    ("B_PER", ("B", "PER")), ("S_NAME", ("S", "NAME")), ("B-ORG_NAME", ("B", "ORG_NAME")),
    ("B-PER-X", ("B", "PER-X")), ("O", ("O", "")), ("B", ("B", "")), ("I", ("I", "")),
])
def test_split_tag(tag, expected):
    assert split_tag(tag) == expected


@pytest.mark.parametrize("tag", ["X-PER", "B-", "B_", "", "O-PER", "PER", "b-PER", "B+PER", "BPER", "-PER",
                                 "o"])
def test_split_tag_rejects_and_names_the_tag(tag):
    with pytest.raises(ValueError, match=f"tag {tag!r}".replace("+", r"\+")):
        split_tag(tag)


def test_split_tag_rejects_non_str():
    with pytest.raises(ValueError, match="int"):
        split_tag(3)


def test_canonical_tag():
    tags = ["S_NAME", "B-PER", "O", "B", "M_NT"]
    assert [canonical_tag(t) for t in tags] == ["S-NAME", "B-PER", "O", "B", "M-NT"]


@pytest.mark.parametrize("alias, name", [("bio", "IOB2"), ("BIO", "IOB2"), ("iob2", "IOB2"), ("IOB1", "IOB1"),
                                         ("bioes", "IOBES"), ("IOBES", "IOBES"), ("Bilou", "BILOU"),
                                         ("bmes", "BMES"), ("BMESO", "BMES")])
def test_canonical_scheme_aliases(alias, name):
    assert canonical_scheme(alias) == name


def test_canonical_scheme_unknown():
    with pytest.raises(ValueError, match="'IOE2'"):
        canonical_scheme("IOE2")


@pytest.mark.parametrize("labels, expected", [
    ({"O", "B-PER", "I-PER"}, "IOB2"),
    ([["O", "B-PER"], ["I-LOC"]], "IOB2"),
    ({"O"}, "IOB2"),
    ({"O", "B-PER", "I-PER", "E-PER", "S-LOC"}, "IOBES"),
    ({"B-X", "E-X"}, "IOBES"),
    ({"O", "B-PER", "I-PER", "L-PER", "U-LOC"}, "BILOU"),
    ({"U-PER"}, "BILOU"),
    ({"O", "B-NR", "M-NR", "E-NR", "S-NS"}, "BMES"),
    ({"O": 0, "B_NAME": 1, "M_NAME": 2, "E_NAME": 3, "S_NAME": 4}, "BMES"),  # a label2id dict
])
def test_detect_scheme(labels, expected):
    assert detect_scheme(labels) == expected


def test_detect_scheme_iob1_only_when_asked():
    assert detect_scheme({"I-PER", "B-PER", "O"}, bio="IOB1") == "IOB1"
    assert detect_scheme({"S-PER", "B-PER"}, bio="IOB1") == "IOBES"


@pytest.mark.parametrize("labels", [{"B-X", "E-X", "L-X"}, {"M-X", "I-X"}, {"U-X", "S-X"}])
def test_detect_scheme_rejects_mixed_prefixes(labels):
    with pytest.raises(ValueError, match="fit no single scheme"):
        detect_scheme(labels)


# ---- get_chunks: default mode ------------------------------------------------------------------

@pytest.mark.parametrize("tags, expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["O", "I-PER", "I-PER"], [("PER", 1, 3)]),                       # I- after O starts a chunk
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),    # a type change ends one
    (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["I-PER", "I-PER", "B-PER"], [("PER", 0, 2), ("PER", 2, 3)]),    # IOB1
    (["O", "O", "B-PER"], [("PER", 2, 3)]),                           # entity at the last position
    (["E-PER", "E-PER", "I-PER", "S-PER"], [("PER", 0, 1), ("PER", 1, 2), ("PER", 2, 3), ("PER", 3, 4)]),
    (["B-PER", "I-PER", "E-PER", "I-PER"], [("PER", 0, 3), ("PER", 3, 4)]),
    (["B", "I", "O", "B-PER", "I"], [("", 0, 2), ("PER", 3, 4), ("", 4, 5)]),  # typeless chunks
    ([], []),
])
def test_default_chunks_examples(tags, expected):
    assert get_chunks(tags) == expected
    assert seqeval_default_chunks(tags) == [(t or "_", s, e) for t, s, e in expected]


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_default_chunks_match_seqeval_on_random_sequences(scheme):
    for seed in SEEDS:
        rng = random.Random(seed)
        for noise in (0.0, 0.3, 1.0):
            tags = random_tags(rng, scheme, rng.randrange(0, 25), noise)
            expected = seqeval_default_chunks(renamed_to_iobes(tags, scheme))
            assert get_chunks(tags, scheme) == expected, tags
            assert get_chunks(tags) == expected, tags


def test_seqeval_default_mode_misreads_bilou_which_we_read_as_iobes():
    """Why BILOU and BMES go to seqeval renamed: it treats L, U and M as plain continuation tags."""
    assert seqeval_default_chunks(["U-PER", "U-PER", "O"]) == [("PER", 0, 2)]  # two chunks merged
    tags = ["U-PER", "U-PER", "B-PER", "L-PER", "B-PER", "L-PER"]
    assert seqeval_default_chunks(tags) == [("PER", 4, 6)]  # a B- after U- or L- loses the chunk before it
    assert get_chunks(tags, "BILOU") == [("PER", 0, 1), ("PER", 1, 2), ("PER", 2, 4), ("PER", 4, 6)]


def test_underscore_spelling_reads_like_the_dash():
    zoo = ["S_NAME", "B_PER", "M_PER", "E_PER", "O", "B_PER", "I_PER"]
    assert get_chunks(zoo) == [("NAME", 0, 1), ("PER", 1, 4), ("PER", 5, 7)]
    assert get_chunks(zoo[:5], "BMES") == [("NAME", 0, 1), ("PER", 1, 4)]
    assert convert_tags(zoo[:5], "BMES", "BIO") == ["B-NAME", "B-PER", "I-PER", "I-PER", "O"]


def test_tag_outside_the_scheme_is_an_error_naming_tag_position_and_scheme():
    with pytest.raises(ValueError, match=r"'E-PER' at position 2 is not in scheme IOB2"):
        get_chunks(["B-PER", "I-PER", "E-PER"], "BIO")
    with pytest.raises(ValueError, match=r"'I-PER' at position 1 is not in scheme BMES"):
        get_chunks(["B-PER", "I-PER"], "BMES")
    with pytest.raises(ValueError, match="'X-PER'"):
        get_chunks(["O", "X-PER"])


# ---- get_chunks: strict mode -------------------------------------------------------------------

@pytest.mark.parametrize("tags, scheme, expected", [
    (["I-X", "I-X"], "IOB2", []),
    (["B-X", "I-X", "O", "I-X", "B-Y", "I-Y"], "IOB2", [("X", 0, 2), ("Y", 4, 6)]),
    (["B-PER", "I-LOC"], "IOB2", [("PER", 0, 1)]),
    (["B-X", "I-X", "E-X", "S-Y", "B-X", "I-X", "O"], "IOBES", [("X", 0, 3), ("Y", 3, 4)]),
    (["B-X", "E-Y", "S-X"], "IOBES", [("X", 2, 3)]),
    (["B-X", "I-X", "L-X", "U-Y", "B-X", "O"], "BILOU", [("X", 0, 3), ("Y", 3, 4)]),
    (["B-X", "M-X", "E-X", "S-Y", "M-X", "E-X"], "BMES", [("X", 0, 3), ("Y", 3, 4)]),
    (["I-X", "I-X", "B-X", "O", "B-X"], "IOB1", [("X", 0, 2), ("X", 2, 3)]),
    (["I-X", "B-X", "B-Y"], "IOB1", [("X", 0, 1)]),  # seqeval's IOB1 drops a B-X chunk before B-Y
])
def test_strict_chunks_examples(tags, scheme, expected):
    assert get_chunks(tags, scheme, strict=True) == expected


def test_strict_needs_a_scheme():
    with pytest.raises(ValueError, match="strict=True needs a scheme"):
        get_chunks(["B-X"], strict=True)


@pytest.mark.parametrize("scheme, seqeval_name", [("IOB2", "IOB2"), ("IOB1", "IOB1"), ("IOBES", "IOBES"),
                                                  ("BILOU", "BILOU"), ("BMES", "IOBES")])
def test_strict_chunks_match_seqeval_on_random_sequences(scheme, seqeval_name):
    cls = getattr(seqeval_scheme, seqeval_name)
    for seed in SEEDS:
        rng = random.Random(seed)
        for noise in (0.0, 0.3, 1.0):
            tags = random_tags(rng, scheme, rng.randrange(0, 25), noise)
            seqeval_tags = renamed_to_iobes(tags, scheme) if scheme == "BMES" else tags
            reference = seqeval_strict_chunks(seqeval_tags, cls)
            assert get_chunks(tags, scheme, strict=True) == reference, tags


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_strict_equals_default_exactly_when_no_transition_is_invalid(scheme):
    for seed in SEEDS:
        rng = random.Random(seed)
        for noise in (0.0, 0.1, 0.5):
            tags = random_tags(rng, scheme, rng.randrange(0, 20), noise)
            if count_invalid(tags, scheme) == 0:
                assert get_chunks(tags, scheme, strict=True) == get_chunks(tags, scheme), tags
            else:  # an invalid transition starts or ends a default-mode chunk that strict mode drops
                assert get_chunks(tags, scheme, strict=True) != get_chunks(tags, scheme), tags


# ---- count_invalid -----------------------------------------------------------------------------

@pytest.mark.parametrize("tags, scheme, positions", [
    (["O", "I-X"], "IOB2", [1]),                                      # I- after O
    (["I-X", "I-X"], "IOB2", [0]),
    (["B-PER", "I-LOC", "I-LOC"], "IOB2", [1]),                       # type change inside a chunk
    (["B-X", "I-X", "O", "B-Y"], "IOB2", []),
    (["B-X", "I-X"], "IOB1", [0]),                                    # B- after O
    (["I-X", "B-X", "I-Y", "B-X"], "IOB1", [3]),
    (["B-X", "O"], "IOBES", [1]),
    (["B-X"], "IOBES", [1]),                                          # a chunk left open at the end
    (["I-X", "E-X", "S-Y", "E-Y"], "IOBES", [0, 3]),
    (["B-X", "I-X", "L-X", "U-X", "L-X"], "BILOU", [4]),
    (["B_NAME", "M_NAME", "E_NAME", "S_NAME", "M_NAME"], "BMES", [4, 5]),
    ([], "IOBES", []),
])
def test_invalid_positions_examples(tags, scheme, positions):
    assert invalid_positions(tags, scheme) == positions
    assert count_invalid(tags, scheme) == len(positions)


# ---- chunks_to_tags, convert_tags, label_list --------------------------------------------------

@pytest.mark.parametrize("scheme, expected", [
    ("IOB2", ["B-X", "I-X", "B-X", "B-Y", "O", "B-Z"]),
    ("IOB1", ["I-X", "I-X", "B-X", "I-Y", "O", "I-Z"]),
    ("IOBES", ["B-X", "E-X", "S-X", "S-Y", "O", "S-Z"]),
    ("BILOU", ["B-X", "L-X", "U-X", "U-Y", "O", "U-Z"]),
    ("BMES", ["B-X", "E-X", "S-X", "S-Y", "O", "S-Z"]),
])
def test_chunks_to_tags_examples(scheme, expected):
    chunks = [("X", 0, 2), ("X", 2, 3), ("Y", 3, 4), ("Z", 5, 6)]
    assert chunks_to_tags(chunks, 6, scheme) == expected
    assert chunks_to_tags(reversed(chunks), 6, scheme) == expected
    inside = "M-X" if scheme == "BMES" else "I-X"
    assert chunks_to_tags([("X", 0, 4)], 4, scheme)[1:3] == [inside, inside]


@pytest.mark.parametrize("chunks, match", [
    ([("X", 0, 2), ("Y", 1, 3)], "overlap"), ([("X", 2, 2)], "empty or outside"), ([("X", 3, 5)], "outside"),
    ([("X", -1, 1)], "outside"),
])
def test_chunks_to_tags_rejects_bad_chunks(chunks, match):
    with pytest.raises(ValueError, match=match):
        chunks_to_tags(chunks, 4, "IOB2")


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_round_trip_chunks_tags_chunks(scheme):
    for seed in SEEDS:
        rng = random.Random(seed)
        length = rng.randrange(0, 30)
        chunks = random_chunks(rng, length)
        tags = chunks_to_tags(chunks, length, scheme)
        assert count_invalid(tags, scheme) == 0, tags
        assert get_chunks(tags, scheme) == chunks
        assert get_chunks(tags, scheme, strict=True) == chunks


@pytest.mark.parametrize("source, target", list(itertools.permutations(SCHEMES, 2)))
def test_convert_round_trip_between_every_pair_of_schemes(source, target):
    for seed in SEEDS:
        rng = random.Random(seed)
        tags = random_tags(rng, source, rng.randrange(0, 25), 0.0)
        converted = convert_tags(tags, source, target)
        assert count_invalid(converted, target) == 0
        assert convert_tags(converted, target, source) == tags


@pytest.mark.parametrize("source", list(SCHEMES))
def test_convert_reads_invalid_sequences_conlleval_style(source):
    for seed in SEEDS:
        rng = random.Random(seed)
        tags = random_tags(rng, source, rng.randrange(0, 25), 0.5)
        converted = convert_tags(tags, source, "IOBES")
        assert get_chunks(converted, "IOBES", strict=True) == get_chunks(tags, source)


def test_convert_examples():
    assert convert_tags(["O", "I-PER", "I-PER", "B-PER"], "IOB1", "IOB2") == ["O", "B-PER", "I-PER", "B-PER"]
    assert convert_tags(["O", "I-PER"], "IOB2", "IOBES") == ["O", "S-PER"]
    assert convert_tags(["B-PER", "I-LOC"], "BIO", "BIOES") == ["S-PER", "S-LOC"]
    assert convert_tags(["B-PER", "I-PER", "B-PER"], None, "IOB1") == ["I-PER", "I-PER", "B-PER"]


def test_label_list():
    assert label_list(["PER", "LOC", "PER"], "BIO") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert label_list({"NAME"}, "bmes") == ["O", "B-NAME", "M-NAME", "E-NAME", "S-NAME"]
    assert label_list({"NAME"}, "BIOES") == ["O", "B-NAME", "I-NAME", "E-NAME", "S-NAME"]
    assert label_list({"NAME"}, "BILOU") == ["O", "B-NAME", "I-NAME", "L-NAME", "U-NAME"]
    assert label_list([], "IOB2") == ["O"]
    labels = label_list(TYPES, "IOBES")
    assert detect_scheme(labels) == "IOBES" and len(labels) == len(set(labels)) == 13


@pytest.mark.parametrize("types", [[""], ["PER", 3]])
def test_label_list_rejects_bad_types(types):
    with pytest.raises(ValueError, match="entity type"):
        label_list(types, "IOB2")
