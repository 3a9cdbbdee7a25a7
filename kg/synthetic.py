"""A deterministic synthetic micro-video data set, written as a raw folder
(``kg.rawdata``): posts with hashtags, users, and visual/acoustic/text
sequences whose content depends on the hashtags.

Why it looks the way it does:
- Hashtags are real English words so that the relation builders have
  something to find: topics are WordNet noun subtrees (dog -> puppy, beagle),
  giving ss and po relations; multi-word tags join a modifier and a head
  ("kid dancer", "dog lover") whose single words are also tags (cp); tags
  drawn together inside a topic co-occur (co).
- Popularity is Zipf-like inside and across topics, so most tags are rare.
- Users have Dirichlet preferences over topics, a few favourite tags and a
  heavy-tailed number of posts (min 10 where the sizes allow).
- Features carry the tags: each tag has a latent vector; a few visual frames
  (and acoustic clips) show one of the post's tags through a fixed random
  projection, the other frames are noise plus the user's style, so attention
  over frames pays off.
- Surface forms are messy like real posts ("KidDancer", "#dog", "dancers"),
  for the normaliser to map back.
- ``planted``: one rare two-word tag whose only strong link is its cp
  neighbour, recorded in generator.json for the explanation tests.

Sizes go from ``tiny`` (tests) to ``insvideo`` (213,847 posts, 6,786 users,
15,751 tags, 13.4 tags a post). At INSVIDEO scale with the default dims the
features take about 2.2 GB (visual, 40x128 float16) + 1.6 GB (acoustic, 60x64)
on disk; they are generated and written in chunks of posts, never held whole.
Memory stays at a few hundred MB.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from .errors import V2HTError
from .fsio import named
from .prefetch import ordered_map
from .rawdata import FeatureWriter, feature_paths, write_ids

GENERATOR_VERSION = 1
LATENT_DIM = 32
_CHUNK = 1024  # posts per feature chunk; part of the output's definition (per-chunk seeds)

PRESETS: dict[str, dict] = {
    "tiny": dict(n_posts=600, n_users=40, n_tags=150, tags_per_post=5.0),
    "small": dict(n_posts=5000, n_users=300, n_tags=1200, tags_per_post=6.0),
    "insvideo": dict(n_posts=213_847, n_users=6_786, n_tags=15_751, tags_per_post=13.4),
}

# Topic roots as WordNet synset names. Order matters: a word under several
# roots belongs to the first, so specific roots come before broad ones.
TOPIC_ROOTS = (
    "dog.n.01", "feline.n.01", "horse.n.01", "bear.n.01", "rodent.n.01", "cetacean.n.01",
    "bird.n.01", "fish.n.01", "reptile.n.01", "amphibian.n.03", "butterfly.n.01", "insect.n.01",
    "crustacean.n.01", "mollusk.n.01", "flower.n.01", "cactus.n.01", "tree.n.01", "shrub.n.01",
    "fungus.n.01", "edible_fruit.n.01", "vegetable.n.01", "cheese.n.01", "bread.n.01",
    "cookie.n.01", "cake.n.03", "candy.n.01", "dessert.n.01", "pasta.n.02", "sauce.n.01",
    "soup.n.01", "sandwich.n.01", "salad.n.01", "pizza.n.01", "seafood.n.01", "meat.n.01",
    "spice.n.02", "edible_nut.n.01", "dish.n.02", "meal.n.01", "wine.n.01", "beer.n.01",
    "cocktail.n.01", "coffee.n.01", "tea.n.01", "beverage.n.01", "dancing.n.01",
    "music_genre.n.01", "musical_instrument.n.01", "dancer.n.01", "singer.n.01",
    "musician.n.01", "artist.n.01", "painting.n.01", "photograph.n.01", "drawing.n.02",
    "sculpture.n.02", "film.n.01", "martial_art.n.01", "exercise.n.01", "water_sport.n.01",
    "skating.n.01", "field_game.n.01", "court_game.n.01", "athlete.n.01",
    "sports_equipment.n.01", "sport.n.01", "board_game.n.01", "card_game.n.01", "toy.n.01",
    "game.n.01", "car.n.01", "motorcycle.n.01", "bicycle.n.01", "truck.n.01", "train.n.01",
    "boat.n.01", "ship.n.01", "aircraft.n.01", "vehicle.n.01", "shoe.n.01", "footwear.n.02",
    "hat.n.01", "jewelry.n.01", "cosmetic.n.01", "hairdo.n.01", "bag.n.04", "dress.n.01",
    "coat.n.01", "clothing.n.01", "fabric.n.01", "furniture.n.01", "lamp.n.01",
    "kitchen_utensil.n.01", "room.n.01", "dwelling.n.01", "building.n.01", "shop.n.01",
    "tool.n.01", "computer.n.01", "camera.n.01", "body_of_water.n.01",
    "natural_elevation.n.01", "geological_formation.n.01", "weather.n.01",
    "atmospheric_phenomenon.n.01", "celestial_body.n.01", "season.n.02", "gem.n.02",
    "chromatic_color.n.01", "party.n.02", "holiday.n.01", "festival.n.01", "herb.n.01",
)

# Everyday tags popular across all topics (#love, #fun), most popular first.
GENERAL_WORDS = (
    "love", "life", "fun", "friend", "family", "kid", "baby", "girl", "boy", "summer", "day",
    "night", "time", "home", "beach", "city", "style", "art", "music", "video", "party",
    "weekend", "holiday", "morning", "winter", "spring", "travel", "lover", "fan", "world",
    "show", "club", "photo", "mood", "goal", "smile", "nature", "street", "sunset", "school",
    "team", "trip", "garden", "studio", "wedding", "birthday", "challenge", "tutorial",
    "lesson", "recipe",
)
# General words that make multi-word tags: "kid dancer" (modifier first) and
# "dog lover" (suffix last).
MODIFIERS = (
    "kid", "baby", "girl", "boy", "summer", "night", "family", "beach", "city", "home",
    "street", "weekend", "holiday", "morning", "winter", "spring", "school", "studio",
    "garden", "wedding", "birthday",
)
SUFFIXES = (
    "love", "life", "day", "time", "lover", "fan", "party", "video", "style", "art", "club",
    "show", "world", "photo", "mood", "goal", "team", "trip", "challenge", "tutorial",
    "lesson", "recipe",
)
# Words of post descriptions that are neither tags nor topic words.
FILLER_WORDS = (
    "today", "new", "my", "the", "with", "so", "look", "watch", "best", "first", "little",
    "great", "happy", "amazing", "our", "this", "some", "just", "more", "again", "finally",
    "check", "out", "at", "in", "of", "and", "for", "when", "what", "real", "good",
)
# Modifier candidates of the planted tag: real nouns unlikely to be in a topic.
PLANT_WORDS = (
    "velvet", "lantern", "harbor", "meadow", "crystal", "thunder", "marble", "copper",
    "ember", "canyon", "saffron", "glacier", "tundra", "cobalt", "quartz", "prairie",
)
# WordNet usage domains whose words make bad tags (offensive, brand names, or
# plural-only forms the lemmatiser would change).
_EXCLUDED_USAGE = ("slang", "disparagement", "ethnic_slur", "obscenity", "vulgarism",
                   "colloquialism", "plural", "trade_name", "trademark")
_SINGLE = re.compile(r"[a-z]{3,14}")
_COLLOCATION = re.compile(r"[a-z]{3,12}_[a-z]{3,12}")


# -- WordNet -----------------------------------------------------------------
def _wordnet_dir() -> Path:
    candidates = []
    if os.environ.get("V2HT_WORDNET_DIR"):
        candidates.append(Path(os.environ["V2HT_WORDNET_DIR"]))
    candidates.append(Path("/usr/share/wordnet"))
    for c in candidates:
        if (c / "data.noun").exists() and (c / "index.noun").exists():
            return c
    try:  # importing nltk takes seconds: only when the usual places are empty
        import nltk

        for p in nltk.data.path:
            c = Path(p) / "corpora" / "wordnet"
            if (c / "data.noun").exists() and (c / "index.noun").exists():
                return c
    except ImportError:
        pass
    raise V2HTError(
        "WordNet 3.0 not found: install Debian's wordnet-base, run nltk.download('wordnet'), "
        "or set V2HT_WORDNET_DIR to a folder holding data.noun and index.noun"
    )


class _Nouns:
    """The WordNet 3.0 noun files, read directly.

    Private until kg.wordnet lands; the generator needs only hyponym subtrees,
    sense order, tag counts and irregular plurals, and reading data.noun by
    byte offset is faster than loading a full reader."""

    def __init__(self, root: Path):
        self.index: dict[str, list[int]] = {}
        with open(root / "index.noun", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                p = line.split()
                self.index[p[0]] = [int(o) for o in p[6 + int(p[3]):]]
        self.count: dict[str, int] = {}
        if (root / "cntlist.rev").exists():
            with open(root / "cntlist.rev", encoding="utf-8") as f:
                for line in f:
                    key, _, c = line.split()
                    lemma, _, rest = key.partition("%")
                    if rest.startswith("1:"):
                        self.count[lemma] = self.count.get(lemma, 0) + int(c)
        self.plural: dict[str, str] = {}
        if (root / "noun.exc").exists():
            with open(root / "noun.exc", encoding="utf-8") as f:
                for line in f:
                    p = line.split()
                    if len(p) == 2 and "_" not in p[0]:
                        self.plural.setdefault(p[1], p[0])
        self._data = (root / "data.noun").read_bytes()
        self._cache: dict[int, tuple[list[str], list[int], set[int]]] = {}
        self._bad_usage = {o for name in _EXCLUDED_USAGE for o in self.index.get(name, [])}

    def synset(self, name: str) -> int:
        word, _, n = name.rpartition(".n.")
        try:
            return self.index[word][int(n) - 1]
        except (KeyError, IndexError, ValueError):
            raise V2HTError(f"WordNet has no noun synset {name!r}") from None

    def _parse(self, off: int) -> tuple[list[str], list[int], set[int]]:
        hit = self._cache.get(off)
        if hit is None:
            end = self._data.index(b"\n", off)
            p = self._data[off:end].split(b" | ", 1)[0].split()
            wc = int(p[3], 16)
            words = [p[4 + 2 * i].decode() for i in range(wc)]
            i = 4 + 2 * wc
            hypos, usages = [], set()
            for _ in range(int(p[i])):
                sym, o, pos = p[i + 1], int(p[i + 2]), p[i + 3]
                i += 4
                if sym == b"~" and pos == b"n":
                    hypos.append(o)
                elif sym == b";u":
                    usages.add(o)
            hit = self._cache[off] = (words, hypos, usages)
        return hit

    def words(self, off: int) -> list[str]:
        return self._parse(off)[0]

    def hyponyms(self, off: int) -> list[int]:
        return self._parse(off)[1]

    def flagged(self, word: str) -> bool:
        return any(self._parse(o)[2] & self._bad_usage for o in self.index.get(word, []))

    def is_noun(self, word: str) -> bool:
        return word.replace(" ", "_") in self.index


def _load_nouns() -> _Nouns:
    return _Nouns(_wordnet_dir())


def _subtree(wn: _Nouns, root: str, max_depth: int = 8):
    """Single-word and two-word lemmas under a root: {lemma: (depth, sense rank)}."""
    start = wn.synset(root)
    depth = {start: 0}
    queue = [start]
    singles: dict[str, tuple[int, int]] = {}
    collocations: dict[str, tuple[int, int]] = {}
    for off in queue:  # breadth first: queue grows while iterating
        for w in wn.words(off):
            bucket = singles if _SINGLE.fullmatch(w) else collocations if _COLLOCATION.fullmatch(w) else None
            if bucket is None or w in bucket:
                continue
            senses = wn.index.get(w.lower(), [])
            rank = senses.index(off) if off in senses else 99
            bucket[w] = (depth[off], rank)
        if depth[off] < max_depth:
            for c in wn.hyponyms(off):
                if c not in depth:
                    depth[c] = depth[off] + 1
                    queue.append(c)
    return singles, collocations


# WordNet's exception list also holds learned plurals (camera → camerae) that
# no poster writes and no lemmatiser table undoes: only everyday ones are used.
COMMON_IRREGULAR = frozenset("child man woman person mouse goose foot tooth knife wife life leaf wolf "
                             "half shelf thief loaf calf ox".split())


def plural(wn: _Nouns, word: str) -> str:
    """A regular (or common irregular) English plural of a noun."""
    if word in wn.plural and word.split()[-1] in COMMON_IRREGULAR:
        return wn.plural[word]
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


# -- vocabulary -------------------------------------------------------------
@dataclass
class Tag:
    id: int
    name: str  # canonical: lemmatised words joined by one space
    words: tuple[str, ...]
    topic: int  # index into topics; -1 for general tags
    kind: str  # "general", "single", "compound", "wordnet" (a WordNet collocation), "planted"
    weight: float  # popularity inside its topic (unnormalised)
    parts: tuple[str, ...] = ()  # the single-word tags a multi-word tag composes (cp)


@dataclass
class Topic:
    root: str
    weight: float  # popularity across topics
    tag_ids: list[int] = field(default_factory=list)


def _gumbel_topk(rng: np.random.Generator, logw: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices drawn with probability proportional to exp(logw)."""
    if k >= len(logw):
        return np.argsort(-logw, kind="stable")
    keys = logw + rng.gumbel(size=len(logw))
    top = np.argpartition(-keys, k - 1)[:k]
    return top[np.argsort(-keys[top], kind="stable")]


