"""src/ner_metrics.py against seqeval 1.2.2 on seeded random tag sequences and edge cases; CLUENER."""
from __future__ import annotations

import random
import warnings

import pytest

from src.ner_metrics import CLUENER_TYPES, cluener_scores, entity_scores, entity_strings, token_accuracy
from src.tagging import SCHEMES, chunks_to_tags, label_list

seqeval_metrics = pytest.importorskip("seqeval.metrics")
seqeval_scheme = pytest.importorskip("seqeval.scheme")

TOL = 1e-12
TYPES = ("LOC", "ORG", "PER")
SEEDS = range(25)
TO_IOBES = {"BILOU": {"L": "E", "U": "S"}, "BMES": {"M": "I"}}


def renamed_to_iobes(corpus: list[list[str]], scheme: str) -> list[list[str]]:
    """BILOU / BMES prefixes renamed to their IOBES roles, tag by tag (seqeval knows no L, U, M)."""
    rename = TO_IOBES.get(scheme, {})
    return [[rename.get(t[0], t[0]) + t[1:] for t in tags] for tags in corpus]


def seqeval_reference(gold, pred, scheme_cls=None) -> dict:
    """seqeval's micro scores and per-type rows, default mode or strict mode with ``scheme_cls``."""
    kwargs = {} if scheme_cls is None else {"mode": "strict", "scheme": scheme_cls}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its zero-division warnings: it returns 0.0, as we do
        report = seqeval_metrics.classification_report(gold, pred, output_dict=True, **kwargs)
        micro = {"precision": seqeval_metrics.precision_score(gold, pred, **kwargs),
                 "recall": seqeval_metrics.recall_score(gold, pred, **kwargs),
                 "f1": seqeval_metrics.f1_score(gold, pred, **kwargs)}
    per_type = {name: {"precision": row["precision"], "recall": row["recall"], "f1": row["f1-score"],
                       "support": row["support"]}
                for name, row in report.items() if not name.endswith(" avg")}
    return {"micro": micro, "n_gold": report["micro avg"]["support"], "per_type": per_type}


def assert_matches_seqeval(ours: dict, reference: dict) -> None:
    for key, value in reference["micro"].items():
        assert abs(ours[key] - value) <= TOL, f"{key}: {ours[key]!r} vs seqeval {value!r}"
    assert ours["n_gold"] == reference["n_gold"]
    assert set(ours["per_type"]) == set(reference["per_type"])
    for name, row in reference["per_type"].items():
        for key, value in row.items():
            got = ours["per_type"][name][key]
            assert abs(got - value) <= TOL, f"{name} {key}: {got!r} vs seqeval {value!r}"
    assert ours["tp"] == round(ours["recall"] * ours["n_gold"]) == round(ours["precision"] * ours["n_pred"])


def random_corpus(seed: int, scheme: str) -> tuple[list[list[str]], list[list[str]]]:
    """Gold: valid sentences, some with a few random tags (invalid sequences); pred: gold with
    random tags replaced, and now and then a sentence of random tags or an empty one."""
    rng = random.Random(seed)
    labels = label_list(TYPES, scheme)
    gold, pred = [], []
    for _ in range(rng.randrange(1, 40)):
        length = rng.choice([0, 1, 2, 5, 10, 20])
        chunks, i = [], 0
        while i < length:
            if rng.random() < 0.35:
                n = min(rng.choice([1, 1, 2, 3]), length - i)
                chunks.append((rng.choice(TYPES), i, i + n))
                i += n
            else:
                i += 1
        g = chunks_to_tags(chunks, length, scheme)
        if rng.random() < 0.3:
            g = [rng.choice(labels) if rng.random() < 0.15 else t for t in g]
        noise = rng.choice([0.0, 0.1, 0.3, 1.0])
        gold.append(g)
        pred.append([rng.choice(labels) if rng.random() < noise else t for t in g])
    return gold, pred


# ---- random corpora against seqeval --------------------------------------------------------------

