"""Tests for src/data/sentences.py, src/data/wiki.py and tools/wiki_to_text.py.

Unit tests use small hand-written inputs (a tiny MediaWiki dump, People's Daily lines,
fortune records); the last part runs the real corpora from ``src.sample_data``: the
English Wikipedia sample dump (106 articles), the UTF-16 bgwiki and table-markup dumps,
People's Daily 199801 and fortunes-zh. The whole file takes about 15 s.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from src.data import wiki
from src.data.sentences import cjk_share, detect_language, join_lines, split_sentences
from src.data.wiki import (
    clean_wiki_text,
    corpus_to_documents,
    fortunes_to_documents,
    is_wiki_heading,
    peoples_daily_to_documents,
    strip_ansi,
    strip_pos_tags,
    text_to_documents,
    wiki_to_documents,
    write_documents,
)
from tools import wiki_to_text

REPO_ROOT = Path(__file__).resolve().parents[1]


# --- English sentences -----------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("The U.S. Army was founded in 1775. It fought in many wars.",
     ["The U.S. Army was founded in 1775.", "It fought in many wars."]),
    ("Tools, e.g. hammers, are useful. So are saws, i.e. cutters.",
     ["Tools, e.g. hammers, are useful.", "So are saws, i.e. cutters."]),
    ("Dr. Smith arrived at 5 p.m. on Friday. He left early.",
     ["Dr. Smith arrived at 5 p.m. on Friday.", "He left early."]),
    ("The value of pi is about 3.14159. It is irrational.", ["The value of pi is about 3.14159.", "It is irrational."]),
    ("He was born c. 1500 in Rome. See pp. 12–14 and Vol. 3 for details.",
     ["He was born c. 1500 in Rome.", "See pp. 12–14 and Vol. 3 for details."]),
    ("R. S. P. Beekes has suggested a Pre-Greek origin.", ["R. S. P. Beekes has suggested a Pre-Greek origin."]),
    ("Is it true? Yes! It is.", ["Is it true?", "Yes!", "It is."]),
    ('He said "I am done." Then he left.', ['He said "I am done."', "Then he left."]),
    # blingfire misses, repaired: case names, a title / initials / list number cut off after a sentence end.
    ("In Brown v. Board of Education the court ruled. It mattered.",
     ["In Brown v. Board of Education the court ruled.", "It mattered."]),
    ("He agreed. Mr. Smith left.", ["He agreed.", "Mr. Smith left."]),
    ("It was published. H. N. Abrams printed it.", ["It was published.", "H. N. Abrams printed it."]),
    ("It was created in 1817. St. Stephens was the capital.",
     ["It was created in 1817.", "St. Stephens was the capital."]),
    ("  Leading   and\ttrailing\nspace.  Second\u00a0one. ", ["Leading and trailing space.", "Second one."]),
    ("No end", ["No end"]),
    ("", []),
    (" \n ", []),
])
def test_split_sentences_english(text, expected):
    assert split_sentences(text, "en") == expected


def test_split_sentences_english_speed_on_long_text():
    text = "This is a sentence about U.S. politics, e.g. elections. " * 20_000  # 1.1 MB
    sentences = split_sentences(text, "en")
    assert len(sentences) == 20_000
    assert sentences[0] == "This is a sentence about U.S. politics, e.g. elections."


def test_sentences_have_no_line_breaks_or_controls():
    text = "First\x00 part\x1b of it.\u2028Second\r\nsentence here.\x0c Third\u3000one."
    for language in ("en", "zh"):
        for sentence in split_sentences(text, language):
            assert sentence == sentence.strip()
            assert not re.search(r"[\x00-\x1f\x7f\u2028\u2029\u3000]", sentence), (language, sentence)


# --- Chinese sentences -----------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("“你好。”他说。价格涨了１．５倍！", ["“你好。”", "他说。", "价格涨了１．５倍！"]),
    ("“好！”，他说。", ["“好！”，他说。"]),
    ("真的吗？！是的！！对……我不知道……", ["真的吗？！", "是的！！", "对……", "我不知道……"]),
    ("（这是括号里的话。）然后继续。", ["（这是括号里的话。）", "然后继续。"]),
    ("「走吧。」她说。『好』", ["「走吧。」", "她说。", "『好』"]),
    ("价格是3.5元. 版本2.0。结束", ["价格是3.5元. 版本2.0。", "结束"]),
    ("他说：“我来了。”“你来了？”她问。", ["他说：“我来了。”", "“你来了？”", "她问。"]),
    ("结束了......下一句?好!", ["结束了......", "下一句?", "好!"]),
    ("　　首行缩进。 第二句？ ", ["首行缩进。", "第二句？"]),
    ("结束了。…………", ["结束了。…………"]),
    ("…………", []),
    ("英文 English words. 中文句子。", ["英文 English words. 中文句子。"]),
])
def test_split_sentences_chinese(text, expected):
    assert split_sentences(text, "zh") == expected


def test_language_auto_by_cjk_share():
    assert detect_language("北京是中国的首都。") == "zh"
    assert detect_language("Debian 是一个自由的操作系统。") == "zh"
    assert detect_language("The Forbidden City (紫禁城) is in Beijing.") == "en"
    assert cjk_share("") == 0.0 and detect_language("12345") == "en"
    assert split_sentences("北京是首都。上海很大。", "auto") == ["北京是首都。", "上海很大。"]
    assert split_sentences("It is big. It is old.", "auto") == ["It is big.", "It is old."]
    with pytest.raises(ValueError, match="'fr'"):
        split_sentences("Bonjour.", "fr")


def test_join_lines_no_space_next_to_cjk():
    assert join_lines(["天下有道，", "却走马以粪。"]) == "天下有道，却走马以粪。"
    assert join_lines(["a hard-wrapped", "English line", ""]) == "a hard-wrapped English line"
    assert join_lines(["使用 Debian", "系统"]) == "使用 Debian系统"


# --- People's Daily, fortunes, text ----------------------------------------------------

def test_strip_pos_tags():
    line = "19980101-01-001-002/m  中共中央/nt  总书记/n  、/w  [国务院/nt  办公厅/n]nt  发表/v  。/w"
    assert strip_pos_tags(line) == ("19980101-01-001", "中共中央总书记、国务院办公厅发表。")
    assert strip_pos_tags("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n") == (None, "迈向充满希望的新世纪")
    # Bracket and slash words, fractions, ASCII words kept apart, single-space separators.
    assert strip_pos_tags("[/w  Windows/nx  NT/nx  ]/w  １/２/m  //w  叹/Vg 曰/Vg") == (None, "[Windows NT]１/２/叹曰")
    assert strip_pos_tags("") == (None, "")


def test_peoples_daily_groups_by_article_id(tmp_path):
    path = tmp_path / "pd.txt"
    path.write_text(
        "19980101-01-001-001/m  迈向/v  新/a  世纪/n\n"
        "19980101-01-001-002/m  [中央/n  电台/n]nt  报道/v  。/w  他/r  说/v  ：/w  “/w  好/a  ！/w  ”/w\n"
        "\n"
        "19980101-01-002-001/m  元旦/t  献辞/n\n"
        "19980101-01-002-002/m  我们/r  前进/v  。/w\n",
        encoding="utf-8")
    docs = list(peoples_daily_to_documents(path))
    assert docs == [["迈向新世纪", "中央电台报道。", "他说：“好！”"], ["元旦献辞", "我们前进。"]]


def test_peoples_daily_without_ids_cuts_before_headlines(tmp_path):
    path = tmp_path / "pd.txt"
    path.write_text(
        "北京/ns  举行/v  音乐会/n\n"  # headline
        "（/w  新华社/nt  ）/w\n"  # aside: never cuts
        "音乐会/n  很/d  好/a  。/w  观众/n  鼓掌/v  。/w\n"  # prose
        "（/w  记者/n  摄/Vg  ）/w\n"  # aside after prose: still no cut
        "温馨/a  的/u  贺卡/n\n"  # headline after prose: new document
        "向/p  贤彪/nr\n"  # byline: headline after headline, same document
        "年根儿/n  了/y  。/w\n",
        encoding="utf-8")
    docs = list(peoples_daily_to_documents(path))
    assert docs == [["北京举行音乐会", "（新华社）", "音乐会很好。", "观众鼓掌。", "（记者摄）"],
                    ["温馨的贺卡", "向贤彪", "年根儿了。"]]


def test_fortunes_strip_ansi_and_split_records(tmp_path):
    path = tmp_path / "chinese"
    path.write_text(
        "\x1b[32m《感遇》\x1b[m\n\x1b[33m作者：张九龄\x1b[m\n兰叶春葳蕤，\n桂华秋皎洁。\n%\n"
        "狗咬穿烂的，人舔穿好的。\n\x1b[33m    --\x1b[32m《谚语》\x1b[m\x1b[m\n%\n"
        "\x1b[37;1m表格\x1b[;m\n    ┌──────┐\n    │ gdb  │\n    └──────┘\n%\n"
        "%\n"
        "A fortune in English\nwrapped over lines. Second sentence.\n",
        encoding="utf-8")
    docs = list(fortunes_to_documents(path))
    assert docs == [
        ["《感遇》作者：张九龄兰叶春葳蕤，桂华秋皎洁。"],
        ["狗咬穿烂的，人舔穿好的。", "--《谚语》"],
        ["表格"],
        ["A fortune in English wrapped over lines.", "Second sentence."],
    ]
    assert strip_ansi("\x1b[1;36mcyan\x1b[0m \x1b]0;title\x07x") == "cyan x"


def test_text_blocks_and_lines(tmp_path):
    path = tmp_path / "a.txt"
    text = "\ufeffFirst doc. It has\r\ntwo lines.\r\n\r\n\r\n第二个文档。\n第二行。\n\nLast one."
    path.write_bytes(text.encode("utf-8"))
    assert list(text_to_documents(path)) == [
        ["First doc.", "It has two lines."], ["第二个文档。", "第二行。"], ["Last one."]]
    assert list(text_to_documents(path, doc_per_line=True)) == [
        ["First doc.", "It has"], ["two lines."], ["第二个文档。"], ["第二行。"], ["Last one."]]
    assert list(text_to_documents(path, min_doc_chars=20)) == [["First doc.", "It has two lines."]]
    compressed = tmp_path / "a.txt.gz"
    compressed.write_bytes(gzip.compress(path.read_bytes()))
    assert list(text_to_documents(compressed)) == list(text_to_documents(path))


def test_invalid_utf8_names_file_line_and_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good line\nsecond \xe4\xb8 broken\n")
    with pytest.raises(ValueError, match=r"bad\.txt: invalid utf-8 at line 2, byte offset 17"):
        list(text_to_documents(path))
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("人民日报。".encode("gbk"))
    with pytest.raises(ValueError, match="line 1, byte offset 0"):
        list(peoples_daily_to_documents(gbk))
    assert list(peoples_daily_to_documents(gbk, encoding="gbk")) == [["人民日报。"]]


def test_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        next(wiki_to_documents(tmp_path / "missing.xml"))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        next(corpus_to_documents([tmp_path / "nope.txt"], "text"))
    not_xml = tmp_path / "notes.xml.bz2"
    not_xml.write_bytes(bz2.compress(b"just some text, no markup\n"))
    with pytest.raises(ValueError, match=r"notes\.xml\.bz2: not a MediaWiki XML dump"):
        next(wiki_to_documents(not_xml))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty\.txt: yields no documents"):
        list(text_to_documents(empty))
    with pytest.raises(ValueError, match="input_format"):
        next(corpus_to_documents([empty], "html"))


# --- Wikipedia -------------------------------------------------------------------------

_SITEINFO = """  <siteinfo>
    <sitename>Wikipedia</sitename>
    <base>https://en.wikipedia.org/wiki/Main_Page</base>
    <namespaces>
      <namespace key="0" case="first-letter" />
      <namespace key="10" case="first-letter">Template</namespace>
    </namespaces>
  </siteinfo>
