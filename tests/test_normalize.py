"""Hashtag and text normalisation (kg/normalize.py), on real spaCy and word counts."""
from __future__ import annotations

from pathlib import Path

import pytest

from v2ht_kg.kg.errors import DataError
from v2ht_kg.kg.normalize import MAX_TAG_CHARS, Normalizer, NormalizedTag

GOLD = Path(__file__).resolve().parent / "data" / "segmentation_gold.tsv"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    return Normalizer()


def name(norm: Normalizer, raw: str) -> str | None:
    t = norm.tag(raw)
    return None if t is None else t.name


def test_concatenations_are_segmented_and_lemmatised(norm):
    assert name(norm, "kiddancer") == "kid dancer"
    assert name(norm, "skatedamnday") == "skate damn day"
    assert name(norm, "kidsdancers") == "kid dancer"
    t = norm.tag("#KidDancers")
    assert t == NormalizedTag("kid dancer", ["kid", "dancer"], "#KidDancers")


def test_separators_and_camel_case_give_one_name(norm):
    forms = ["KidDancer", "kid_dancer", "kid-dancer", "kid dancer", "#kiddancer", "KIDDANCER"]
    assert {name(norm, f) for f in forms} == {"kid dancer"}
    assert {name(norm, f) for f in ["hiphop", "HipHop", "hip_hop", "Hip Hop"]} == {"hip hop"}
    # camelCase is honoured even against the dictionary...
    assert name(norm, "CheckOut") == "check out"
    # ...but never cuts a social-media word.
    assert name(norm, "iPhone") == "iphone"
    assert name(norm, "YouTube") == "youtube"


def test_social_media_words_are_not_split(norm):
    for w in ["instagram", "selfie", "tbt", "ootd", "vlog", "hashtag", "tiktok", "youtube", "retweet"]:
        assert norm.segment(w) == [w]
    assert name(norm, "instagood") == "insta good"
    assert name(norm, "selfiesunday") == "selfie sunday"
    assert name(norm, "selfies") == "selfie"
    assert name(norm, "picoftheday") == "pic of the day"


def test_digits_are_own_tokens_except_known_alphanumerics(norm):
    assert norm.segment("tbt2013") == ["tbt", "2013"]
    assert norm.segment("iPhone4") == ["iphone", "4"]
    assert norm.segment("top10") == ["top", "10"]
    assert norm.segment("1dfeatjustinbieber") == ["1d", "feat", "justin", "bieber"]
    assert norm.segment("mp3") == ["mp3"]
    assert name(norm, "2013") == "2013"


def test_nfkc_full_width_input(norm):
    t = norm.tag("＃ＫｉｄＤａｎｃｅｒ")
    assert t is not None and t.name == "kid dancer"
    assert t.surface == "＃ＫｉｄＤａｎｃｅｒ"  # the surface form is kept as written


def test_empty_and_symbol_only_tags_are_none(norm):
    for raw in ["", "   ", "#", "##", "😀😀", "❤️", "!!!", "#🔥"]:
        assert norm.tag(raw) is None, raw
    assert name(norm, "#❤️love") == "love"


def test_over_long_tag_raises(norm):
    assert name(norm, "a" * MAX_TAG_CHARS) is not None
    with pytest.raises(DataError, match=rf"hashtag too long \({MAX_TAG_CHARS + 1} characters, at most {MAX_TAG_CHARS}\)"):
        norm.tag("a" * (MAX_TAG_CHARS + 1))


def test_chinese_tags_are_cut_into_words_other_scripts_kept_whole(norm):
    assert name(norm, "搞笑") == "搞笑"
    assert norm.tag("#感谢快手我要上热门").words == ["感谢", "快手", "我", "要", "上", "热门"]
    assert norm.tag("快手创作者服务中心").words == ["快手", "创作者", "服务中心"]
    # a tag of the words of another is one name: both spellings meet
    assert name(norm, "上热门") == name(norm, "上 热门") == "上 热门"
    assert name(norm, "vlog日常") == "vlog 日常"
    assert name(norm, "नमस्ते") == "नमस्ते"  # combining marks stay inside the word


def test_lemmatisation_is_plural_only_and_guarded(norm):
    assert name(norm, "recipes") == "recipe"
    assert name(norm, "celebrities") == "celebrity"
    assert name(norm, "taxes") == "tax"
    assert name(norm, "women") == "woman"
    for kept in ["news", "physics", "politics", "this", "glasses", "texas", "steelers"]:
        assert name(norm, kept) == kept
    # verbs and adjectives inside a name are not lemmatised
    assert name(norm, "bestfriends") == "best friend"
    assert name(norm, "nowplaying") == "now playing"


def test_tags_dedups_by_name_keeping_first(norm):
    out = norm.tags(["KidDancer", "kid_dancers", "😀", "tbt", "#TBT", "  "])
    assert [(t.name, t.surface) for t in out] == [("kid dancer", "KidDancer"), ("tbt", "tbt")]


