"""Data set statistics (raw posts and prepared data) and the hashtag
frequency plot (paper Figure 4)."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterable

from .dataset import PreparedDataset
from .records import UNKNOWN_USER, Post


def raw_stats(posts: Iterable[Post], longtail_threshold: int) -> tuple[dict, Counter]:
    """Figures of the input as read, before normalisation and filters.
    Hashtags are counted as distinct lower-cased surface forms."""
    n = 0
    users: set[str] = set()
    tag_count: Counter = Counter()
    uses = 0
    no_tags = 0
    for p in posts:
        n += 1
        if p.user != UNKNOWN_USER:
            users.add(p.user)
        tags = {t.lower().lstrip("#") for t in p.hashtags}
        if not tags:
            no_tags += 1
        uses += len(tags)
        tag_count.update(tags)
    lt = sum(1 for c in tag_count.values() if c < longtail_threshold)
    return dict(
        posts=n,
        posts_without_hashtags=no_tags,
        users=len(users),
        hashtags=len(tag_count),
        hashtag_uses=uses,
        hashtags_per_post=round(uses / n, 4) if n else 0.0,
        longtail_threshold=longtail_threshold,
        longtail_hashtags=lt,
        longtail_share=round(lt / len(tag_count), 4) if tag_count else 0.0,
        singleton_share=round(sum(1 for c in tag_count.values() if c == 1) / len(tag_count), 4) if tag_count else 0.0,
    ), tag_count


def prepared_stats(ds: PreparedDataset) -> tuple[dict, Counter]:
    c = ds.manifest["counts"]
    tags = ds.hashtags
    counts = Counter({h.name: h.count for h in tags})
    lt_uses = sum(h.count for h in tags if h.longtail)
    all_uses = sum(h.count for h in tags) or 1
    return dict(
        posts=c["posts"],
        posts_by_split=c["posts_by_split"],
        users=c["users"],
        hashtags=c["hashtags"],
        hashtags_per_post=round(c["tag_uses"] / max(c["posts"], 1), 4),
        longtail_threshold=ds.params["longtail_threshold"],
        longtail_hashtags=c["longtail_hashtags"],
        longtail_share=round(c["longtail_hashtags"] / max(c["hashtags"], 1), 4),
        longtail_use_share=round(lt_uses / all_uses, 4),
        modalities=ds.modalities,
    ), counts


def plot_frequency(counts: Counter, out: Path, title: str, longtail_threshold: int | None = None) -> Path:
    """Hashtags ranked by frequency, log scale (paper Figure 4). Atomic write."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freq = sorted(counts.values(), reverse=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(range(1, len(freq) + 1), freq, color="#1f77b4", lw=1.5)
    ax.set_yscale("log")
    ax.set_xlabel("hashtags ranked by frequency")
    ax.set_ylabel("occurrences (log)")
    if longtail_threshold:
        ax.axhline(longtail_threshold, color="#d62728", ls="--", lw=1, label=f"long-tail threshold ({longtail_threshold})")
        ax.legend()
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out)
    return out
