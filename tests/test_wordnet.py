"""WordNet access: the real WordNet 3.0, found as a user's machine would."""
from __future__ import annotations

import pytest

from v2ht_kg.kg import wordnet as W
from v2ht_kg.kg.errors import V2HTError


@pytest.fixture(scope="module")
def wn():
    try:
        return W.load_wordnet()
    except V2HTError as e:
        pytest.skip(str(e))


def _need_system_wordnet():
    src = W.default_source_dir()
    if not (src / "data.noun").is_file():
        pytest.skip(f"no Princeton-layout WordNet in {src} (apt-get install wordnet-base)")
    return src


def test_similarity_hypernyms_morphy(wn):
    dog, cat = wn.synset("dog.n.01"), wn.synset("cat.n.01")
    assert dog.wup_similarity(cat) == pytest.approx(0.857, abs=1e-3)
    assert wn.synset("canine.n.02") in dog.hypernyms()
    assert wn.synset("puppy.n.01") in dog.hyponyms()
    assert wn.morphy("dogs") == "dog"
    assert wn.morphy("churches") == "church"
    assert wn.morphy("ran", "v") == "run"
    assert wn.synsets("kids")[0] == wn.synset("child.n.01")
    assert wn.synset("paris.n.01").instance_hypernyms() == [wn.synset("national_capital.n.01")]


def test_loader_is_cached_in_process(wn):
    assert W.load_wordnet() is wn


def test_lexnames_file_matches_wninput():
    lines = W.lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[43] == "43\tverb.weather\t2"
    assert lines[44] == "44\tadj.ppl\t3"
    assert [int(x.split("\t")[0]) for x in lines] == list(range(45))


def test_copy_from_system_wordnet_reads_lexnames_in_order(tmp_path):
    src = _need_system_wordnet()
    corpus = W.build_wordnet_copy(src, tmp_path)
    assert corpus == tmp_path / "corpora" / "wordnet"
    assert (corpus / "lexnames").read_text().count("\n") == 45
    assert not [p for p in corpus.parent.iterdir() if p.name.startswith(".")]  # no temp left
    stamp = (corpus / "data.noun").stat().st_mtime_ns
    assert W.build_wordnet_copy(src, tmp_path) == corpus
    assert (corpus / "data.noun").stat().st_mtime_ns == stamp  # complete copy reused

    wn = W.load_wordnet(tmp_path, source_dir=src, use_nltk_data=False, download=False)
    # Lexicographer file numbers from the data file decoded through our list:
    # a shifted list would give wrong names.
    assert wn.synset("dog.n.01").lexname() == "noun.animal"
    assert wn.synset("entity.n.01").lexname() == "noun.Tops"
    assert wn.synset("rain.v.01").lexname() == "verb.weather"
    assert wn.synset("big.a.01").lexname() == "adj.all"
    assert wn.synsets("elapsed", "a")[0].lexname() == "adj.ppl"


def test_incomplete_copy_is_replaced(tmp_path):
    src = _need_system_wordnet()
    target = tmp_path / "corpora" / "wordnet"
    target.mkdir(parents=True)
    (target / "data.noun").write_text("truncated")
    W.build_wordnet_copy(src, tmp_path)
    assert (target / "data.noun").stat().st_size == (src / "data.noun").stat().st_size
    assert (target / "index.verb").is_file()


def test_not_a_wordnet_folder(tmp_path):
    with pytest.raises(V2HTError, match="missing data.noun"):
        W.build_wordnet_copy(tmp_path / "nowhere", tmp_path / "cache")


def test_no_wordnet_anywhere_says_how_to_install(tmp_path):
    with pytest.raises(V2HTError) as e:
        W.load_wordnet(tmp_path / "cache", source_dir=tmp_path / "nowhere", use_nltk_data=False, download=False)
    msg = str(e.value)
    assert "apt-get install wordnet-base" in msg and "nltk.downloader wordnet" in msg
    assert "\n" not in msg


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("V2HT_WORDNET_DIR", str(tmp_path / "wn"))
    monkeypatch.setenv("V2HT_NLTK_DATA", str(tmp_path / "nd"))
    assert W.default_source_dir() == tmp_path / "wn"
    assert W.default_cache_dir() == tmp_path / "nd"
    monkeypatch.delenv("V2HT_WORDNET_DIR")
    monkeypatch.delenv("V2HT_NLTK_DATA")
    assert W.default_source_dir() == W.SYSTEM_WORDNET_DIR
    assert W.default_cache_dir().parts[-3:] == (".cache", "v2ht-kg", "nltk_data")


def test_uses_nltk_data_first(monkeypatch, tmp_path):
    """A WordNet that nltk already finds (e.g. after nltk.download) is used
    as is: here the system source is absent, so only that route can work."""
    import nltk

    src = _need_system_wordnet()
    W.build_wordnet_copy(src, tmp_path / "nltk_data")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk_data")])
    wn = W.load_wordnet(tmp_path / "cache", source_dir=tmp_path / "nowhere", download=False)
    assert wn.synset("dog.n.01").wup_similarity(wn.synset("cat.n.01")) == pytest.approx(0.857, abs=1e-3)
    assert not (tmp_path / "cache").exists()
