"""The features in plain Python: the executable specification.

This is how a Python feed service computes the features: decode every
record, then loop over the items with dicts. It is the parity oracle for the
Go engine and the baseline of the benchmarks, so it favours clarity over
speed, but it must compute exactly what the feature table in
``features/catalogue.go`` defines:

* it takes valid records only (DESIGN.md): every timestamp in unix seconds
  in [0, 2^40], every float finite (``source_score`` too); the Go engine
  refuses the rest with an InputError, so there is nothing to compare there;
* time differences are taken in floating point (``float(now) - float(ts)``);
* sums run in the input order, one ``+=`` at a time (never ``sum()``, whose
  rounding changed in Python 3.12), so they round as the Go code does;
* tokens are maximal runs of letters and decimal digits, lowercased one
  character at a time with Unicode's simple case mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
import numpy as np

__all__ = ["FEATURE_NAMES", "compute", "compute_rows", "tokenize", "decode"]

FEATURE_NAMES = [
    # item
    "item_price", "item_log_price", "item_is_free", "item_log_old_price", "item_price_drop",
    "item_age_hours", "item_log_age_hours", "item_freshness", "item_hours_since_update",
    "item_photos", "item_has_video", "item_log_description_len", "item_title_chars",
    "item_title_tokens", "item_category", "item_subcategory", "item_condition_new",
    "item_vas_level", "item_is_promoted", "item_delivery", "item_seller_rating",
    "item_seller_log_reviews", "item_seller_bayes_rating", "item_seller_log_active_items",
    "item_seller_is_company", "item_log_impressions_7d", "item_log_views_7d",
    "item_log_contacts_7d", "item_log_favorites_7d", "item_log_views_total", "item_ctr_7d",
    "item_contact_rate_7d", "item_favorite_rate_7d", "item_views_per_day",
    # source
    "src_id", "src_score", "src_rank", "src_log_rank", "src_reciprocal_rank",
    # user
    "user_platform", "user_local_hour", "user_local_weekday", "user_log_views", "user_views_24h",
    "user_log_contacts", "user_favorites", "user_interests", "user_interest_entropy",
    "user_median_view_price", "user_log_median_view_price", "user_hours_since_last_view",
    "user_queries", "user_categories_viewed",
    # user x item
    "ux_interest_cat", "ux_interest_subcat", "ux_interest_cat_share", "ux_distance_km",
    "ux_log_distance_km", "ux_same_region", "ux_same_city", "ux_cat_views", "ux_subcat_views",
    "ux_cat_view_share", "ux_hours_since_cat_view", "ux_price_ratio_cat_median",
    "ux_log_price_z_cat", "ux_price_ratio_user_median", "ux_viewed_item", "ux_item_views",
    "ux_seller_views", "ux_contacted_item", "ux_contacted_seller", "ux_favorited",
    "ux_shown_count", "ux_query_token_hits", "ux_query_overlap", "ux_last_query_match",
]

NAN = float("nan")
PLATFORMS = {"web": 0.0, "ios": 1.0, "android": 2.0}
VAS_LEVELS = {"": 0.0, "highlight": 1.0, "x2": 2.0, "x5": 3.0, "xl": 4.0}
CONDITIONS = {"new": 1.0, "used": 0.0}


def decode(record: Any) -> dict:
    """A record as a dict: MessagePack bytes are unpacked, dicts pass."""
    if isinstance(record, (bytes, bytearray, memoryview)):
        return msgpack.unpackb(record, raw=False, strict_map_key=False)
    return record


def _lower(ch: str) -> str:
    low = ch.lower()
    # str.lower() applies full case mapping; only U+0130 maps to two
    # characters ("i" + combining dot). Simple mapping keeps one.
    return low if len(low) == 1 else low[0]


def tokenize(text: str) -> list[str]:
    """Lowercase tokens: maximal runs of letters (L*) and decimal digits (Nd)."""
    tokens = []
    current = []
    for ch in text:
        if ch.isalpha() or ch.isdecimal():
            current.append(_lower(ch))
        elif current:
            tokens.append("".join(current))
            current = []
    if current:
        tokens.append("".join(current))
    return tokens


def _opt(record: dict, key: str) -> Any:
    value = record.get(key)
    return value  # None when absent or nil


def _num(value: Any) -> float:
    return NAN if value is None else float(value)


def _log1p(value: Any) -> float:
    return NAN if value is None else math.log1p(float(value))


def _flag(value: Any) -> float:
    if value is None:
        return NAN
    return 1.0 if value else 0.0


def _median(values: list[float]) -> float:
    if not values:
        return NAN
    s = sorted(values)
    n = len(s)
    if n % 2 == 1:
        return s[n // 2]
    return (s[n // 2 - 1] + s[n // 2]) / 2


def _mean_std_log(values: list[float]) -> tuple[float, float]:
    total = 0.0
    for v in values:
        total += math.log1p(v)
    mean = total / len(values)
    ss = 0.0
    for v in values:
        d = math.log1p(v) - mean
        ss += d * d
    return mean, math.sqrt(ss / len(values))


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    rad = math.pi / 180
    p1, p2 = lat1 * rad, lat2 * rad
    s1 = math.sin((lat2 - lat1) * rad / 2)
    s2 = math.sin((lon2 - lon1) * rad / 2)
    a = s1 * s1 + math.cos(p1) * math.cos(p2) * s2 * s2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def _smoothed(events: Any, exposures: Any, prior: float, strength: float) -> float:
    if events is None or exposures is None:
        return NAN
    return (float(events) + prior * strength) / (float(exposures) + strength)


class _UserState:
    """What the service precomputes once per request from the user context."""

    def __init__(self, user: dict) -> None:
        self.user = user
        self.now = float(user["now"])
        self.row: dict[str, float] = {}
        row = self.row
        row["user_platform"] = PLATFORMS[user["platform"]] if user.get("platform") is not None else NAN

        tz = user.get("tz_offset_min")
        if tz is not None:
            local = user["now"] + 60 * tz
            row["user_local_hour"] = float(local % 86400 // 3600)
            row["user_local_weekday"] = float((local // 86400 + 3) % 7)
        else:
            row["user_local_hour"] = NAN
            row["user_local_weekday"] = NAN

        interests = user.get("interests")
        self.interests = None
        self.interest_sum = 0.0
        if interests is not None:
            self.interests = {int(k): float(v) for k, v in interests.items()}
            n_pos = 0
            for w in self.interests.values():
                self.interest_sum += w
                if w > 0:
                    n_pos += 1
            entropy = 0.0
            if self.interest_sum > 0:
                for w in self.interests.values():
                    p = w / self.interest_sum
                    if p > 0:  # a subnormal weight can underflow to 0: p ln p -> 0
                        entropy -= p * math.log(p)
            row["user_interests"] = float(n_pos)
            row["user_interest_entropy"] = entropy
        else:
            row["user_interests"] = NAN
            row["user_interest_entropy"] = NAN
        sub = user.get("sub_interests")
        self.sub_interests = None if sub is None else {int(k): float(v) for k, v in sub.items()}

        views = user.get("views")
        self.has_views = views is not None
        self.median_price = NAN
        self.item_views: dict[int, int] = {}
        self.subcat_views: dict[int, int] = {}
        self.seller_views: dict[int, int] = {}
        self.cat_views: dict[int, int] = {}
        self.cat_last_ts: dict[int, int] = {}
        self.cat_prices: dict[int, list[float]] = {}
        self.cat_median: dict[int, float] = {}
        self.cat_mean_std: dict[int, tuple[float, float]] = {}
        if views is not None:
            self.n_views = len(views)
            views_24h = 0
            prices = []
            last_ts: Any = None
            for item_id, ts, cat, subcat, price, seller in views:
                self.item_views[item_id] = self.item_views.get(item_id, 0) + 1
                self.subcat_views[subcat] = self.subcat_views.get(subcat, 0) + 1
                self.seller_views[seller] = self.seller_views.get(seller, 0) + 1
                self.cat_views[cat] = self.cat_views.get(cat, 0) + 1
                self.cat_last_ts[cat] = max(self.cat_last_ts.get(cat, ts), ts)
                self.cat_prices.setdefault(cat, []).append(float(price))
                age = self.now - float(ts)
                if 0 <= age <= 86400:
                    views_24h += 1
                prices.append(float(price))
                last_ts = ts if last_ts is None else max(last_ts, ts)
            for cat, cat_prices in self.cat_prices.items():
                self.cat_median[cat] = _median(cat_prices)
                self.cat_mean_std[cat] = _mean_std_log(cat_prices)
            row["user_log_views"] = math.log1p(len(views))
            row["user_views_24h"] = float(views_24h)
            row["user_categories_viewed"] = float(len(self.cat_views))
            if views:
                self.median_price = _median(prices)
                row["user_hours_since_last_view"] = max(self.now - float(last_ts), 0.0) / 3600
            else:
                row["user_hours_since_last_view"] = NAN
        else:
            for key in ("user_log_views", "user_views_24h", "user_categories_viewed", "user_hours_since_last_view"):
                row[key] = NAN
        row["user_median_view_price"] = self.median_price
        row["user_log_median_view_price"] = math.log1p(self.median_price)

        contacts = user.get("contacts")
        self.contact_items = None
        self.contact_sellers = None
        if contacts is not None:
            self.contact_items = {c[0] for c in contacts}
            self.contact_sellers = {c[2] for c in contacts}
            row["user_log_contacts"] = math.log1p(len(contacts))
        else:
            row["user_log_contacts"] = NAN
        favorites = user.get("favorites")
        self.favorites = None if favorites is None else set(favorites)
        row["user_favorites"] = NAN if favorites is None else float(len(favorites))
        impressions = user.get("impressions")
        self.impressions = None if impressions is None else {int(k): v for k, v in impressions.items()}

        queries = user.get("queries")
        self.query_tokens = None
        self.last_query_tokens: set[str] = set()
        if queries is not None:
            self.query_tokens = set()
            for i, q in enumerate(queries):
                toks = tokenize(q)
                self.query_tokens.update(toks)
                if i == 0:
                    self.last_query_tokens = set(toks)
            row["user_queries"] = float(len(queries))
        else:
            row["user_queries"] = NAN


def _item_row(s: _UserState, item: dict, pos: int, candidates: Mapping[str, Any] | None) -> dict[str, float]:
    u = s.user
    f: dict[str, float] = {}
    price = float(item["price"])
    f["item_price"] = price
    f["item_log_price"] = math.log1p(price)
    f["item_is_free"] = 1.0 if price == 0 else 0.0
    old_price = item.get("old_price")
    f["item_log_old_price"] = _log1p(old_price)
    f["item_price_drop"] = (float(old_price) - price) / float(old_price) if old_price is not None and old_price > 0 else NAN
    age = max(s.now - float(item["created_at"]), 0.0) / 3600
    f["item_age_hours"] = age
    f["item_log_age_hours"] = math.log1p(age)
    f["item_freshness"] = math.exp(-age / 72.0)
    updated = item.get("updated_at")
    f["item_hours_since_update"] = NAN if updated is None else max(s.now - float(updated), 0.0) / 3600
    f["item_photos"] = _num(item.get("photos"))
    f["item_has_video"] = _flag(item.get("has_video"))
    f["item_log_description_len"] = _log1p(item.get("description_len"))
    title = item["title"]
    title_tokens = tokenize(title)
    f["item_title_chars"] = float(len(title))
    f["item_title_tokens"] = float(len(title_tokens))
    f["item_category"] = float(item["category"])
    f["item_subcategory"] = float(item["subcategory"])
    cond = item.get("condition")
    f["item_condition_new"] = NAN if cond is None else CONDITIONS[cond]
    vas = item.get("vas")
    f["item_vas_level"] = NAN if vas is None else VAS_LEVELS[vas]
    f["item_is_promoted"] = NAN if vas is None else (1.0 if VAS_LEVELS[vas] > 0 else 0.0)
    f["item_delivery"] = _flag(item.get("delivery"))
    rating = item.get("seller_rating")
    reviews = item.get("seller_reviews")
    f["item_seller_rating"] = _num(rating)
    f["item_seller_log_reviews"] = _log1p(reviews)
    if rating is not None and reviews is not None:
        f["item_seller_bayes_rating"] = (float(rating) * float(reviews) + 4.0 * 5.0) / (float(reviews) + 5.0)
    else:
        f["item_seller_bayes_rating"] = NAN
    f["item_seller_log_active_items"] = _log1p(item.get("seller_active_items"))
    f["item_seller_is_company"] = _flag(item.get("seller_is_company"))
    imps = item.get("impressions_7d")
    views = item.get("views_7d")
    contacts = item.get("contacts_7d")
    favs = item.get("favorites_7d")
    views_total = item.get("views_total")
    f["item_log_impressions_7d"] = _log1p(imps)
    f["item_log_views_7d"] = _log1p(views)
    f["item_log_contacts_7d"] = _log1p(contacts)
    f["item_log_favorites_7d"] = _log1p(favs)
    f["item_log_views_total"] = _log1p(views_total)
    f["item_ctr_7d"] = _smoothed(views, imps, 0.05, 20.0)
    f["item_contact_rate_7d"] = _smoothed(contacts, views, 0.02, 10.0)
    f["item_favorite_rate_7d"] = _smoothed(favs, views, 0.03, 10.0)
    f["item_views_per_day"] = NAN if views_total is None else float(views_total) / max(age / 24, 1.0)

    source = score = rank = None
    if candidates is not None:
        if candidates.get("source") is not None:
            source = int(candidates["source"][pos])
        if candidates.get("source_score") is not None:
            score = float(candidates["source_score"][pos])
        if candidates.get("source_rank") is not None:
            rank = int(candidates["source_rank"][pos])
    f["src_id"] = _num(source)
    f["src_score"] = _num(score)
    f["src_rank"] = _num(rank)
    f["src_log_rank"] = _log1p(rank)
    f["src_reciprocal_rank"] = NAN if rank is None else 1.0 / (rank + 1.0)

    f.update(s.row)

    cat, subcat = item["category"], item["subcategory"]
    if s.interests is not None:
        w = s.interests.get(cat, 0.0)
        f["ux_interest_cat"] = w
        f["ux_interest_cat_share"] = w / s.interest_sum if s.interest_sum > 0 else 0.0
    else:
        f["ux_interest_cat"] = NAN
        f["ux_interest_cat_share"] = NAN
    f["ux_interest_subcat"] = NAN if s.sub_interests is None else s.sub_interests.get(subcat, 0.0)

    ulat, ulon, ilat, ilon = u.get("lat"), u.get("lon"), item.get("lat"), item.get("lon")
    if ulat is None or ulon is None or ilat is None or ilon is None:
        dist = NAN
    else:
        dist = _haversine_km(float(ulat), float(ulon), float(ilat), float(ilon))
    f["ux_distance_km"] = dist
    f["ux_log_distance_km"] = math.log1p(dist)
    f["ux_same_region"] = NAN if u.get("region") is None else (1.0 if u["region"] == item["region"] else 0.0)
    ucity, icity = u.get("city"), item.get("city")
    f["ux_same_city"] = NAN if ucity is None or icity is None else (1.0 if ucity == icity else 0.0)

    if s.has_views:
        n_cat = s.cat_views.get(cat, 0)
        f["ux_cat_views"] = float(n_cat)
        if n_cat:
            f["ux_cat_view_share"] = n_cat / s.n_views
            f["ux_hours_since_cat_view"] = max(s.now - float(s.cat_last_ts[cat]), 0.0) / 3600
            med = s.cat_median[cat]
            f["ux_price_ratio_cat_median"] = price / med if med > 0 else NAN
            mean, std = s.cat_mean_std[cat]
            f["ux_log_price_z_cat"] = (math.log1p(price) - mean) / (std + 0.1)
        else:
            f["ux_cat_view_share"] = 0.0
            f["ux_hours_since_cat_view"] = NAN
            f["ux_price_ratio_cat_median"] = NAN
            f["ux_log_price_z_cat"] = NAN
        f["ux_subcat_views"] = float(s.subcat_views.get(subcat, 0))
        n_item = s.item_views.get(item["id"], 0)
        f["ux_viewed_item"] = 1.0 if n_item > 0 else 0.0
        f["ux_item_views"] = float(n_item)
        f["ux_seller_views"] = float(s.seller_views.get(item["seller_id"], 0))
    else:
        for key in ("ux_cat_views", "ux_cat_view_share", "ux_hours_since_cat_view", "ux_price_ratio_cat_median",
                    "ux_log_price_z_cat", "ux_subcat_views", "ux_viewed_item", "ux_item_views", "ux_seller_views"):
            f[key] = NAN
    f["ux_price_ratio_user_median"] = price / s.median_price if s.median_price > 0 else NAN
    f["ux_contacted_item"] = NAN if s.contact_items is None else (1.0 if item["id"] in s.contact_items else 0.0)
    f["ux_contacted_seller"] = (
        NAN if s.contact_sellers is None else (1.0 if item["seller_id"] in s.contact_sellers else 0.0)
    )
    f["ux_favorited"] = NAN if s.favorites is None else (1.0 if item["id"] in s.favorites else 0.0)
    f["ux_shown_count"] = NAN if s.impressions is None else float(s.impressions.get(item["id"], 0))
    if s.query_tokens is not None:
        distinct = set(title_tokens)
        hits = sum(1 for t in distinct if t in s.query_tokens)
        f["ux_query_token_hits"] = float(hits)
        f["ux_query_overlap"] = hits / len(distinct) if distinct else 0.0
        f["ux_last_query_match"] = 1.0 if distinct & s.last_query_tokens else 0.0
    else:
        f["ux_query_token_hits"] = NAN
        f["ux_query_overlap"] = NAN
        f["ux_last_query_match"] = NAN
    return f


def compute_rows(user: Any, items: Sequence[Any], candidates: Mapping[str, Any] | None = None) -> list[dict[str, float]]:
    """Features of every item as a list of dicts (name -> float64 value)."""
    state = _UserState(decode(user))
    return [_item_row(state, decode(item), pos, candidates) for pos, item in enumerate(items)]


def compute(user: Any, items: Sequence[Any], candidates: Mapping[str, Any] | None = None) -> np.ndarray:
    """The feature matrix, float32, shape (len(items), len(FEATURE_NAMES)).

    ``user`` and ``items`` are MessagePack bytes or dicts, like
    ``pyfeat.FeatureEngine.compute``.
    """
    rows = compute_rows(user, items, candidates)
    out = np.empty((len(rows), len(FEATURE_NAMES)), dtype=np.float32)
    for i, row in enumerate(rows):
        out[i] = [row[name] for name in FEATURE_NAMES]
    return out
