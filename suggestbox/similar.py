"""Similar cases for Chinese text (issue 16, item 4).

Workers write the same workshop problem differently: dialect (咋整, 啥时候, 贼冷), other words for
the same thing (饭堂/食堂, 浴室/澡堂, 头盔/安全帽), typos (刑号 for 型号), two words or a long
paragraph. This module finds, for a new text, the most similar existing cases.

Method (measured on ``tests/data/similar_pairs.json``, see README "Similar cases"):

1. normalise: NFKC (full-width letters and digits become ASCII), lower case, a small table of
   workshop synonyms, dialect words and common typos rewritten to one form, then everything that
   is not a letter or a digit removed (punctuation, spaces, emoji);
2. features: every CJK character is a unit, a run of ASCII letters or digits is one unit
   (``wifi``, ``45``); the features are the units (unigrams) and adjacent pairs (bigrams);
3. TF-IDF weighted cosine over the candidate texts, computed in Python: the same result on
   SQLite and PostgreSQL, no extension, no dependency, no word segmenter.

``rank`` is pure; ``similar_cases`` loads the candidates from the database.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tortoise.expressions import Q

from .cases import BOARD_STATUSES, OPEN_STATUSES
from .models import Case

K = TypeVar("K", bound=Hashable)

# How many of the most recent cases (by received_on) ``similar_cases`` compares against. The
# ranking is done in Python, so the load is bounded: ranking 5,000 texts of about 60 characters
# takes about 0.4 s on the 2-core test machine (0.17 s for 20-character texts), loading excluded.
CANDIDATE_LIMIT = 5000
# Below this cosine a candidate shares little more than a character or two with the text (食堂
# for 澡堂): not shown. On the test set every true duplicate scored at least 0.12, while 90 % of
# the unrelated candidates scored below 0.07.
MIN_SCORE = 0.1


# Workshop words written several ways, dialect and typos → one form. Applied after NFKC and
# lower-casing, longest match first, in one pass (a replacement is never rewritten again).
SYNONYMS: dict[str, str] = {
    # places and things
    "饭堂": "食堂", "餐厅": "食堂", "伙房": "食堂",
    "浴室": "澡堂", "洗澡间": "澡堂", "澡房": "澡堂",
    "更衣箱": "更衣柜", "衣柜": "更衣柜", "更衣柜": "更衣柜",
    "头盔": "安全帽", "钢盔": "安全帽",
    "力矩扳手": "扭力扳手",
    "电瓶车": "电动车", "电驴": "电动车",
    "工装": "工作服",
    "棉袄": "防寒服", "棉衣": "防寒服", "棉大衣": "防寒服",
    "待班室": "休息室", "候班室": "休息室",
    "抽水泵": "排水泵", "水泵": "排水泵", "排水泵": "排水泵",
    "班表": "排班表", "排班表": "排班表",
    "夜班费": "夜班补贴", "夜班补助": "夜班补贴", "补助": "补贴",
    "wifi": "无线网络", "wi-fi": "无线网络", "无线网": "无线网络", "无线网络": "无线网络",
    "休班": "休息",
    "块钱": "元", "块": "元",
    # dialect and speech
    "咋整": "怎么办", "咋办": "怎么办", "咋": "怎么",
    "啥时候": "什么时候", "啥": "什么",
    "整不明白": "弄不明白", "整不懂": "弄不明白", "搞不明白": "弄不明白",
    "贼冷": "很冷", "贼热": "很热", "贼累": "很累", "贼多": "很多", "贼贵": "很贵",
    "齁咸": "太咸",
    "老是": "总是",
    # typos seen in the box
    "刑号": "型号", "空凋": "空调", "安全貌": "安全帽", "劳宝": "劳保", "加斑": "加班",
}

_SYNONYM_RE = re.compile("|".join(re.escape(k) for k in sorted(SYNONYMS, key=len, reverse=True)))
# A unit: one CJK character (any letter that is not ASCII), or a run of ASCII letters or digits.
_UNIT_RE = re.compile(r"[a-z0-9]+|[^\W\d_a-z]|\d", re.UNICODE)


@dataclass(frozen=True)
class Variant:
    """One way of turning text into weighted features (the README compares several)."""

    name: str
    ngrams: tuple[int, ...] = (1, 2)
    idf: bool = True
    synonyms: bool = True


BIGRAMS_TF = Variant("bigrams, TF only", ngrams=(2,), idf=False, synonyms=False)
BIGRAMS_IDF = Variant("bigrams, TF-IDF", ngrams=(2,), idf=True, synonyms=False)
UNI_BI_IDF = Variant("uni+bigrams, TF-IDF", ngrams=(1, 2), idf=True, synonyms=False)
UNI_BI_IDF_SYN = Variant("uni+bigrams, TF-IDF, synonym table", ngrams=(1, 2), idf=True,
                         synonyms=True)
VARIANTS = (BIGRAMS_TF, BIGRAMS_IDF, UNI_BI_IDF, UNI_BI_IDF_SYN)
DEFAULT = UNI_BI_IDF_SYN


def normalise(text: str, synonyms: bool = True) -> str:
    """NFKC, lower case, the synonym table, then letters and digits only."""
    return "".join(units(text, synonyms))


def units(text: str, synonyms: bool = True) -> list[str]:
    """The normalised text as units: a CJK character, or a run of ASCII letters or digits."""
    text = unicodedata.normalize("NFKC", text).lower()
    if synonyms:
        text = _SYNONYM_RE.sub(lambda m: SYNONYMS[m.group(0)], text)
    return _UNIT_RE.findall(text)


def features(text: str, variant: Variant = DEFAULT) -> Counter[str]:
    """Term counts of the text's n-grams of units (n in ``variant.ngrams``)."""
    u = units(text, variant.synonyms)
    found: Counter[str] = Counter()
    for n in variant.ngrams:
        if n == 1:
            found.update(u)
        else:
            found.update("".join(u[i:i + n]) for i in range(len(u) - n + 1))
    if not found and u:  # one unit and no unigrams wanted: keep it rather than nothing
        found.update(u)
    return found