def build_vocabulary(wn: _Nouns, n_tags: int, rng: np.random.Generator, n_topics: int | None = None,
                     multi_share: float = 0.4) -> tuple[list[Tag], list[Topic]]:
    """Exactly n_tags tags (fewer only if WordNet runs out): general tags plus
    topic tags, each topic a WordNet subtree with single-word tags and
    multi-word tags built on them."""
    general = [w for w in GENERAL_WORDS if wn.is_noun(w)]
    n_general = int(np.clip(round(0.08 * n_tags), 10, len(general)))
    general = general[:n_general]
    general_set = set(general)
    mods = [w for w in MODIFIERS if w in general_set]
    sufs = [w for w in SUFFIXES if w in general_set]

    n_topics = n_topics or int(np.clip(round(math.sqrt(n_tags) / 2), 3, len(TOPIC_ROOTS)))
    n_topics = min(n_topics, len(TOPIC_ROOTS))
    roots = [TOPIC_ROOTS[i] for i in sorted(rng.choice(len(TOPIC_ROOTS), n_topics, replace=False))]
    # Topic popularity is Zipf over a random order, independent of root order.
    order = rng.permutation(n_topics)
    topic_w = 1.0 / (order + 1.0) ** 0.8
    share = topic_w ** 0.4
    quota_f = (n_tags - n_general) * share / share.sum()
    quotas = np.floor(quota_f).astype(int)
    quotas[np.argsort(-(quota_f - quotas), kind="stable")[: (n_tags - n_general) - quotas.sum()]] += 1

    tags: list[Tag] = [Tag(i, w, (w,), -1, "general", 1.0 / (i + 1.0)) for i, w in enumerate(general)]
    names = set(general)
    # A multi-word tag must not concatenate into another word ("sea horse" -> seahorse).
    concat_taken = set(general)
    topics: list[Topic] = []
    carry = 0
    for t, root in enumerate(roots):
        topic = Topic(root, float(topic_w[t]))
        topics.append(topic)
        singles, collocations = _subtree(wn, root)
        cand = []
        for w, (depth, rank) in singles.items():
            if w in names or rank > 1 or wn.flagged(w):
                continue
            if w.endswith("s") and (w[:-1] in wn.index or w[:-2] in wn.index):
                continue  # looks like a plural: the lemmatiser would change it
            score = math.log1p(wn.count.get(w, 0)) + 1.5 * (rank == 0) + 1.0 / (1 + depth)
            cand.append((w, score))
        quota = int(quotas[t]) + carry
        n_single = min(len(cand), max(1, round(quota * (1 - multi_share))))
        if cand:
            scores = np.array([s for _, s in cand]) + 0.7 * rng.gumbel(size=len(cand))
            ranked = [cand[i][0] for i in np.argsort(-scores, kind="stable")][:n_single]
        else:
            ranked = []
        for r, w in enumerate(ranked):
            tag = Tag(len(tags), w, (w,), t, "single", 1.0 / (r + 1.0))
            tags.append(tag)
            topic.tag_ids.append(tag.id)
            names.add(w)
            concat_taken.add(w)
        n_multi = quota - len(ranked)
        head_w = {w: 1.0 / (r + 1.0) for r, w in enumerate(ranked[:30])}
        multi = []  # (name, words, parts, log weight, kind)
        for h, w in head_w.items():
            multi += [(f"{m} {h}", (m, h), (m, h), math.log(w), "compound") for m in mods]
            multi += [(f"{h} {s}", (h, s), (h, s), math.log(w), "compound") for s in sufs]
        vocab_words = set(ranked) | general_set
        for c in collocations:
            if wn.flagged(c):
                continue
            words = tuple(c.split("_"))
            parts = tuple(x for x in words if x in vocab_words)
            if parts:
                anchor = head_w.get(parts[-1], 0.02)
                multi.append((" ".join(words), words, parts, math.log(anchor) + 1.0, "wordnet"))
        multi = [m for m in multi if m[0] not in names and "".join(m[1]) not in concat_taken
                 and "".join(m[1]) not in wn.index and len(set(m[1])) == len(m[1])]
        picked = _gumbel_topk(rng, np.array([m[3] for m in multi]), n_multi) if multi and n_multi > 0 else []
        for i in picked:
            name, words, parts, logw, kind = multi[i]
            if name in names or "".join(words) in concat_taken:
                continue
            tag = Tag(len(tags), name, words, t, kind, math.exp(logw) * float(rng.uniform(0.05, 0.5)), parts)
            tags.append(tag)
            topic.tag_ids.append(tag.id)
            names.add(name)
            concat_taken.add("".join(words))
        carry = quota - len(topic.tag_ids)
    return tags, topics