"""


def _page(page_id: int, title: str, text: str, ns: int = 0, same_line: bool = False) -> str:
    # An article's wikitext must start on its own line (else its templates come out empty);
    # a template's body must start right after <text> (else it gains a leading line break).
    text = text if same_line else "\n" + text
    return (f"  <page>\n    <title>{title}</title>\n    <ns>{ns}</ns>\n    <id>{page_id}</id>\n"
            f"    <revision>\n      <id>{page_id}0</id>\n      <text xml:space=\"preserve\">{text}</text>\n"
            f"    </revision>\n  </page>\n")


_ALPHA = """'''Alpha''' is a company like [[AT&amp;T]] in the [[United States|U.S.]] since 1990. It is {{Convert|5|km}} long and costs 3.5&amp;nbsp;dollars (approx. 3&amp;nbsp;euros).

== Early history ==
Dr. Smith founded it, e.g. in a garage.&lt;ref&gt;A source.&lt;/ref&gt; It grew fast.

{| class="wikitable"
|-
! Year !! Revenue
|-
| 1990 || 5
|}

== See also ==
* [[Beta]]
"""
_BEIJING = """'''北京'''是中国的首都。它有“三千多年”的历史！

== 历史 ==
北京古称燕京。人口约２１００万……
"""


def _tiny_dump(siteinfo: bool = True) -> str:
    return ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">\n'
            + (_SITEINFO if siteinfo else "")
            + _page(1, "Template:Convert", "{{{1}}} {{{2}}}", ns=10, same_line=True)
            + _page(2, "Alpha", _ALPHA)
            + _page(3, "Gamma", "#REDIRECT [[Alpha]]")
            + _page(4, "Stub", "A stub.")
            + _page(5, "北京", _BEIJING)
            + "</mediawiki>\n")


_TINY_DOCS = [
    ["Alpha is a company like AT&T in the U.S. since 1990.",
     "It is 5 km long and costs 3.5 dollars (approx. 3 euros).",
     "Dr. Smith founded it, e.g. in a garage.",
     "It grew fast."],
    ["北京是中国的首都。", "它有“三千多年”的历史！", "北京古称燕京。", "人口约２１００万……"],
]


@pytest.fixture
def tiny_dump(tmp_path) -> Path:
    path = tmp_path / "tiny.xml"
    path.write_text(_tiny_dump(), encoding="utf-8")
    return path


def test_wiki_to_documents_tiny_dump(tiny_dump):
    # The redirect is empty and the stub is shorter than 20 characters; the heading lines,
    # the table, the <ref> and the list go; "&" stays "&" and &nbsp; becomes a space.
    assert list(wiki_to_documents(tiny_dump, language="auto", min_doc_chars=20)) == _TINY_DOCS


@pytest.mark.parametrize("variant", ["bz2_named_xml_bz2", "bz2_without_extension", "gzip", "utf16", "no_siteinfo"])
def test_wiki_dump_variants_give_the_same_documents(tmp_path, variant):
    text = _tiny_dump(siteinfo=variant != "no_siteinfo")
    path = tmp_path / "dump.xml"
    if variant == "bz2_named_xml_bz2":
        path = tmp_path / "dump.xml.bz2"
        path.write_bytes(bz2.compress(text.encode("utf-8")))
    elif variant == "bz2_without_extension":
        path = tmp_path / "dump.xml"
        path.write_bytes(bz2.compress(text.encode("utf-8")))
    elif variant == "gzip":
        path = tmp_path / "dump.xml.gz"
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    elif variant == "utf16":
        path.write_bytes(text.encode("utf-16"))  # with BOM, like the bgwiki sample
    else:
        path.write_text(text, encoding="utf-8")
    assert list(wiki_to_documents(path, language="auto", min_doc_chars=20)) == _TINY_DOCS


def test_wiki_truncated_dump_is_an_error(tmp_path):
    from src.sample_data import fetch

    small = tmp_path / "small.xml.bz2"
    small.write_bytes(bz2.compress(_tiny_dump().encode("utf-8"))[:-30])
    with pytest.raises(ValueError, match=r"small\.xml\.bz2: not a readable bz2 file: Compressed file ended"):
        next(wiki_to_documents(small))
    # Cut past the part read to check the format: wikiextractor fails, and says why.
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(fetch("enwiki_dump").read_bytes()[:800_000])
    with pytest.raises(RuntimeError, match=r"wikiextractor failed on .*cut\.xml\.bz2(.|\n)*EOFError"):
        next(wiki_to_documents(cut))
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.xml: not a MediaWiki XML dump.*it is empty"):
        next(wiki_to_documents(empty))


def test_wiki_no_documents_is_an_error(tiny_dump):
    with pytest.raises(ValueError, match=r"tiny\.xml: yields no documents \(4 pages read: 1 empty, 3 shorter"):
        list(wiki_to_documents(tiny_dump, min_doc_chars=10_000))


def test_clean_wiki_text():
    text = ("The intro is about AT&amp;T and R&D and B&notes, a &lt;tag&gt; and x&nbsp;y.\n"
            "History.\n"
            "Alain Connes (; born 1 April 1947) is a mathematician (, ) .\n"
            "<onlyinclude>\n"
            "{| class=\"wikitable\"\n| a || b\n! h\n|}\n"
            "CO2 + H2O {{eqm}} H2CO3\n"
            "Text with [[File:x.png]] residue\n"
            "* a list item\n"
            "Early life and career.\n"
            "He died.")
    assert clean_wiki_text(text) == [
        "The intro is about AT&T and R&D and B&notes, a <tag> and x y.",
        "Alain Connes (born 1 April 1947) is a mathematician.",
        "He died.",
    ]


@pytest.mark.parametrize("line, is_last, expected", [
    ("History.", False, True),
    ("Early life and family ancestry.", False, True),
    ("1860 Presidential nomination and campaign.", False, True),
    ('"The Fountainhead" and political activism.', False, True),
    ("历史.", False, True),
    ("History.", True, False),  # wikiextractor writes a heading only before text
    ("He died.", False, False),
    ("Austin is the capital of Texas in the United States.", False, False),
    ("Several other conditions are common. They include:", False, False),
    ("Anarchism is a political philosophy that advocates self-governed societies based on voluntary "
     "institutions.", False, False),
    ("the end of a wrapped line.", False, False),
    ("See also..", False, False),
])
def test_is_wiki_heading(line, is_last, expected):
    assert is_wiki_heading(line, is_last) is expected


# --- writing shards --------------------------------------------------------------------

def _read_documents(paths):
    docs = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n"), path
        docs.extend(block.split("\n") for block in text[:-1].split("\n\n"))
    return docs


def _docs(n: int, sentences: int = 5, width: int = 60):
    return [[f"Doc {i} sentence {j} " + "x" * (width + (i * 7 + j) % 40) + "." for j in range(sentences)]
            for i in range(n)]


def test_write_documents_format_and_shard_sizes(tmp_path):
    docs = _docs(300)
    limit_mb = 0.01
    stats = write_documents(iter(docs), tmp_path, shard_size_mb=limit_mb, prefix="wiki")
    names = [p.name for p in stats.paths]
    assert names == [f"wiki_{i:05d}.txt" for i in range(len(names))] and len(names) > 5
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary files left
    sizes = [p.stat().st_size for p in stats.paths]
    largest_doc = max(len(("\n".join(d) + "\n").encode()) for d in docs)
    assert all(size <= limit_mb * 1e6 for size in sizes)
    assert all(size > limit_mb * 1e6 - largest_doc - 1 for size in sizes[:-1])
    assert _read_documents(stats.paths) == docs
    assert (stats.documents, stats.sentences) == (300, 1500)
    assert stats.characters == sum(len(s) for d in docs for s in d)
    assert stats.bytes == sum(sizes)


def test_write_documents_single_shard_oversized_doc_and_empty_docs(tmp_path):
    docs = [["a" * 5000 + "."], [], ["  ", ""], ["Short one.", "  padded  "]]
    stats = write_documents(docs, tmp_path / "one", shard_size_mb=None)
    assert [p.name for p in stats.paths] == ["wiki_00000.txt"]
    assert _read_documents(stats.paths) == [["a" * 5000 + "."], ["Short one.", "padded"]]
    stats = write_documents(docs, tmp_path / "tiny", shard_size_mb=0.001, prefix="zh")
    assert [p.name for p in stats.paths] == ["zh_00000.txt", "zh_00001.txt"]  # the big doc alone in shard 0
    with pytest.raises(ValueError, match="line break"):
        write_documents([["two\nlines"]], tmp_path / "bad")


def test_write_documents_refuses_then_overwrites_existing_shards(tmp_path):
    write_documents(_docs(100), tmp_path, shard_size_mb=0.005)
    before = sorted(p.name for p in tmp_path.glob("wiki_*.txt"))
    assert len(before) > 2
    with pytest.raises(FileExistsError, match="wiki_00000.txt"):
        write_documents(_docs(3), tmp_path, shard_size_mb=0.005)
    stats = write_documents(_docs(3), tmp_path, shard_size_mb=0.005, overwrite=True)
    assert sorted(p.name for p in tmp_path.glob("wiki_*.txt")) == ["wiki_00000.txt"]  # stale shards removed
    assert _read_documents(stats.paths) == _docs(3)


def test_write_documents_is_atomic_when_interrupted(tmp_path):
    def failing_docs():
        yield from _docs(120)
        raise KeyboardInterrupt("simulated interruption while writing")

    with pytest.raises(KeyboardInterrupt):
        write_documents(failing_docs(), tmp_path, shard_size_mb=0.005)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names and all(re.fullmatch(r"wiki_\d{5}\.txt", n) for n in names), names  # no .tmp left behind
    complete = [tmp_path / n for n in names]
    # The shards under final names are complete; the documents of the interrupted shard are not there.
    written = _read_documents(complete)
    assert written == _docs(120)[:len(written)] and len(written) < 120
    largest_doc = max(len(("\n".join(d) + "\n").encode()) for d in _docs(120))
    assert all(p.stat().st_size > 0.005 * 1e6 - largest_doc - 1 for p in complete)


def test_write_documents_is_atomic_when_the_disk_fills(tmp_path, monkeypatch):
    real_write = wiki._ShardWriter.write
    calls = []

    def write(self, data):
        calls.append(len(data))
        if len(calls) == 50:
            raise OSError(28, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(wiki._ShardWriter, "write", write)
    with pytest.raises(OSError, match="No space left"):
        write_documents(_docs(120), tmp_path, shard_size_mb=0.005)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names and all(re.fullmatch(r"wiki_\d{5}\.txt", n) for n in names), names
    written = _read_documents([tmp_path / n for n in names])  # whole shards only, none with document 50
    assert written == _docs(120)[:len(written)] and 0 < len(written) < 50


def test_early_stop_ends_wikiextractor(tmp_path):
    from src.sample_data import fetch

    def children():
        return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}

    before = children()
    documents = wiki_to_documents(fetch("enwiki_dump"), processes=2)
    first = next(documents)
    assert first[0].startswith("Anarchism is a political philosophy")
    assert children() - before, "wikiextractor should still be running"
    documents.close()  # blocked on a full pipe, it would never end by itself
    assert not children() - before


# --- command line ----------------------------------------------------------------------

def test_cli_main(tiny_dump, tmp_path, capsys):
    out = tmp_path / "out"
    code = wiki_to_text.main(["--input", str(tiny_dump), "--output-dir", str(out), "--language", "auto",
                              "--min-doc-chars", "20", "--no-progress"])
    assert code == 0
    summary = capsys.readouterr().out
    assert "documents 2  sentences 8  characters" in summary and "shards 1" in summary
    assert _read_documents([out / "wiki_00000.txt"]) == _TINY_DOCS
    stats = json.loads((out / "wiki_stats.json").read_text(encoding="utf-8"))
    assert (stats["documents"], stats["sentences"], stats["paths"]) == (2, 8, ["wiki_00000.txt"])
    # A second run into the same directory needs --overwrite.
    assert wiki_to_text.main(["--input", str(tiny_dump), "--output-dir", str(out), "--no-progress"]) == 1
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("make_input, message", [
    (lambda d: d / "missing.xml.bz2", "input not found: .*missing.xml.bz2"),
    (lambda d: (d / "page.html").write_text("<html><body>hi</body></html>") and d / "page.html",
     r"page\.html: not a MediaWiki XML dump"),
])
def test_cli_errors_name_the_file(tmp_path, capsys, make_input, message):
    path = make_input(tmp_path)
    assert wiki_to_text.main(["--input", str(path), "--output-dir", str(tmp_path / "o"), "--no-progress"]) == 1
    assert re.search(message, capsys.readouterr().err)
    assert not list((tmp_path / "o").glob("*.txt")) if (tmp_path / "o").exists() else True


def test_cli_runs_as_a_script_from_the_repo_root(tmp_path):
    path = tmp_path / "fortunes"
    path.write_text("第一条。\n%\n\x1b[33m第二条！\x1b[m\n", encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "tools/wiki_to_text.py", "--input", str(path), "--output-dir", str(out),
                             "--input-format", "fortunes", "--shard-size-mb", "1"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / "fortunes_00000.txt").read_text(encoding="utf-8") == "第一条。\n\n第二条！\n"
    assert "documents 2" in result.stdout


# --- real corpora ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def enwiki(tmp_path_factory):
    from src.sample_data import fetch

    out = tmp_path_factory.mktemp("enwiki")
    stats = write_documents(wiki_to_documents(fetch("enwiki_dump"), language="en"), out, shard_size_mb=1)
    return stats, _read_documents(stats.paths)


def test_real_enwiki_statistics(enwiki):
    stats, docs = enwiki
    # 106 articles: 1 empty, 8 disambiguation pages and stubs under 200 characters -> 97.
    assert 92 <= stats.documents <= 102
    assert 17_000 <= stats.sentences <= 20_000  # measured 18,433
    assert 2_450_000 <= stats.characters <= 2_650_000  # measured 2,548,225
    assert [p.name for p in stats.paths] == ["wiki_00000.txt", "wiki_00001.txt", "wiki_00002.txt"]
    assert all(p.stat().st_size <= 1_000_000 for p in stats.paths)
    assert len(docs) == stats.documents


def test_real_enwiki_has_no_markup_leftovers(enwiki):
    _, docs = enwiki
    sentences = [s for d in docs for s in d]
    for junk in ("[[", "]]", "{{", "}}", "{|", "||", "&amp;", "&quot;", "&nbsp;", "&lt;", "<ref", "</",
                 "formula_", "codice_"):
        hits = [s for s in sentences if junk in s]
        assert not hits, (junk, hits[:3])
    counts = collections.Counter(sentences)
    for heading in ("History.", "Etymology.", "Further reading.", "See also.", "References."):
        assert counts[heading] == 0, heading
    assert "AT&T" in " ".join(sentences)
    assert any(s.startswith("Anarchism is a political philosophy") for s in docs[0])


def test_real_enwiki_heading_detection_against_dump_headings():
    """Headings per page from the dump's == markup vs the lines is_wiki_heading drops."""
    from src.sample_data import fetch

    dump = fetch("enwiki_dump")

    def norm(s):
        s = re.sub(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]", r"\1", s)
        return re.sub(r"\W+", "", re.sub(r"<[^>]+>|\{\{[^}]*\}\}", "", s)).lower()

    headings = collections.defaultdict(set)
    for _, element in ET.iterparse(bz2.open(dump)):
        if element.tag.endswith("}page"):
            text = element.find("{*}revision/{*}text").text or ""
            for m in re.finditer(r"^(==+)\s*(.*?)\s*\1\s*$", text, re.M):
                headings[element.find("{*}id").text].add(norm(m.group(2)))
            element.clear()
    true_pos = false_pos = false_neg = others = 0
    for record in wiki._wikiextractor_records(dump, processes=1):
        lines = [ln for ln in record["text"].split("\n") if ln.strip()]
        for i, line in enumerate(lines):
            truth = line.endswith(".") and norm(line) in headings[record["id"]]
            guess = is_wiki_heading(line, is_last=i == len(lines) - 1)
            true_pos += truth and guess
            false_neg += truth and not guess
            false_pos += guess and not truth
            others += not truth
    assert true_pos + false_neg > 1600  # measured 1,668 heading lines
    assert false_neg <= 10  # measured 5
    assert false_pos / others < 0.01  # measured 32 of 5,393