@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_default_mode_matches_seqeval(scheme):
    for seed in SEEDS:
        gold, pred = random_corpus(seed, scheme)
        reference = seqeval_reference(renamed_to_iobes(gold, scheme), renamed_to_iobes(pred, scheme))
        assert_matches_seqeval(entity_scores(gold, pred, scheme=scheme), reference)
        assert_matches_seqeval(entity_scores(gold, pred), reference)


@pytest.mark.parametrize("scheme, seqeval_name", [("IOB2", "IOB2"), ("IOBES", "IOBES"), ("BILOU", "BILOU"),
                                                  ("IOB1", "IOB1"), ("BMES", "IOBES")])
def test_strict_mode_matches_seqeval(scheme, seqeval_name):
    cls = getattr(seqeval_scheme, seqeval_name)
    for seed in SEEDS:
        gold, pred = random_corpus(seed, scheme)
        if scheme == "BMES":  # seqeval has no BMES: scored as IOBES after M -> I
            reference = seqeval_reference(renamed_to_iobes(gold, scheme), renamed_to_iobes(pred, scheme), cls)
        else:
            reference = seqeval_reference(gold, pred, cls)
        assert_matches_seqeval(entity_scores(gold, pred, mode="strict", scheme=scheme), reference)


def test_strict_bilou_also_matches_seqeval_iobes_on_renamed_tags():
    for seed in SEEDS:
        gold, pred = random_corpus(seed, "BILOU")
        reference = seqeval_reference(renamed_to_iobes(gold, "BILOU"), renamed_to_iobes(pred, "BILOU"),
                                      seqeval_scheme.IOBES)
        assert_matches_seqeval(entity_scores(gold, pred, mode="strict", scheme="BILOU"), reference)


# ---- edge cases ----------------------------------------------------------------------------------

def scores_and_check(gold, pred, **kwargs) -> dict:
    """entity_scores, after checking it against seqeval on the same input."""
    ours = entity_scores(gold, pred, **kwargs)
    cls = getattr(seqeval_scheme, kwargs["scheme"]) if kwargs.get("mode") == "strict" else None
    assert_matches_seqeval(ours, seqeval_reference(gold, pred, cls))
    return ours


def test_no_entities_anywhere_scores_zero():
    ours = scores_and_check([["O", "O"], ["O"]], [["O", "O"], ["O"]])
    assert (ours["precision"], ours["recall"], ours["f1"], ours["per_type"]) == (0.0, 0.0, 0.0, {})


