"""Readers: the three real sets (skipped without ../shared/data) and bad input."""
from __future__ import annotations

from pathlib import Path

import pytest

from v2ht_kg.kg.errors import DataError
from v2ht_kg.kg.readers import guess_format, new_post_text, read_posts
from v2ht_kg.kg.records import UNKNOWN_USER

from conftest import SHARED_DATA

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent on this machine")


@needs_shared
def test_twitter_2013_real_counts():
    posts, bad = read_posts(SHARED_DATA / "twitter-hashtags-2013", "twitter-hashtags-2013")
    posts = list(posts)
    assert len(posts) == 33_881
    assert len({p.user for p in posts}) == 2_571
    assert {p.split for p in posts} == {"train", "valid", "test"}
    assert sum(p.split == "train" for p in posts) == 21_226
    assert all("" not in p.hashtags for p in posts)
    assert bad.count == 0


@needs_shared
def test_tweets2011_strips_inline_tags():
    posts = list(read_posts(SHARED_DATA / "tweets2011-hashtags", "tweets2011")[0])
    assert len(posts) > 29_000
    assert all(p.time and len(p.time) == 10 for p in posts)
    assert not any("#" + t in p.text for p in posts[:2000] for t in p.hashtags)


@needs_shared
def test_kuairec_has_no_users():
    posts = list(read_posts(SHARED_DATA / "kuairec-captions", "kuairec")[0])
    assert len(posts) == 6_116
    assert {p.user for p in posts} == {UNKNOWN_USER}
    assert len({t for p in posts for t in p.hashtags}) == 6_057


def test_kuairec_text_carries_the_category_path(tmp_path: Path):
    f = tmp_path / "kuairec_caption_category.csv"
    head = ("video_id,manual_cover_text,caption,topic_tag,first_level_category_id,first_level_category_name,"
            "second_level_category_id,second_level_category_name,third_level_category_id,third_level_category_name\n")
    f.write_text(head + "7,UNKNOWN,好吃的面,\"[美食,面]\",1,美食,2,美食日常,-124,UNKNOWN\n"
                 "8,封面,\"两行\n字幕\",[搞笑],3,喜剧,-124,UNKNOWN,-124,UNKNOWN\n"
                 "9,UNKNOWN,没有标签,[],3,喜剧,-124,UNKNOWN,-124,UNKNOWN\n", encoding="utf-8")
    posts = list(read_posts(f, "kuairec")[0])
    assert [(p.id, p.hashtags) for p in posts] == [("7", ["美食", "面"]), ("8", ["搞笑"])]
    # category names first (the token cap keeps them), UNKNOWN dropped
    assert posts[0].text == "美食 美食日常 好吃的面"
    assert posts[1].text == "喜剧 封面 两行\n字幕"
    # and kept as the post's category path, up to the first unknown level
    assert [p.categories for p in posts] == [["美食", "美食日常"], ["喜剧"]]
    # a new post (recommend --text "..." --category "美食 > 美食日常") gets
    # the text the reader would have written for it, not the caption alone
    assert new_post_text("kuairec", "好吃的面", ["美食", "美食日常"]) == posts[0].text
    assert new_post_text("kuairec", "好吃的面 #美食", []) == "好吃的面  "  # no answers inline, as in training
    assert new_post_text("twitter-hashtags-2013", "good #food", ["food"]) == "good #food"


def _twitter_dir(tmp_path: Path, train: bytes) -> Path:
    d = tmp_path / "tw"
    d.mkdir()
    (d / "train.csv").write_bytes(train)
    (d / "valid.csv").write_bytes(b"some text\t12\tlove\n")
    (d / "test.csv").write_bytes(b"more text\t12\tlove\tmusic\n")
    return d


@pytest.mark.parametrize(
    "content, message, line",
    [
        (b"ok text\t1\tlove\nbroken line without tabs\n", "expected text<TAB>user<TAB>hashtag", 2),
        (b"ok\t1\tlove\nbad \xff byte\t2\tmusic\n", "not UTF-8", 2),
        (b"text\tnotanumber\tlove\n", "user id must be numeric", 1),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, content, message, line):
    d = _twitter_dir(tmp_path, content)
    with pytest.raises(DataError) as e:
        list(read_posts(d, "twitter-hashtags-2013")[0])
    assert message in str(e.value)
    assert f"train.csv:{line}:" in str(e.value)


def test_skip_bad_counts(tmp_path):
    d = _twitter_dir(tmp_path, b"ok\t1\tlove\nbroken\nbad \xff\t2\tx\nfine\t3\tmusic\n")
    posts, bad = read_posts(d, "twitter-hashtags-2013", skip_bad=True)
    posts = list(posts)
    assert [p.hashtags for p in posts if p.split == "train"] == [["love"], ["music"]]
    assert bad.count == 2 and len(bad.examples) == 2


def test_missing_folder_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_posts(tmp_path / "nope", "twitter-hashtags-2013")
    with pytest.raises(DataError, match="unknown format"):
        read_posts(tmp_path, "parquet")
    with pytest.raises(DataError, match="missing"):
        list(read_posts(tmp_path, "twitter-hashtags-2013")[0])


def test_guess_format(tmp_path):
    d = _twitter_dir(tmp_path, b"a\t1\tb\n")
    assert guess_format(d) == "twitter-hashtags-2013"
    assert guess_format(tmp_path) == "jsonl"


def test_absurdly_long_tag_is_reported(tmp_path):
    d = _twitter_dir(tmp_path, b"ok\t1\tlove\ntext\t2\t" + b"x" * 500 + b"\n")
    with pytest.raises(DataError, match=r"train.csv:2: hashtag too long \(500"):
        list(read_posts(d, "twitter-hashtags-2013")[0])