def rank(text: str, candidates: Sequence[tuple[K, str]], top: int = 5,
         variant: Variant = DEFAULT, min_score: float = MIN_SCORE) -> list[tuple[K, float]]:
    """The ``top`` candidates most similar to ``text``, best first, as (key, score) with a
    cosine score in [min_score, 1] (rounded to 4 places); candidates below ``min_score`` are
    left out (0 keeps everything sharing a feature). Ties keep the candidates' order. IDF is
    computed over the candidates (smoothed: ln((N+1)/(df+1)) + 1)."""
    if top <= 0 or not candidates:
        return []
    query = features(text, variant)
    if not query:
        return []
    docs = [features(body, variant) for _, body in candidates]
    n = len(docs)
    idf: dict[str, float] = {}
    if variant.idf:
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d.keys())
        idf = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}
        unseen = math.log(n + 1) + 1.0
        q = {t: c * idf.get(t, unseen) for t, c in query.items()}
    else:
        q = {t: float(c) for t, c in query.items()}
    q_norm = math.sqrt(sum(v * v for v in q.values()))
    scored: list[tuple[float, int]] = []
    for i, d in enumerate(docs):
        if variant.idf:
            dot = sum(d[t] * idf[t] * w for t, w in q.items() if t in d)
            if dot <= 0:
                continue
            d_norm = math.sqrt(sum((c * idf[t]) ** 2 for t, c in d.items()))
        else:
            dot = sum(d[t] * w for t, w in q.items() if t in d)
            if dot <= 0:
                continue
            d_norm = math.sqrt(sum(c * c for c in d.values()))
        score = dot / (q_norm * d_norm)
        if score >= min_score:
            scored.append((score, i))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [(candidates[i][0], round(score, 4)) for score, i in scored[:top]]


@dataclass(frozen=True)
class Match:
    case: Case
    number: str  # Case.number: the 8-character reference staff see
    score: float
    # What was compared: the body for staff, the board's public summary for workers.
    text: str


async def similar_cases(text: str, *, unit_ids: Sequence[int] | None, top: int = 5,
                        include_published: bool = True, for_workers: bool = False,
                        exclude: Sequence[object] = (), limit: int = CANDIDATE_LIMIT,
                        min_score: float = MIN_SCORE) -> list[Match]:
    """The cases of ``unit_ids`` (None: every unit) most similar to ``text``, best first.

    Candidates for staff: open cases (new, accepted, in progress) and, with
    ``include_published``, published cases, compared by their body. ``for_workers``: only what
    the public board shows (published 征集意见, answered or closed, with a summary), compared by and
    returned with the public summary, never the body (``Match.case`` is still the whole row:
    a page for workers renders ``Match.text`` and the board's fields only). ``exclude``: case
    ids to leave out (the case being looked at).

    Bounded: only the ``limit`` most recently received candidates (default 5,000; ties in
    the day broken by the random id, so no order of submissions is implied) are compared."""
    if top <= 0 or not text.strip():
        return []
    qs = Case.all() if unit_ids is None else Case.filter(unit_id__in=list(unit_ids))
    if for_workers:
        qs = qs.filter(published=True, status__in=list(BOARD_STATUSES),
                       public_summary__not_isnull=True)
    elif include_published:
        qs = qs.filter(Q(status__in=list(OPEN_STATUSES)) | Q(published=True))
    else:
        qs = qs.filter(status__in=list(OPEN_STATUSES))
    if exclude:
        qs = qs.exclude(id__in=list(exclude))
    rows = await qs.order_by("-received_on", "id").limit(limit)
    by_id = {c.id: c for c in rows}

    def shown(c: Case) -> str:
        return (c.public_summary or "") if for_workers else c.body

    ranked = rank(text, [(c.id, shown(c)) for c in rows if shown(c).strip()], top,
                  min_score=min_score)
    return [Match(by_id[k], by_id[k].number, score, shown(by_id[k])) for k, score in ranked]