def test_cache_returns_independent_word_lists(norm):
    a = norm.tag("kiddancer")
    a.words.append("x")
    assert norm.tag("kiddancer").words == ["kid", "dancer"]


def test_text_tokens(norm):
    toks = norm.tokens("RT @bob: I'm loving the kids' dancers at http://t.co/xyz #tbt in 2013!!! www.x.com #KidDancer")
    assert toks == ["rt", "love", "kid", "dancer"]
    assert norm.tokens("ＨＥＬＬＯ world, the end") == ["hello", "world", "end"]
    assert norm.tokens("dogs cats birds fish", max_tokens=2) == ["dog", "cat"]
    assert norm.tokens("dogs", max_tokens=0) == []
    assert norm.tokens("") == []
    # inline tags go whole, with what sticks to them; HTML entities decoded
    assert norm.tokens("mixtape #MusikAmerica.com fish&amp;chips&nbsp;now") == ["mixtape", "fish&chips"]


def test_han_mentions_keep_their_names(norm):
    """A Chinese platform's @mention is a display name that can name a tagged
    programme (@推广小助手, tag 推广小助手): its words stay, the "(id)" the
    app appends goes; Latin @handles are still dropped."""
    toks = norm.tokens("谢谢@推广小助手@周同学(O1951804829) 好看 @nytimes 真的")
    assert toks == ["谢谢", "推广", "助手", "周", "同学", "好看", "真的"]
    # full-width brackets are folded by NFKC before the id is cut
    assert norm.tokens("@快手官方大哥（O12）") == ["快手", "官方", "大哥"]
    assert norm.tokens("@bob_smith great story @x") == ["great", "story"]


def test_chinese_text_is_cut_into_words_without_particles(norm):
    # one clause without spaces used to be one token that no other post had
    toks = norm.tokens("邓紫棋酒店隔离，洗手间大放歌喉。高品质裤子的厂家 关注我吧")
    assert toks[:4] == ["邓紫棋", "酒店", "隔离", "洗手间"]
    assert {"歌喉", "高品质", "裤子", "厂家", "关注"} <= set(toks)
    assert not {"的", "我", "吧"} & set(toks)  # particles and pronouns go
    assert "坚持" in norm.tokens("坚持练习")  # the long stop list's content words stay
    assert norm.tokens("76岁老汉 dogs", max_tokens=2) == ["岁", "老汉"]


def test_tokens_many_matches_tokens(norm):
    texts = ["the kids are dancing #dance", "", "@a http://x.y 123 456", "Cats and DOGS"]
    assert norm.tokens_many(texts, 3) == [norm.tokens(t, 3) for t in texts]
    assert norm.tokens_many(texts)[2] == []


def test_spell_correction_fixes_typos_not_known_words():
    speller = Normalizer(spell=True)
    assert name(speller, "happpy") == "happy"
    assert name(speller, "birthdayy") == "birthday"
    # Words the vocabulary knows stay, even common misspellings of the web.
    for known in ["kid dancer", "instagram", "selfie", "tbt", "news", "bieber", "lovato", "recieve"]:
        assert name(speller, known) == known
    # off by default
    assert name(Normalizer(), "happpy") != "happy"


def _read_gold() -> list[tuple[str, str, str]]:
    rows = []
    for line in GOLD.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("# "):
            f = line.split("\t")
            rows.append((f[0], f[1], f[2] if len(f) > 2 else f[1]))
    return rows


def test_gold_list_accuracy_floor(norm):
    gold = _read_gold()
    assert len(gold) >= 100
    seg_ok = sum(" ".join(norm.segment(tag)) == words for tag, words, _ in gold)
    name_ok = sum(name(norm, tag) == want for tag, _, want in gold)
    # Measured 98.9% for both; 90% leaves room for word-list changes but
    # fails if segmentation or lemmatisation breaks.
    assert seg_ok / len(gold) >= 0.90, seg_ok
    assert name_ok / len(gold) >= 0.90, name_ok


def test_real_twitter_tags_normalise_fast():
    train = DATA / "twitter-hashtags-2013" / "train.csv"
    if not train.exists():
        pytest.skip(f"real data absent: {train}")
    import time

    from v2ht_kg.kg.readers import read_posts

    posts, _ = read_posts(train.parent, "twitter-hashtags-2013")
    tags = {t for p in posts if p.split == "train" for t in p.hashtags}
    fresh = Normalizer()
    t = time.perf_counter()
    out = [fresh.tag(x) for x in tags]
    dt = time.perf_counter() - t
    names = {o.name for o in out if o is not None}
    assert len(tags) > 10_000
    # Distinct surfaces mostly stay distinct names, but some merge (plurals, case).
    assert 0.9 * len(tags) < len(names) < len(tags)
    assert dt < 20, dt  # the brief's budget for ~20k tags on one core
