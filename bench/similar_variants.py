"""Compare the similarity variants of suggestbox.similar on tests/data/similar_pairs.json.

Corpus: the distractors and the first text of every pair; query: the second text; a hit when
the pair's first text is ranked first (top-1) or among the first three (top-3). With jieba
installed (not a dependency), word unigrams+bigrams with TF-IDF are measured too.

    .venv/bin/python bench/similar_variants.py
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from suggestbox import similar  # noqa: E402

DATA = json.loads((ROOT / "tests/data/similar_pairs.json").read_text(encoding="utf-8"))


def evaluate(ranker) -> tuple[float, float]:
    corpus = [(f"d{i}", t) for i, t in enumerate(DATA["distractors"])]
    corpus += [(f"p{i}", p["a"]) for i, p in enumerate(DATA["pairs"])]
    top1 = top3 = 0
    for i, p in enumerate(DATA["pairs"]):
        keys = [k for k, _ in ranker(p["b"], corpus)]
        top1 += keys[:1] == [f"p{i}"]
        top3 += f"p{i}" in keys[:3]
    n = len(DATA["pairs"])
    return top1 / n, top3 / n


def main() -> None:
    rows = []
    for v in similar.VARIANTS:
        rows.append((v.name, *evaluate(lambda t, c, v=v: similar.rank(t, c, 3, variant=v))))
    rng = random.Random(1)
    rows.append(("random order (control)",
                 *evaluate(lambda t, c: rng.sample(c, len(c)))))
    try:
        import jieba  # type: ignore[import-not-found]
    except ImportError:
        print("(jieba not installed: word-based variant skipped)")
    else:
        jieba.setLogLevel(60)
        for syn, pairs in ((False, False), (False, True), (True, True)):
            def words(text: str, variant: similar.Variant, syn: bool = syn,
                      pairs: bool = pairs) -> Counter[str]:
                w = [x for x in jieba.lcut(similar.normalise(text, syn)) if x.strip()]
                return Counter(w + ([a + b for a, b in zip(w, w[1:], strict=False)]
                                    if pairs else []))
            with mock.patch.object(similar, "features", words):
                name = ("jieba words" + ("+word bigrams" if pairs else "") + ", TF-IDF"
                        + (", synonym table" if syn else ""))
                rows.append((name, *evaluate(lambda t, c: similar.rank(t, c, 3))))
    print(f"{len(DATA['pairs'])} pairs, {len(DATA['distractors'])} distractors")
    print(f"{'variant':45} top-1  top-3")
    for name, t1, t3 in rows:
        print(f"{name:45} {t1:5.0%}  {t3:5.0%}")


if __name__ == "__main__":
    main()