# -- generation ---------------------------------------------------------------
def _check_params(n_posts, n_users, n_tags, tags_per_post, dims) -> None:
    if n_users < 1 or n_posts < n_users:
        raise V2HTError(f"need 1 <= n_users <= n_posts (got {n_users} users, {n_posts} posts)")
    if n_tags < 30:
        raise V2HTError(f"n_tags must be at least 30 (got {n_tags})")
    if not 1 <= tags_per_post <= 60:
        raise V2HTError(f"tags_per_post must be between 1 and 60 (got {tags_per_post})")
    if any(d < 0 for d in dims):
        raise V2HTError(f"feature steps and dims must be >= 0 (got {dims})")


def _latents(rng: np.random.Generator, tags: list[Tag], n_topics: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit latent vector per tag, and per topic. Multi-word tags mix their
    parts' latents, so composition carries meaning (what cp edges exploit)."""
    topic_z = rng.standard_normal((n_topics, LATENT_DIM))
    own = rng.standard_normal((len(tags), LATENT_DIM))
    z = np.zeros((len(tags), LATENT_DIM))
    by_name = {t.name: t.id for t in tags}
    for t in tags:
        z[t.id] = own[t.id] if t.topic < 0 else 0.6 * topic_z[t.topic] + 0.8 * own[t.id]
        z[t.id] /= np.linalg.norm(z[t.id])
    for t in tags:
        if t.parts and t.kind != "planted":
            mix = np.mean([z[by_name[p]] for p in t.parts], axis=0)
            z[t.id] = 0.8 * mix + 0.4 * own[t.id] / np.linalg.norm(own[t.id])
            z[t.id] /= np.linalg.norm(z[t.id])
    topic_z /= np.linalg.norm(topic_z, axis=1, keepdims=True)
    return z.astype(np.float32), topic_z.astype(np.float32)


def _posts_per_user(rng, n_posts: int, n_users: int) -> np.ndarray:
    base = min(10, n_posts // n_users)
    activity = rng.lognormal(0.0, 1.0, n_users)
    return base + rng.multinomial(n_posts - base * n_users, activity / activity.sum())


def generate(
    out_dir: Path,
    n_posts: int,
    n_users: int,
    n_tags: int,
    tags_per_post: float,
    seed: int,
    visual_dim: int = 128,
    acoustic_dim: int = 64,
    visual_steps: int = 40,
    acoustic_steps: int = 60,
    max_text_words: int = 6,
    planted: bool = True,
    *,
    n_topics: int | None = None,
    overwrite: bool = False,
) -> dict:
    """Write a synthetic raw folder at out_dir (atomically: a temporary folder,
    then a rename) and return the content of its generator.json.

    A modality with steps or dim 0 is left out."""
    out_dir = Path(out_dir)
    _check_params(n_posts, n_users, n_tags, tags_per_post, (visual_dim, acoustic_dim, visual_steps, acoustic_steps))
    if max_text_words < 0:
        raise V2HTError(f"max_text_words must be >= 0 (got {max_text_words})")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise V2HTError(f"{out_dir} exists and is not empty; choose another folder or overwrite it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        meta = _generate_into(tmp, n_posts, n_users, n_tags, tags_per_post, seed, visual_dim, acoustic_dim,
                              visual_steps, acoustic_steps, max_text_words, planted, n_topics)
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def generate_preset(name: str, out_dir: Path, seed: int = 0, **overrides) -> dict:
    """generate() with the sizes of a preset (tiny, small, insvideo)."""
    if name not in PRESETS:
        raise V2HTError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return generate(out_dir, **{**PRESETS[name], "seed": seed, **overrides})


def _generate_into(tmp: Path, n_posts, n_users, n_tags, tags_per_post, seed, visual_dim, acoustic_dim,
                   visual_steps, acoustic_steps, max_text_words, planted, n_topics) -> dict:
    params = dict(n_posts=n_posts, n_users=n_users, n_tags=n_tags, tags_per_post=tags_per_post, seed=seed,
                  visual_dim=visual_dim, acoustic_dim=acoustic_dim, visual_steps=visual_steps,
                  acoustic_steps=acoustic_steps, max_text_words=max_text_words, planted=planted,
                  n_topics=n_topics)
    wn = _load_nouns()
    r_vocab, r_users, r_posts, r_text, r_feat = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))

    tags, topics = build_vocabulary(wn, n_tags, r_vocab, n_topics)
    K = len(topics)
    general_ids = np.array([t.id for t in tags if t.topic < 0])

    plant = _plant_tag(wn, tags, topics, r_vocab) if planted else None
    z, topic_z = _latents(r_vocab, tags, K)
    if plant is not None:
        own = r_vocab.standard_normal(LATENT_DIM)
        z[plant.id] = 0.9 * z[_tags_by_name(tags)[plant.parts[0]]] + 0.3 * own / np.linalg.norm(own)
        z[plant.id] /= np.linalg.norm(z[plant.id])

    # Sampling tables: log weights per topic (the planted tag is never drawn).
    topic_ids = [np.array([i for i in tp.tag_ids if tags[i].kind != "planted"], dtype=np.int64) for tp in topics]
    topic_logw = [np.log(np.array([tags[i].weight for i in ids])) for ids in topic_ids]
    general_logw = np.log(np.array([tags[i].weight for i in general_ids]))

    # -- users ------------------------------------------------------------------
    topic_pop = np.array([tp.weight for tp in topics])
    alpha = 0.5 * topic_pop / topic_pop.mean()
    prefs = r_users.dirichlet(alpha, size=n_users)
    prefs = np.maximum(prefs, 1e-12)
    prefs /= prefs.sum(axis=1, keepdims=True)
    n_user_posts = _posts_per_user(r_users, n_posts, n_users)
    general_rate = r_users.beta(2.0, 8.0, n_users)
    favourites = []
    for u in range(n_users):
        t = int(np.argmax(prefs[u]))
        favourites.append(topic_ids[t][_gumbel_topk(r_users, topic_logw[t], min(2, len(topic_ids[t])))])
    user_style = r_users.standard_normal((n_users, 8)).astype(np.float32)

    # -- posts (hashtags only; features and text come while writing) ------------
    post_user = np.repeat(np.arange(n_users), n_user_posts)
    post_topic = np.empty(n_posts, dtype=np.int32)
    post_tags: list[np.ndarray] = []
    nb_p = 2.0 / (2.0 + max(tags_per_post - 1.0, 1e-9))
    # Generator.choice(K, p=row) is the row's normalised cumsum searched at one
    # uniform draw; done here once per user instead of checked and summed per
    # post, with the same draws and so the same data set
    cdf = prefs.cumsum(axis=1)
    cdf /= cdf[:, -1:]

    def topic_of(u: int) -> int:
        return int(cdf[u].searchsorted(r_posts.random(), side="right"))

    for p in range(n_posts):
        u = post_user[p]
        n = min(1 + int(r_posts.negative_binomial(2, nb_p)) if tags_per_post > 1 else 1, 60)
        t1 = topic_of(u)
        post_topic[p] = t1
        chosen = [f for f in favourites[u] if r_posts.random() < 0.35]
        n_gen = int(r_posts.binomial(n, general_rate[u]))
        if n_gen:
            chosen += list(general_ids[_gumbel_topk(r_posts, general_logw, n_gen)])
        rest = max(n - len(chosen), 1 if not chosen else 0)
        if rest:
            if r_posts.random() < 0.3:
                t2 = topic_of(u)
                k2 = rest // 3
            else:
                t2, k2 = t1, 0
            chosen += list(topic_ids[t1][_gumbel_topk(r_posts, topic_logw[t1], rest - k2)])
            if k2:
                chosen += list(topic_ids[t2][_gumbel_topk(r_posts, topic_logw[t2], k2)])
        post_tags.append(np.array(list(dict.fromkeys(int(c) for c in chosen)), dtype=np.int32))

    planted_posts = _place_planted(plant, tags, post_tags, post_topic, post_user, r_posts) if plant else []
    _cover_unused(tags, post_tags, post_topic, set(planted_posts), r_posts)

    # Posts appear in time order, as a crawl would list them.
    times = r_posts.integers(0, 365 * 86400, n_posts)
    order = np.argsort(times, kind="stable")
    post_ids = [f"v{i:07d}" for i in range(n_posts)]
    lengths = np.array([len(post_tags[i]) for i in order], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.concatenate([post_tags[i] for i in order]).astype(np.int64)
    users_sorted = post_user[order]
    counts = np.bincount(flat, minlength=len(tags))

    _write_posts(tmp / "posts.jsonl", wn, tags, topics, order, times, post_ids, post_user, post_topic,
                 post_tags, max_text_words, r_text)
    features = {}
    if visual_steps and visual_dim:
        features["visual"] = dict(steps=visual_steps, dim=visual_dim, relevant=max(1, visual_steps // 5))
    if acoustic_steps and acoustic_dim:
        features["acoustic"] = dict(steps=acoustic_steps, dim=acoustic_dim, relevant=max(1, acoustic_steps // 6))
    proj_rng = np.random.default_rng(np.random.SeedSequence([seed, 7001]))
    for m, spec in features.items():
        _write_features(tmp, m, spec, proj_rng, seed, z, topic_z, tags, flat, offsets, users_sorted, user_style,
                        post_ids)

    meta = {
        "generator": "v2ht_kg.kg.synthetic",
        "version": GENERATOR_VERSION,
        "params": params,
        "stats": _stats(tags, counts, lengths, n_user_posts),
        "features": {m: {"steps": s["steps"], "dim": s["dim"], "relevant_steps": s["relevant"], "dtype": "float16"}
                     for m, s in features.items()},
        "topics": [{"root": tp.root, "weight": round(tp.weight, 6), "n_tags": len(tp.tag_ids)} for tp in topics],
        "planted": ({"tag": plant.name, "neighbour": plant.parts[0], "uses": len(planted_posts),
                     "posts": sorted(post_ids[int(np.nonzero(order == p)[0][0])] for p in planted_posts)}
                    if plant else None),
        "hashtags": [{"name": t.name, "topic": t.topic, "kind": t.kind, "count": int(counts[t.id])} for t in tags],
    }
    with named(tmp / "generator.json"):
        (tmp / "generator.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def _tags_by_name(tags: list[Tag]) -> dict[str, int]:
    return {t.name: t.id for t in tags}


def _plant_tag(wn: _Nouns, tags: list[Tag], topics: list[Topic], rng) -> Tag | None:
    """Turn the least popular multi-word tag of the most popular topic into a
    rare tag "<new word> <popular single-word tag>": its only composition
    neighbour is that single-word tag (the new word is in no other tag)."""
    top = int(np.argmax([tp.weight for tp in topics]))
    singles = sorted((tags[i] for i in topics[top].tag_ids if tags[i].kind == "single"), key=lambda t: -t.weight)
    multis = sorted((tags[i] for i in topics[top].tag_ids if tags[i].kind in ("compound", "wordnet")),
                    key=lambda t: t.weight)
    if not singles or not multis:
        return None
    neighbour = singles[int(rng.integers(0, min(3, len(singles))))]
    used_words = {w for t in tags for w in t.words}
    for w in rng.permutation(PLANT_WORDS):
        w = str(w)
        name = f"{w} {neighbour.name}"
        if wn.is_noun(w) and not wn.flagged(w) and w not in used_words and w + neighbour.name not in wn.index:
            slot = multis[0]
            tags[slot.id] = Tag(slot.id, name, (w, neighbour.name), top, "planted", 0.0, (neighbour.name,))
            return tags[slot.id]
    return None


def _place_planted(plant: Tag, tags, post_tags, post_topic, post_user, rng) -> list[int]:
    """Put the planted tag on 2-3 posts of its topic, from different users,
    without its neighbour and with no partner tag shared by two of them: its
    co-occurrence links stay single, weak ones."""
    neighbour = _tags_by_name(tags)[plant.parts[0]]
    cands = np.nonzero(post_topic == plant.topic)[0]
    if len(cands) < 3:
        cands = np.arange(len(post_tags))
    k = int(rng.integers(2, 4))
    chosen: list[int] = []
    users: set[int] = set()
    for p in rng.permutation(cands):
        if post_user[p] not in users:
            chosen.append(int(p))
            users.add(int(post_user[p]))
            if len(chosen) == k:
                break
    seen: set[int] = set()
    for p in chosen:
        keep = [int(t) for t in post_tags[p] if t != neighbour and t != plant.id and t not in seen]
        seen.update(keep)
        pos = int(rng.integers(0, len(keep) + 1))
        post_tags[p] = np.array(keep[:pos] + [plant.id] + keep[pos:], dtype=np.int32)
    return chosen


def _cover_unused(tags, post_tags, post_topic, frozen: set[int], rng) -> None:
    """Every vocabulary tag gets at least one use, on a post of its topic."""
    used = np.zeros(len(tags), dtype=bool)
    for a in post_tags:
        used[a] = True
    by_topic: dict[int, np.ndarray] = {}
    movable = np.array([p for p in range(len(post_tags)) if p not in frozen])
    for t in tags:
        if used[t.id] or t.kind == "planted":
            continue
        if t.topic not in by_topic:
            pool = movable[post_topic[movable] == t.topic] if t.topic >= 0 else movable
            by_topic[t.topic] = pool if len(pool) else movable
        p = int(rng.choice(by_topic[t.topic]))
        post_tags[p] = np.append(post_tags[p], np.int32(t.id))


def _surface(tag: Tag, wn: _Nouns, rng, plural_ok: bool) -> str:
    r = rng.random()
    words = list(tag.words)
    if r < 0.06 and plural_ok:
        words[-1] = plural(wn, words[-1])
    if len(words) == 1:
        w = words[0]
        return w.capitalize() if 0.06 <= r < 0.16 else "#" + w if 0.16 <= r < 0.22 else w
    if 0.06 <= r < 0.31:
        return "".join(x.capitalize() for x in words)
    return ("#" if 0.31 <= r < 0.38 else "") + "".join(words)


def _write_posts(path, wn, tags, topics, order, times, post_ids, post_user, post_topic, post_tags,
                 max_text_words, rng) -> None:
    start = datetime(2018, 1, 1)
    fillers = np.array(FILLER_WORDS)
    topic_words = [[tags[i].name for i in tp.tag_ids if tags[i].kind == "single"] for tp in topics]
    # A plural surface must map back to one tag: "doggies" could be doggie or doggy.
    forms: dict[str, int] = {}
    for t in tags:
        forms["".join(t.words)] = forms.get("".join(t.words), 0) + 1
        pl = "".join(t.words[:-1]) + plural(wn, t.words[-1])
        forms[pl] = forms.get(pl, 0) + 1
    plural_ok = [forms["".join(t.words[:-1]) + plural(wn, t.words[-1])] == 1 for t in tags]
    tmp = path.with_name(path.name + ".tmp")
    with named(path), open(tmp, "w", encoding="utf-8") as f:
        for row, p in enumerate(order):
            tlist = [tags[int(i)] for i in post_tags[p]]
            text = []
            n_words = int(rng.integers(1, max_text_words + 1)) if max_text_words else 0
            for _ in range(n_words):
                r = rng.random()
                if r < 0.45:
                    t = tlist[int(rng.integers(0, len(tlist)))]
                    w = t.words[int(rng.integers(0, len(t.words)))]
                    text.append(plural(wn, w) if rng.random() < 0.1 else w)
                elif r < 0.65 and topic_words[post_topic[p]]:
                    tw = topic_words[post_topic[p]]
                    text.append(tw[min(int(rng.exponential(3.0)), len(tw) - 1)])
                else:
                    text.append(str(fillers[int(rng.integers(0, len(fillers)))]))
            rec = {
                "id": post_ids[row],
                "user": f"u{int(post_user[p]):05d}",
                "hashtags": [_surface(t, wn, rng, plural_ok[t.id]) for t in tlist],
                "text": " ".join(text),
                "time": (start + timedelta(seconds=int(times[p]))).isoformat(),
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _write_features(tmp: Path, modality: str, spec: dict, proj_rng, seed: int, z, topic_z, tags, flat, offsets,
                    users, user_style, post_ids) -> None:
    """Noise frames carry the user's style; `relevant` frames per post each
    show one of the post's tags (acoustic: mostly the tag's topic) through a
    fixed projection, mixed with the post's mean tag latent."""
    steps, dim, rel = spec["steps"], spec["dim"], spec["relevant"]
    proj = proj_rng.standard_normal((LATENT_DIM, dim)).astype(np.float32)
    style_proj = (proj_rng.standard_normal((user_style.shape[1], dim)) / math.sqrt(user_style.shape[1])).astype(np.float32)
    if modality == "acoustic":
        topic_of = np.array([max(t.topic, 0) for t in tags])
        has_topic = np.array([t.topic >= 0 for t in tags])[:, None]
        lat = np.where(has_topic, 0.7 * topic_z[topic_of] + 0.3 * z, z).astype(np.float32)
        signal = 1.5
    else:
        lat = z
        signal = 2.0
    n = len(offsets) - 1
    lengths = np.diff(offsets)

    def chunk(c: int) -> np.ndarray:
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        b = hi - lo
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7100 + (modality == "acoustic"), c]))
        x = rng.standard_normal((b, steps, dim), dtype=np.float32)
        x += (user_style[users[lo:hi]] @ style_proj)[:, None, :] * 0.5
        # The post's mean tag latent, then one tag per relevant frame.
        seg = flat[offsets[lo]:offsets[hi]]
        mean = np.add.reduceat(lat[seg], offsets[lo:hi] - offsets[lo], axis=0) / lengths[lo:hi, None]
        pick = offsets[lo:hi, None] + (rng.random((b, rel)) * lengths[lo:hi, None]).astype(np.int64)
        frame_lat = 0.8 * lat[flat[pick]] + 0.4 * mean[:, None, :]
        pos = np.argsort(rng.random((b, steps)), axis=1)[:, :rel]
        x[np.arange(b)[:, None], pos] += signal * (frame_lat @ proj)
        return x.astype(np.float16)

    npy, ids_path = feature_paths(tmp, modality)
    with FeatureWriter(npy, n, steps, dim) as w:
        # Each chunk has its own seed, so chunks are computed on two threads
        # (numpy's sampling and casts release the GIL) and written in order:
        # the file is the same as from one thread, in about half the time.
        for x in ordered_map(chunk, range((n + _CHUNK - 1) // _CHUNK), workers=2 if (os.cpu_count() or 1) > 1 else 0):
            w.write(x)
    write_ids(ids_path, post_ids)


def _stats(tags: list[Tag], counts: np.ndarray, lengths: np.ndarray, n_user_posts: np.ndarray) -> dict:
    used = counts[counts > 0]
    srt = np.sort(used)[::-1]
    top = max(1, len(srt) // 10)
    return {
        "posts": int(len(lengths)),
        "users": int(len(n_user_posts)),
        "tags": int(len(used)),
        "tag_uses": int(counts.sum()),
        "tags_per_post": round(float(lengths.mean()), 4),
        "multi_word_share": round(sum(len(t.words) > 1 for t in tags) / len(tags), 4),
        "top10pct_use_share": round(float(srt[:top].sum() / srt.sum()), 4),
        "below_mean_share": round(float((used < used.mean()).mean()), 4),
        "count_median": float(np.median(used)),
        "count_max": int(srt[0]),
        "user_posts_min": int(n_user_posts.min()),
        "user_posts_max": int(n_user_posts.max()),
    }