def test_real_other_wiki_dumps():
    from src.sample_data import fetch

    data = fetch("gensim_test_data")
    # UTF-16-LE with BOM: converted before wikiextractor sees it.
    bg = list(wiki_to_documents(data / "bgwiki-latest-pages-articles-shortened.xml.bz2", language="auto"))
    assert len(bg) == 1 and bg[0][0].startswith("Григорианският календар")
    # No <siteinfo>: wikiextractor alone extracts nothing from it.
    tables = list(wiki_to_documents(data / "enwiki-table-markup.xml.bz2", language="en"))
    assert len(tables) == 5
    sentences = [s for d in tables for s in d]
    assert sum(map(len, sentences)) > 90_000
    assert not [s for s in sentences if re.search(r"\{\||\|\||^\||^!|\|-|\[\[|\{\{", s)]
    assert not [s for s in sentences if re.fullmatch(r"\d{1,3}\.", s)]


def test_real_peoples_daily(tmp_path):
    from src.sample_data import fetch

    stats = write_documents(peoples_daily_to_documents(fetch("peoples_daily"), language="zh"), tmp_path,
                            shard_size_mb=1, prefix="pd")
    assert 3_000 <= stats.documents <= 3_700  # measured 3,349
    assert 42_000 <= stats.sentences <= 47_000  # measured 44,714
    assert 1_800_000 <= stats.characters <= 1_880_000  # measured 1,841,620
    text = "".join(p.read_text(encoding="utf-8") for p in stats.paths)
    assert not re.search(r"/[A-Za-z]|\]\w", text), re.search(r".{20}(/[A-Za-z]|\]\w).{20}", text)
    assert "迈向充满希望的新世纪" in text and "  " not in text
    assert len(stats.paths) == 6  # 5.5 MB of UTF-8


def test_real_fortunes_zh():
    from src.sample_data import fetch

    docs = list(fortunes_to_documents(fetch("fortunes_zh") / "chinese"))
    assert 5_200 <= len(docs) <= 5_263  # 5,263 records, 4 of them only a text-art table
    sentences = [s for d in docs for s in d]
    assert 480_000 <= sum(map(len, sentences)) <= 560_000  # measured 515,520
    assert not [s for s in sentences if "\x1b" in s or "[33m" in s or "[m" in s]
    assert ["邀千百人之欢，不如释一人之怨；希千百事之荣，不如免一事之丑。", "--《菜根谭》"] in docs