def test_no_gold_entities():
    ours = scores_and_check([["O", "O", "O"]], [["B-PER", "O", "B-LOC"]])
    assert (ours["tp"], ours["n_pred"], ours["n_gold"], ours["f1"]) == (0, 2, 0, 0.0)
    assert ours["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_no_predicted_entities():
    ours = scores_and_check([["B-PER", "I-PER", "O"]], [["O", "O", "O"]])
    assert (ours["tp"], ours["n_pred"], ours["n_gold"]) == (0, 0, 1)
    assert (ours["precision"], ours["recall"], ours["f1"]) == (0.0, 0.0, 0.0)


def test_all_predictions_wrong():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
    pred = [["B-PER", "O", "B-LOC", "I-LOC"], ["B-PER"]]  # wrong span, wrong span, wrong type
    ours = scores_and_check(gold, pred)
    assert (ours["tp"], ours["n_pred"], ours["n_gold"], ours["f1"]) == (0, 3, 3, 0.0)


def test_entity_at_the_last_position():
    gold = [["O", "O", "B-PER"], ["O", "B-LOC", "I-LOC"]]
    ours = scores_and_check(gold, [["O", "O", "B-PER"], ["O", "B-LOC", "O"]])
    assert (ours["tp"], ours["n_pred"], ours["n_gold"]) == (1, 2, 2)
    assert scores_and_check(gold, gold, mode="strict", scheme="IOB2")["f1"] == 1.0


def test_i_after_o_starts_an_entity_in_default_mode_only():
    gold = [["O", "B-PER", "I-PER"]]
    pred = [["O", "I-PER", "I-PER"]]
    assert scores_and_check(gold, pred)["f1"] == 1.0
    strict = scores_and_check(gold, pred, mode="strict", scheme="IOB2")
    assert (strict["tp"], strict["n_pred"], strict["n_gold"]) == (0, 0, 1)


def test_type_change_inside_a_chunk():
    gold = [["B-PER", "I-PER", "O"]]
    pred = [["B-PER", "I-LOC", "O"]]  # default: PER (0, 1) and LOC (1, 2); strict IOB2: PER (0, 1)
    ours = scores_and_check(gold, pred)
    assert (ours["tp"], ours["n_pred"], ours["n_gold"]) == (0, 2, 1)
    strict = scores_and_check(gold, pred, mode="strict", scheme="IOB2")
    assert (strict["tp"], strict["n_pred"], strict["n_gold"]) == (0, 1, 1)


def test_single_token_entities():
    gold = [["S-PER", "O", "S-LOC", "S-LOC"]]
    pred = [["S-PER", "O", "S-LOC", "O"]]
    for kwargs in ({}, {"mode": "strict", "scheme": "IOBES"}):
        ours = scores_and_check(gold, pred, **kwargs)
        assert (ours["tp"], ours["n_pred"], ours["n_gold"]) == (2, 2, 3)
        assert ours["precision"] == 1.0 and abs(ours["recall"] - 2 / 3) <= TOL


def test_empty_sentences():
    gold = [[], ["B-PER"], [], []]
    ours = scores_and_check(gold, [[], ["B-PER"], [], []])
    assert ours["f1"] == 1.0
    assert entity_scores([], [])["f1"] == 0.0
    assert entity_scores([[]], [[]], mode="strict", scheme="IOB2")["n_gold"] == 0


def test_entities_do_not_cross_sentences():
    ours = scores_and_check([["B-PER"], ["I-PER"]], [["B-PER"], ["B-PER"]])
    assert (ours["tp"], ours["n_pred"], ours["n_gold"]) == (2, 2, 2)


def test_underscore_spelling_scores_like_the_dash():
    gold = [["S_NAME", "O", "B_PER", "M_PER", "E_PER"]]
    pred = [["S_NAME", "O", "B_PER", "E_PER", "O"]]
    ours = entity_scores(gold, pred, scheme="BMES")
    dashed = [[t.replace("_", "-") for t in s] for s in renamed_to_iobes(gold, "BMES")], \
        [[t.replace("_", "-") for t in s] for s in renamed_to_iobes(pred, "BMES")]
    assert_matches_seqeval(ours, seqeval_reference(*dashed))
    assert set(ours["per_type"]) == {"NAME", "PER"}  # seqeval would call them _NAME, _PER
    assert ours == entity_scores(gold, pred, mode="strict", scheme="BMES")


def test_typeless_tags_are_type_empty_string():
    ours = entity_scores([["B", "I", "O"]], [["B", "I", "O"]])
    assert ours["per_type"] == {"": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}}


# ---- argument errors -----------------------------------------------------------------------------

def test_strict_without_a_scheme_is_refused():
    with pytest.raises(ValueError, match="needs a scheme"):
        entity_scores([["B-PER"]], [["B-PER"]], mode="strict")


def test_unknown_mode_and_scheme():
    with pytest.raises(ValueError, match="'lenient'"):
        entity_scores([["O"]], [["O"]], mode="lenient")
    with pytest.raises(ValueError, match="'IOE2'"):
        entity_scores([["O"]], [["O"]], scheme="IOE2")


def test_sentence_length_mismatch_names_index_and_lengths():
    with pytest.raises(ValueError, match="sentence 1: gold has 3 tags but pred has 2"):
        entity_scores([["O"], ["O", "O", "O"]], [["O"], ["O", "O"]])
    with pytest.raises(ValueError, match="gold has 2 sentences but pred has 1"):
        entity_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0: gold has 1 tags but pred has 0"):
        token_accuracy([["O"]], [[]])


def test_a_flat_tag_list_is_refused():
    with pytest.raises(ValueError, match="list of sentences"):
        entity_scores(["B-PER", "O"], ["B-PER", "O"])


def test_tags_outside_the_scheme_are_refused():
    with pytest.raises(ValueError, match="'S-PER' at position 0 is not in scheme IOB2"):
        entity_scores([["O"]], [["S-PER"]], scheme="IOB2")


# ---- token accuracy ------------------------------------------------------------------------------

def test_token_accuracy_matches_seqeval():
    for seed in SEEDS:
        gold, pred = random_corpus(seed, "IOB2")
        if sum(map(len, gold)) == 0:
            continue
        assert abs(token_accuracy(gold, pred) - seqeval_metrics.accuracy_score(gold, pred)) <= TOL
    assert token_accuracy([["O", "B-PER"], ["I-PER"]], [["O", "B-LOC"], ["I-PER"]]) == 2 / 3


def test_token_accuracy_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="without any tag"):
        token_accuracy([[], []], [[], []])


# ---- CLUENER -------------------------------------------------------------------------------------

def test_cluener_macro_on_a_hand_computed_example():
    gold = [{"name": {"叶老桂": [[9, 11]]}, "company": {"浙商银行": [[0, 3]]}},
            {"name": ["张三", "李四"], "address": ["北京"]},
            {}]
    pred = [{"name": ["叶老桂"], "company": ["浙商"]},
            {"name": ["张三", "张三"], "address": ["北京"], "game": ["英雄联盟"]},
            {"name": {"王五"}}]
    out = cluener_scores(gold, pred, types=["name", "company", "address", "game"])
    # name: tp 2 (叶老桂, 张三 counted once), pred 3, gold 3 -> P = R = F = 2/3
    # company: tp 0, pred 1, gold 1 -> 0; address: 1/1/1 -> 1; game: tp 0, pred 1, gold 0 -> 0
    assert out["per_type"]["name"] == {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "tp": 2,
                                       "n_pred": 3, "n_gold": 3}
    assert out["per_type"]["company"]["f1"] == 0.0
    assert out["per_type"]["address"]["f1"] == 1.0
    assert out["per_type"]["game"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "n_pred": 1,
                                       "n_gold": 0}
    assert abs(out["macro_f1"] - (2 / 3 + 0 + 1 + 0) / 4) <= TOL
    assert list(out["per_type"]) == ["name", "company", "address", "game"]


def test_cluener_averages_over_all_ten_types_by_default():
    gold = [{"name": ["张三"]}]
    out = cluener_scores(gold, gold)
    assert list(out["per_type"]) == list(CLUENER_TYPES)
    assert out["macro_f1"] == 1 / 10  # 9 types without entities score 0


def test_cluener_compares_strings_not_positions():
    gold = [{"name": {"张三": [[0, 1]]}}]
    pred = [{"name": {"张三": [[5, 6]]}}]
    assert cluener_scores(gold, pred, types=["name"])["macro_f1"] == 1.0


def test_cluener_errors():
    with pytest.raises(ValueError, match="line 0: pred has type 'person'"):
        cluener_scores([{}], [{"person": ["张三"]}])
    with pytest.raises(ValueError, match="gold has 2 lines but pred has 1"):
        cluener_scores([{}, {}], [{}])
    with pytest.raises(ValueError, match="without repeats"):
        cluener_scores([{}], [{}], types=["name", "name"])


def test_entity_strings_from_character_tags():
    text = "浙商银行叶老桂"
    tags = ["B-company", "I-company", "I-company", "I-company", "B-name", "I-name", "I-name"]
    assert entity_strings(text, tags) == {"company": {"浙商银行"}, "name": {"叶老桂"}}
    words = entity_strings(["New", "York", "is"], ["B-LOC", "I-LOC", "O"], "IOB2", sep=" ")
    assert words == {"LOC": {"New York"}}
    with pytest.raises(ValueError, match="3 tokens but 2 tags"):
        entity_strings("abc", ["O", "O"])
