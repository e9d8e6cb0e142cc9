// Decoding (msgpack-cxx) and the feature computation.
//
// Every formula mirrors pyfeat/reference.py line for line: time differences
// in double (now - ts), sums in input order one += at a time, the same
// operand order in products, so that the double results round as the
// reference's do before the final cast to float32.

#include "features.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "tokenize.hpp"

namespace peer {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMaxDouble = std::numeric_limits<double>::max();
constexpr double kPi = 3.141592653589793;  // math.pi

// Smoothing priors and constants of the catalogue.
constexpr double kCtrPrior = 0.05, kCtrStrength = 20.0;
constexpr double kContactPrior = 0.02, kContactStrength = 10.0;
constexpr double kFavoritePrior = 0.03, kFavoriteStrength = 10.0;
constexpr double kSellerRatingPrior = 4.0, kSellerStrength = 5.0;
constexpr double kFreshnessHours = 72.0;
constexpr double kEarthRadiusKm = 6371.0;
constexpr double kZScoreEpsilon = 0.1;
constexpr std::int64_t kMaxNow = std::int64_t{1} << 40;

// Items are claimed in chunks: large enough that the shared counter is
// cheap, small enough to balance ~3000 items over a few cores.
constexpr std::size_t kChunk = 64;

using Obj = msgpack::object;
namespace mt = msgpack::type;

// ---------------------------------------------------------------------------
// MessagePack access with the type rules of DESIGN.md: ints wherever an int
// is required (a float is refused), ints or floats wherever a number is.
// ---------------------------------------------------------------------------

[[noreturn]] void fail(std::int64_t pos, std::string_view key, const std::string& msg) {
    throw InputError(pos, std::string(key), msg);
}

const char* type_name(const Obj& o) {
    switch (o.type) {
        case mt::NIL: return "nil";
        case mt::BOOLEAN: return "bool";
        case mt::POSITIVE_INTEGER:
        case mt::NEGATIVE_INTEGER: return "int";
        case mt::FLOAT32:
        case mt::FLOAT64: return "float";
        case mt::STR: return "str";
        case mt::BIN: return "bin";
        case mt::ARRAY: return "array";
        case mt::MAP: return "map";
        case mt::EXT: return "ext";
    }
    return "unknown";
}

[[noreturn]] void wrong_type(const Obj& o, std::int64_t pos, std::string_view key, const char* want) {
    fail(pos, key, std::string("expected ") + want + ", got " + type_name(o));
}

std::int64_t get_int(const Obj& o, std::int64_t pos, std::string_view key) {
    if (o.type == mt::POSITIVE_INTEGER) {
        if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            fail(pos, key, "integer out of int64 range");
        return static_cast<std::int64_t>(o.via.u64);
    }
    if (o.type == mt::NEGATIVE_INTEGER) return o.via.i64;
    wrong_type(o, pos, key, "int");
}

std::int64_t get_count(const Obj& o, std::int64_t pos, std::string_view key) {
    const std::int64_t v = get_int(o, pos, key);
    if (v < 0) fail(pos, key, "must be >= 0, got " + std::to_string(v));
    return v;
}

double get_number(const Obj& o, std::int64_t pos, std::string_view key) {
    switch (o.type) {
        case mt::POSITIVE_INTEGER: return static_cast<double>(o.via.u64);
        case mt::NEGATIVE_INTEGER: return static_cast<double>(o.via.i64);
        case mt::FLOAT32:
        case mt::FLOAT64: return o.via.f64;
        default: wrong_type(o, pos, key, "a number");
    }
}

// A finite number within [lo, hi].
double get_finite(const Obj& o, std::int64_t pos, std::string_view key, double lo, double hi) {
    const double v = get_number(o, pos, key);
    if (!std::isfinite(v)) fail(pos, key, "must be a finite number");
    if (v < lo || v > hi) fail(pos, key, "out of range: " + std::to_string(v));
    return v;
}

bool get_bool(const Obj& o, std::int64_t pos, std::string_view key) {
    if (o.type != mt::BOOLEAN) wrong_type(o, pos, key, "bool");
    return o.via.boolean;
}

std::string_view get_str(const Obj& o, std::int64_t pos, std::string_view key) {
    if (o.type != mt::STR) wrong_type(o, pos, key, "str");
    return std::string_view(o.via.str.ptr, o.via.str.size);
}

const Obj& get_map(const Obj& o, std::int64_t pos, std::string_view key) {
    if (o.type != mt::MAP) wrong_type(o, pos, key, "map");
    return o;
}

const Obj& get_array(const Obj& o, std::int64_t pos, std::string_view key) {
    if (o.type != mt::ARRAY) wrong_type(o, pos, key, "array");
    return o;
}

// Strings (and bins) point into the caller's buffer instead of being copied
// into the zone: the buffer outlives the decoded object.
bool reference_buffer(mt::object_type, std::size_t, void*) { return true; }

// Container sizes are bounded by what the buffer can hold (one byte per
// element at least), so a header claiming 4 billion entries cannot make the
// decoder allocate; nesting deeper than any record needs is refused.
msgpack::unpack_limit limits_for(std::size_t len) {
    const std::size_t n = std::max<std::size_t>(len, 1);
    return msgpack::unpack_limit(n, n / 2 + 1, n, n, n, 64);
}

// Decodes one record into zone; the whole buffer must be exactly one object.
Obj decode_record(msgpack::zone& zone, std::string_view data, std::int64_t pos) {
    std::size_t off = 0;
    Obj obj;
    try {
        obj = msgpack::unpack(zone, data.data(), data.size(), off, reference_buffer, nullptr, limits_for(data.size()));
    } catch (const msgpack::insufficient_bytes&) {
        fail(pos, "", "truncated MessagePack");
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        fail(pos, "", std::string("malformed MessagePack: ") + e.what());
    }
    if (off != data.size()) fail(pos, "", std::to_string(data.size() - off) + " trailing bytes after the record");
    if (obj.type != mt::MAP) fail(pos, "", std::string("record is not a map: got ") + type_name(obj));
    return obj;
}

std::string_view key_of(const msgpack::object_kv& kv, std::int64_t pos) {
    if (kv.key.type != mt::STR) fail(pos, "", std::string("map key must be str, got ") + type_name(kv.key));
    return std::string_view(kv.key.via.str.ptr, kv.key.via.str.size);
}

// ---------------------------------------------------------------------------
// Item record
// ---------------------------------------------------------------------------

// One decoded item. Optional numbers hold NaN when the key is absent or nil;
// optional ids carry a flag. title points into the caller's buffer.
struct Item {
    std::int64_t id = 0, category = 0, subcategory = 0, created_at = 0, seller_id = 0, region = 0;
    double price = 0;
    std::string_view title;

    double old_price, description_len, lat, lon, seller_rating, seller_reviews, seller_active_items,
        seller_is_company, photos, has_video, delivery, condition, vas, impressions_7d, views_7d, contacts_7d,
        favorites_7d, views_total;
    std::int64_t city = 0, updated_at = 0;
    bool has_city = false, has_updated_at = false;

    void reset() { *this = Item{}; }
    Item()
        : old_price(kNaN), description_len(kNaN), lat(kNaN), lon(kNaN), seller_rating(kNaN), seller_reviews(kNaN),
          seller_active_items(kNaN), seller_is_company(kNaN), photos(kNaN), has_video(kNaN), delivery(kNaN),
          condition(kNaN), vas(kNaN), impressions_7d(kNaN), views_7d(kNaN), contacts_7d(kNaN), favorites_7d(kNaN),
          views_total(kNaN) {}
};

enum class ItemKey {
    // required (bit i of the "seen" mask)
    kId, kTitle, kCategory, kSubcategory, kPrice, kCreatedAt, kSellerId, kRegion,
    // optional
    kOldPrice, kDescriptionLen, kCity, kLat, kLon, kUpdatedAt, kSellerRating, kSellerReviews,
    kSellerActiveItems, kSellerIsCompany, kPhotos, kHasVideo, kDelivery, kCondition, kVas,
    kImpressions7d, kViews7d, kContacts7d, kFavorites7d, kViewsTotal,
};
constexpr int kNumRequiredItemKeys = 8;
constexpr unsigned kAllRequired = (1u << kNumRequiredItemKeys) - 1;
constexpr const char* kRequiredItemNames[kNumRequiredItemKeys] = {
    "id", "title", "category", "subcategory", "price", "created_at", "seller_id", "region"};

const std::unordered_map<std::string_view, ItemKey>& item_keys() {
    static const std::unordered_map<std::string_view, ItemKey> keys = {
        {"id", ItemKey::kId},
        {"title", ItemKey::kTitle},
        {"category", ItemKey::kCategory},
        {"subcategory", ItemKey::kSubcategory},
        {"price", ItemKey::kPrice},
        {"created_at", ItemKey::kCreatedAt},
        {"seller_id", ItemKey::kSellerId},
        {"region", ItemKey::kRegion},
        {"old_price", ItemKey::kOldPrice},
        {"description_len", ItemKey::kDescriptionLen},
        {"city", ItemKey::kCity},
        {"lat", ItemKey::kLat},
        {"lon", ItemKey::kLon},
        {"updated_at", ItemKey::kUpdatedAt},
        {"seller_rating", ItemKey::kSellerRating},
        {"seller_reviews", ItemKey::kSellerReviews},
        {"seller_active_items", ItemKey::kSellerActiveItems},
        {"seller_is_company", ItemKey::kSellerIsCompany},
        {"photos", ItemKey::kPhotos},
        {"has_video", ItemKey::kHasVideo},
        {"delivery", ItemKey::kDelivery},
        {"condition", ItemKey::kCondition},
        {"vas", ItemKey::kVas},
        {"impressions_7d", ItemKey::kImpressions7d},
        {"views_7d", ItemKey::kViews7d},
        {"contacts_7d", ItemKey::kContacts7d},
        {"favorites_7d", ItemKey::kFavorites7d},
        {"views_total", ItemKey::kViewsTotal},
    };
    return keys;
}

double vas_level(std::string_view s, std::int64_t pos) {
    if (s.empty()) return 0;
    if (s == "highlight") return 1;
    if (s == "x2") return 2;
    if (s == "x5") return 3;
    if (s == "xl") return 4;
    fail(pos, "vas", "must be one of \"\", \"highlight\", \"x2\", \"x5\", \"xl\"");
}

double condition_value(std::string_view s, std::int64_t pos) {
    if (s == "new") return 1;
    if (s == "used") return 0;
    fail(pos, "condition", "must be \"new\" or \"used\"");
}

// Decodes the item record `root` (a map) into it. A key given twice keeps
// its last value, a nil optional value makes the key absent, as a Python
// dict decoded from the same bytes would.
void decode_item(const Obj& root, std::int64_t pos, Item& it) {
    it.reset();
    const auto& keys = item_keys();
    unsigned seen = 0;
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
        const msgpack::object_kv& kv = root.via.map.ptr[i];
        const std::string_view k = key_of(kv, pos);
        const auto found = keys.find(k);
        if (found == keys.end()) continue;  // unknown keys are ignored
        const ItemKey key = found->second;
        const Obj& v = kv.val;
        const bool nil = v.type == mt::NIL;
        const int idx = static_cast<int>(key);
        if (idx < kNumRequiredItemKeys) {
            if (nil) fail(pos, k, "required key is nil");
            seen |= 1u << idx;
        }
        switch (key) {
            case ItemKey::kId: it.id = get_int(v, pos, k); break;
            case ItemKey::kTitle: it.title = get_str(v, pos, k); break;
            case ItemKey::kCategory: it.category = get_int(v, pos, k); break;
            case ItemKey::kSubcategory: it.subcategory = get_int(v, pos, k); break;
            case ItemKey::kPrice: it.price = get_finite(v, pos, k, 0, kMaxDouble); break;
            case ItemKey::kCreatedAt: it.created_at = get_int(v, pos, k); break;
            case ItemKey::kSellerId: it.seller_id = get_int(v, pos, k); break;
            case ItemKey::kRegion: it.region = get_int(v, pos, k); break;
            case ItemKey::kOldPrice: it.old_price = nil ? kNaN : get_finite(v, pos, k, 0, kMaxDouble); break;
            case ItemKey::kDescriptionLen:
                it.description_len = nil ? kNaN : static_cast<double>(get_count(v, pos, k));
                break;
            case ItemKey::kCity:
                it.has_city = !nil;
                it.city = nil ? 0 : get_int(v, pos, k);
                break;
            case ItemKey::kLat: it.lat = nil ? kNaN : get_finite(v, pos, k, -90, 90); break;
            case ItemKey::kLon: it.lon = nil ? kNaN : get_finite(v, pos, k, -180, 180); break;
            case ItemKey::kUpdatedAt:
                it.has_updated_at = !nil;
                it.updated_at = nil ? 0 : get_int(v, pos, k);
                break;
            case ItemKey::kSellerRating: it.seller_rating = nil ? kNaN : get_finite(v, pos, k, 0, 5); break;
            case ItemKey::kSellerReviews:
                it.seller_reviews = nil ? kNaN : static_cast<double>(get_count(v, pos, k));
                break;
            case ItemKey::kSellerActiveItems:
                it.seller_active_items = nil ? kNaN : static_cast<double>(get_count(v, pos, k));
                break;
            case ItemKey::kSellerIsCompany: it.seller_is_company = nil ? kNaN : get_bool(v, pos, k); break;
            case ItemKey::kPhotos: it.photos = nil ? kNaN : static_cast<double>(get_count(v, pos, k)); break;
            case ItemKey::kHasVideo: it.has_video = nil ? kNaN : get_bool(v, pos, k); break;
            case ItemKey::kDelivery: it.delivery = nil ? kNaN : get_bool(v, pos, k); break;
            case ItemKey::kCondition: it.condition = nil ? kNaN : condition_value(get_str(v, pos, k), pos); break;
            case ItemKey::kVas: it.vas = nil ? kNaN : vas_level(get_str(v, pos, k), pos); break;
            case ItemKey::kImpressions7d:
                it.impressions_7d = nil ? kNaN : static_cast<double>(get_count(v, pos, k));
                break;
            case ItemKey::kViews7d: it.views_7d = nil ? kNaN : static_cast<double>(get_count(v, pos, k)); break;
            case ItemKey::kContacts7d:
                it.contacts_7d = nil ? kNaN : static_cast<double>(get_count(v, pos, k));
                break;
            case ItemKey::kFavorites7d:
                it.favorites_7d = nil ? kNaN : static_cast<double>(get_count(v, pos, k));
                break;
            case ItemKey::kViewsTotal:
                it.views_total = nil ? kNaN : static_cast<double>(get_count(v, pos, k));
                break;
        }
    }
    if (seen != kAllRequired) {
        for (int i = 0; i < kNumRequiredItemKeys; ++i)
            if (!(seen & (1u << i))) fail(pos, kRequiredItemNames[i], "required key is missing");
    }
}

// ---------------------------------------------------------------------------
// User context -> per-request state
// ---------------------------------------------------------------------------

struct CatStats {
    std::int64_t views = 0;
    std::int64_t last_ts = std::numeric_limits<std::int64_t>::min();
    double median = kNaN;
    double mean_log = kNaN;  // of log1p(view price)
    double std_log = kNaN;   // population std of log1p(view price)
    std::vector<double> prices;  // view prices in input order; freed once summarised
};

double median(std::vector<double> xs) {
    const std::size_t n = xs.size();
    if (n == 0) return kNaN;
    std::sort(xs.begin(), xs.end());
    if (n % 2 == 1) return xs[n / 2];
    return (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

// Two passes, in input order, as the reference sums.
std::pair<double, double> mean_std_log(const std::vector<double>& xs) {
    double total = 0.0;
    for (double x : xs) total += std::log1p(x);
    const double mean = total / static_cast<double>(xs.size());
    double ss = 0.0;
    for (double x : xs) {
        const double d = std::log1p(x) - mean;
        ss += d * d;
    }
    return {mean, std::sqrt(ss / static_cast<double>(xs.size()))};
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    std::int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

std::int64_t floor_mod(std::int64_t a, std::int64_t b) { return a - floor_div(a, b) * b; }

// The per-request state, built once from the user context and then shared
// read-only by the workers.
struct Request {
    double now = 0;
    float user_row[kNumFeatures];  // the user-group columns; other entries unused

    bool has_region = false, has_city = false;
    std::int64_t region = 0, city = 0;
    double lat = kNaN, lon = kNaN;

    bool has_interests = false;
    std::unordered_map<std::int64_t, double> interests;
    double interest_sum = 0.0;
    bool has_sub_interests = false;
    std::unordered_map<std::int64_t, double> sub_interests;

    bool has_views = false;
    double n_views = 0;
    std::unordered_map<std::int64_t, std::int64_t> item_views, subcat_views, seller_views;
    std::unordered_map<std::int64_t, CatStats> cats;
    double median_price = kNaN;

    bool has_contacts = false;
    std::unordered_set<std::int64_t> contact_items, contact_sellers;
    bool has_favorites = false;
    std::unordered_set<std::int64_t> favorites;
    bool has_impressions = false;
    std::unordered_map<std::int64_t, std::int64_t> impressions;

    bool has_queries = false;
    std::string query_token_bytes;  // storage for the keys of query_tokens
    // every token of every query -> whether it is in the newest query
    std::unordered_map<std::string_view, bool> query_tokens;
};

enum class UserKey {
    kUserId, kNow, kPlatform, kTzOffsetMin, kRegion, kCity, kLat, kLon, kInterests, kSubInterests,
    kViews, kContacts, kFavorites, kImpressions, kQueries, kCount
};

const std::unordered_map<std::string_view, UserKey>& user_keys() {
    static const std::unordered_map<std::string_view, UserKey> keys = {
        {"user_id", UserKey::kUserId},       {"now", UserKey::kNow},
        {"platform", UserKey::kPlatform},    {"tz_offset_min", UserKey::kTzOffsetMin},
        {"region", UserKey::kRegion},        {"city", UserKey::kCity},
        {"lat", UserKey::kLat},              {"lon", UserKey::kLon},
        {"interests", UserKey::kInterests},  {"sub_interests", UserKey::kSubInterests},
        {"views", UserKey::kViews},          {"contacts", UserKey::kContacts},
        {"favorites", UserKey::kFavorites},  {"impressions", UserKey::kImpressions},
        {"queries", UserKey::kQueries},
    };
    return keys;
}

constexpr std::int64_t kUser = -1;  // error position of the user context

// A map int -> weight in [0, 1], as (key, weight) in first-seen key order
// with the last value of a repeated key (a Python dict built from the map).
std::vector<std::pair<std::int64_t, double>> read_weights(const Obj& o, std::string_view key) {
    get_map(o, kUser, key);
    std::vector<std::pair<std::int64_t, double>> out;
    std::unordered_map<std::int64_t, std::size_t> index;
    out.reserve(o.via.map.size);
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        const std::int64_t id = get_int(kv.key, kUser, key);
        const double w = get_finite(kv.val, kUser, key, 0, 1);
        const auto [at, inserted] = index.emplace(id, out.size());
        if (inserted)
            out.emplace_back(id, w);
        else
            out[at->second].second = w;
    }
    return out;
}

void prepare_request(const Obj& root, Request& r) {
    // First pass: the value of each known key (the last one if repeated;
    // nullptr when absent or nil), as a Python dict decoded from the bytes.
    const Obj* val[static_cast<int>(UserKey::kCount)] = {};
    const auto& keys = user_keys();
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        const auto found = keys.find(key_of(kv, kUser));
        if (found == keys.end()) continue;
        val[static_cast<int>(found->second)] = kv.val.type == mt::NIL ? nullptr : &kv.val;
    }
    auto get = [&](UserKey k) { return val[static_cast<int>(k)]; };
    float* row = r.user_row;
    std::fill(row, row + kNumFeatures, static_cast<float>(kNaN));

    if (!get(UserKey::kUserId)) fail(kUser, "user_id", "required key is missing or nil");
    get_int(*get(UserKey::kUserId), kUser, "user_id");
    if (!get(UserKey::kNow)) fail(kUser, "now", "required key is missing or nil");
    const std::int64_t now = get_int(*get(UserKey::kNow), kUser, "now");
    if (now < 0 || now > kMaxNow) fail(kUser, "now", "must be unix seconds in [0, 2^40]");
    r.now = static_cast<double>(now);

    if (const Obj* o = get(UserKey::kPlatform)) {
        const std::string_view p = get_str(*o, kUser, "platform");
        if (p == "web")
            row[kUserPlatform] = 0;
        else if (p == "ios")
            row[kUserPlatform] = 1;
        else if (p == "android")
            row[kUserPlatform] = 2;
        else
            fail(kUser, "platform", "must be \"web\", \"ios\" or \"android\"");
    }
    if (const Obj* o = get(UserKey::kTzOffsetMin)) {
        const std::int64_t tz = get_int(*o, kUser, "tz_offset_min");
        if (tz < -1440 || tz > 1440) fail(kUser, "tz_offset_min", "must be in [-1440, 1440] minutes");
        const std::int64_t local = now + 60 * tz;
        row[kUserLocalHour] = static_cast<float>(floor_mod(local, 86400) / 3600);
        row[kUserLocalWeekday] = static_cast<float>(floor_mod(floor_div(local, 86400) + 3, 7));
    }
    if (const Obj* o = get(UserKey::kRegion)) {
        r.region = get_int(*o, kUser, "region");
        r.has_region = true;
    }
    if (const Obj* o = get(UserKey::kCity)) {
        r.city = get_int(*o, kUser, "city");
        r.has_city = true;
    }
    if (const Obj* o = get(UserKey::kLat)) r.lat = get_finite(*o, kUser, "lat", -90, 90);
    if (const Obj* o = get(UserKey::kLon)) r.lon = get_finite(*o, kUser, "lon", -180, 180);

    if (const Obj* o = get(UserKey::kInterests)) {
        const auto weights = read_weights(*o, "interests");
        r.has_interests = true;
        r.interests.reserve(weights.size());
        int n_pos = 0;
        for (const auto& [id, w] : weights) {
            r.interests.emplace(id, w);
            r.interest_sum += w;
            if (w > 0) ++n_pos;
        }
        double entropy = 0.0;
        if (r.interest_sum > 0) {
            for (const auto& [id, w] : weights) {
                const double p = w / r.interest_sum;
                if (p > 0) entropy -= p * std::log(p);  // a subnormal weight can underflow to 0
            }
        }
        row[kUserInterests] = static_cast<float>(n_pos);
        row[kUserInterestEntropy] = static_cast<float>(entropy);
    }
    if (const Obj* o = get(UserKey::kSubInterests)) {
        const auto weights = read_weights(*o, "sub_interests");
        r.has_sub_interests = true;
        r.sub_interests.reserve(weights.size());
        for (const auto& [id, w] : weights) r.sub_interests.emplace(id, w);
    }

    if (const Obj* o = get(UserKey::kViews)) {
        get_array(*o, kUser, "views");
        const std::uint32_t n = o->via.array.size;
        r.has_views = true;
        r.n_views = static_cast<double>(n);
        r.item_views.reserve(n);
        std::vector<double> prices;
        prices.reserve(n);
        std::int64_t views_24h = 0;
        std::int64_t last_ts = std::numeric_limits<std::int64_t>::min();
        for (std::uint32_t i = 0; i < n; ++i) {
            const Obj& v = o->via.array.ptr[i];
            get_array(v, kUser, "views[]");
            if (v.via.array.size != 6)
                fail(kUser, "views[" + std::to_string(i) + "]",
                     "expected a row [item_id, ts, category, subcategory, price, seller_id]");
            const Obj* f = v.via.array.ptr;
            const std::int64_t item_id = get_int(f[0], kUser, "views[][0]");
            const std::int64_t ts = get_int(f[1], kUser, "views[][1]");
            const std::int64_t cat = get_int(f[2], kUser, "views[][2]");
            const std::int64_t subcat = get_int(f[3], kUser, "views[][3]");
            const double price = get_finite(f[4], kUser, "views[][4]", 0, kMaxDouble);
            const std::int64_t seller = get_int(f[5], kUser, "views[][5]");
            ++r.item_views[item_id];
            ++r.subcat_views[subcat];
            ++r.seller_views[seller];
            CatStats& cs = r.cats[cat];
            ++cs.views;
            cs.last_ts = std::max(cs.last_ts, ts);
            cs.prices.push_back(price);
            const double age = r.now - static_cast<double>(ts);
            if (age >= 0 && age <= 86400) ++views_24h;
            prices.push_back(price);
            last_ts = std::max(last_ts, ts);
        }
        for (auto& [cat, cs] : r.cats) {
            cs.median = median(cs.prices);
            std::tie(cs.mean_log, cs.std_log) = mean_std_log(cs.prices);
            std::vector<double>().swap(cs.prices);
        }
        row[kUserLogViews] = static_cast<float>(std::log1p(r.n_views));
        row[kUserViews24h] = static_cast<float>(views_24h);
        row[kUserCategoriesViewed] = static_cast<float>(r.cats.size());
        if (n > 0) {
            r.median_price = median(std::move(prices));
            row[kUserHoursSinceLastView] =
                static_cast<float>(std::max(r.now - static_cast<double>(last_ts), 0.0) / 3600);
        }
    }
    row[kUserMedianViewPrice] = static_cast<float>(r.median_price);
    row[kUserLogMedianViewPrice] = static_cast<float>(std::log1p(r.median_price));

    if (const Obj* o = get(UserKey::kContacts)) {
        get_array(*o, kUser, "contacts");
        r.has_contacts = true;
        for (std::uint32_t i = 0; i < o->via.array.size; ++i) {
            const Obj& c = o->via.array.ptr[i];
            get_array(c, kUser, "contacts[]");
            if (c.via.array.size != 3)
                fail(kUser, "contacts[" + std::to_string(i) + "]", "expected a row [item_id, ts, seller_id]");
            r.contact_items.insert(get_int(c.via.array.ptr[0], kUser, "contacts[][0]"));
            get_int(c.via.array.ptr[1], kUser, "contacts[][1]");
            r.contact_sellers.insert(get_int(c.via.array.ptr[2], kUser, "contacts[][2]"));
        }
        row[kUserLogContacts] = static_cast<float>(std::log1p(static_cast<double>(o->via.array.size)));
    }
    if (const Obj* o = get(UserKey::kFavorites)) {
        get_array(*o, kUser, "favorites");
        r.has_favorites = true;
        r.favorites.reserve(o->via.array.size);
        for (std::uint32_t i = 0; i < o->via.array.size; ++i)
            r.favorites.insert(get_int(o->via.array.ptr[i], kUser, "favorites[]"));
        row[kUserFavorites] = static_cast<float>(o->via.array.size);
    }
    if (const Obj* o = get(UserKey::kImpressions)) {
        get_map(*o, kUser, "impressions");
        r.has_impressions = true;
        r.impressions.reserve(o->via.map.size);
        for (std::uint32_t i = 0; i < o->via.map.size; ++i) {
            const auto& kv = o->via.map.ptr[i];
            r.impressions[get_int(kv.key, kUser, "impressions")] = get_count(kv.val, kUser, "impressions[]");
        }
    }
    if (const Obj* o = get(UserKey::kQueries)) {
        get_array(*o, kUser, "queries");
        r.has_queries = true;
        // Tokens are copied into one string first, then viewed from the map
        // (the string must not grow once views into it exist).
        Tokens t;
        std::vector<std::pair<std::size_t, std::size_t>> spans;  // (offset, length)
        std::size_t n_last = 0;
        for (std::uint32_t qi = 0; qi < o->via.array.size; ++qi) {
            if (!t.split(get_str(o->via.array.ptr[qi], kUser, "queries[]")))
                fail(kUser, "queries[" + std::to_string(qi) + "]", "string is not valid UTF-8");
            for (std::size_t j = 0; j < t.size(); ++j) {
                spans.emplace_back(r.query_token_bytes.size(), t[j].size());
                r.query_token_bytes.append(t[j]);
            }
            if (qi == 0) n_last = spans.size();
        }
        const std::string_view bytes = r.query_token_bytes;
        for (std::size_t j = 0; j < spans.size(); ++j) {
            const std::string_view tok = bytes.substr(spans[j].first, spans[j].second);
            bool& in_newest = r.query_tokens[tok];
            in_newest = in_newest || j < n_last;
        }
        row[kUserQueries] = static_cast<float>(o->via.array.size);
    }
}

// ---------------------------------------------------------------------------
// Item rows
// ---------------------------------------------------------------------------

double haversine_km(double lat1, double lon1, double lat2, double lon2) {
    const double rad = kPi / 180;
    const double p1 = lat1 * rad, p2 = lat2 * rad;
    const double s1 = std::sin((lat2 - lat1) * rad / 2);
    const double s2 = std::sin((lon2 - lon1) * rad / 2);
    const double a = s1 * s1 + std::cos(p1) * std::cos(p2) * s2 * s2;
    return 2 * kEarthRadiusKm * std::asin(std::min(1.0, std::sqrt(a)));
}

double smoothed(double events, double exposures, double prior, double strength) {
    return (events + prior * strength) / (exposures + strength);
}

inline float f32(double x) { return static_cast<float>(x); }
inline float flag(bool b) { return b ? 1.0f : 0.0f; }

template <typename Map>
std::int64_t count_of(const Map& m, std::int64_t key) {
    const auto it = m.find(key);
    return it == m.end() ? 0 : it->second;
}

// One thread's scratch space, reused across its items.
struct Worker {
    msgpack::zone zone;
    Item item;
    Tokens title;
    std::unordered_set<std::string_view> seen;
};

// Distinct title tokens (already split into w.title), those found among the
// query tokens, and whether any is in the newest query.
void query_matches(const Request& r, Worker& w, std::size_t& distinct, std::size_t& hits, bool& last) {
    distinct = hits = 0;
    last = false;
    const std::size_t n = w.title.size();
    const bool use_set = n > 16;  // short titles: a quadratic scan beats hashing
    if (use_set) w.seen.clear();
    for (std::size_t i = 0; i < n; ++i) {
        const std::string_view tok = w.title[i];
        bool dup = false;
        if (use_set) {
            dup = !w.seen.insert(tok).second;
        } else {
            for (std::size_t j = 0; j < i && !dup; ++j) dup = w.title[j] == tok;
        }
        if (dup) continue;
        ++distinct;
        const auto found = r.query_tokens.find(tok);
        if (found != r.query_tokens.end()) {
            ++hits;
            last = last || found->second;
        }
    }
}

void item_row(const Request& r, Worker& w, std::size_t pos, const Candidates& c, float* out) {
    const Item& it = w.item;
    const auto ipos = static_cast<std::int64_t>(pos);
    std::copy(r.user_row + kUserPlatform, r.user_row + kUserCategoriesViewed + 1, out + kUserPlatform);

    // item
    const double price = it.price;
    out[kItemPrice] = f32(price);
    out[kItemLogPrice] = f32(std::log1p(price));
    out[kItemIsFree] = flag(price == 0);
    out[kItemLogOldPrice] = f32(std::log1p(it.old_price));
    out[kItemPriceDrop] = it.old_price > 0 ? f32((it.old_price - price) / it.old_price) : f32(kNaN);
    const double age = std::max(r.now - static_cast<double>(it.created_at), 0.0) / 3600;
    out[kItemAgeHours] = f32(age);
    out[kItemLogAgeHours] = f32(std::log1p(age));
    out[kItemFreshness] = f32(std::exp(-age / kFreshnessHours));
    out[kItemHoursSinceUpdate] =
        it.has_updated_at ? f32(std::max(r.now - static_cast<double>(it.updated_at), 0.0) / 3600) : f32(kNaN);
    out[kItemPhotos] = f32(it.photos);
    out[kItemHasVideo] = f32(it.has_video);
    out[kItemLogDescriptionLen] = f32(std::log1p(it.description_len));
    std::size_t n_chars = 0;
    if (!w.title.split(it.title, &n_chars)) fail(ipos, "title", "string is not valid UTF-8");
    out[kItemTitleChars] = f32(static_cast<double>(n_chars));
    out[kItemTitleTokens] = f32(static_cast<double>(w.title.size()));
    out[kItemCategory] = f32(static_cast<double>(it.category));
    out[kItemSubcategory] = f32(static_cast<double>(it.subcategory));
    out[kItemConditionNew] = f32(it.condition);
    out[kItemVasLevel] = f32(it.vas);
    out[kItemIsPromoted] = std::isnan(it.vas) ? f32(kNaN) : flag(it.vas > 0);
    out[kItemDelivery] = f32(it.delivery);
    out[kItemSellerRating] = f32(it.seller_rating);
    out[kItemSellerLogReviews] = f32(std::log1p(it.seller_reviews));
    // NaN unless both are present: NaN propagates through the formula.
    out[kItemSellerBayesRating] = f32((it.seller_rating * it.seller_reviews + kSellerRatingPrior * kSellerStrength) /
                                      (it.seller_reviews + kSellerStrength));
    out[kItemSellerLogActiveItems] = f32(std::log1p(it.seller_active_items));
    out[kItemSellerIsCompany] = f32(it.seller_is_company);
    out[kItemLogImpressions7d] = f32(std::log1p(it.impressions_7d));
    out[kItemLogViews7d] = f32(std::log1p(it.views_7d));
    out[kItemLogContacts7d] = f32(std::log1p(it.contacts_7d));
    out[kItemLogFavorites7d] = f32(std::log1p(it.favorites_7d));
    out[kItemLogViewsTotal] = f32(std::log1p(it.views_total));
    out[kItemCtr7d] = f32(smoothed(it.views_7d, it.impressions_7d, kCtrPrior, kCtrStrength));
    out[kItemContactRate7d] = f32(smoothed(it.contacts_7d, it.views_7d, kContactPrior, kContactStrength));
    out[kItemFavoriteRate7d] = f32(smoothed(it.favorites_7d, it.views_7d, kFavoritePrior, kFavoriteStrength));
    out[kItemViewsPerDay] = f32(it.views_total / std::max(age / 24, 1.0));

    // source
    out[kSrcId] = c.source ? f32(static_cast<double>(c.source[pos])) : f32(kNaN);
    out[kSrcScore] = c.score ? f32(c.score[pos]) : f32(kNaN);
    if (c.rank) {
        const double rank = static_cast<double>(c.rank[pos]);
        out[kSrcRank] = f32(rank);
        out[kSrcLogRank] = f32(std::log1p(rank));
        out[kSrcReciprocalRank] = f32(1.0 / (rank + 1.0));
    } else {
        out[kSrcRank] = out[kSrcLogRank] = out[kSrcReciprocalRank] = f32(kNaN);
    }

    // user x item
    if (r.has_interests) {
        const auto found = r.interests.find(it.category);
        const double wc = found == r.interests.end() ? 0.0 : found->second;
        out[kUxInterestCat] = f32(wc);
        out[kUxInterestCatShare] = r.interest_sum > 0 ? f32(wc / r.interest_sum) : 0.0f;
    } else {
        out[kUxInterestCat] = out[kUxInterestCatShare] = f32(kNaN);
    }
    if (r.has_sub_interests) {
        const auto found = r.sub_interests.find(it.subcategory);
        out[kUxInterestSubcat] = found == r.sub_interests.end() ? 0.0f : f32(found->second);
    } else {
        out[kUxInterestSubcat] = f32(kNaN);
    }
    const bool located = !std::isnan(r.lat) && !std::isnan(r.lon) && !std::isnan(it.lat) && !std::isnan(it.lon);
    const double dist = located ? haversine_km(r.lat, r.lon, it.lat, it.lon) : kNaN;
    out[kUxDistanceKm] = f32(dist);
    out[kUxLogDistanceKm] = f32(std::log1p(dist));
    out[kUxSameRegion] = r.has_region ? flag(r.region == it.region) : f32(kNaN);
    out[kUxSameCity] = r.has_city && it.has_city ? flag(r.city == it.city) : f32(kNaN);

    if (r.has_views) {
        const auto found = r.cats.find(it.category);
        if (found != r.cats.end()) {
            const CatStats& cs = found->second;
            out[kUxCatViews] = f32(static_cast<double>(cs.views));
            out[kUxCatViewShare] = f32(static_cast<double>(cs.views) / r.n_views);
            out[kUxHoursSinceCatView] = f32(std::max(r.now - static_cast<double>(cs.last_ts), 0.0) / 3600);
            out[kUxPriceRatioCatMedian] = cs.median > 0 ? f32(price / cs.median) : f32(kNaN);
            out[kUxLogPriceZCat] = f32((std::log1p(price) - cs.mean_log) / (cs.std_log + kZScoreEpsilon));
        } else {
            out[kUxCatViews] = 0;
            out[kUxCatViewShare] = 0;
            out[kUxHoursSinceCatView] = out[kUxPriceRatioCatMedian] = out[kUxLogPriceZCat] = f32(kNaN);
        }
        out[kUxSubcatViews] = f32(static_cast<double>(count_of(r.subcat_views, it.subcategory)));
        const std::int64_t n_item = count_of(r.item_views, it.id);
        out[kUxViewedItem] = flag(n_item > 0);
        out[kUxItemViews] = f32(static_cast<double>(n_item));
        out[kUxSellerViews] = f32(static_cast<double>(count_of(r.seller_views, it.seller_id)));
    } else {
        for (int f : {kUxCatViews, kUxCatViewShare, kUxHoursSinceCatView, kUxPriceRatioCatMedian, kUxLogPriceZCat,
                      kUxSubcatViews, kUxViewedItem, kUxItemViews, kUxSellerViews})
            out[f] = f32(kNaN);
    }
    out[kUxPriceRatioUserMedian] = r.median_price > 0 ? f32(price / r.median_price) : f32(kNaN);
    out[kUxContactedItem] = r.has_contacts ? flag(r.contact_items.count(it.id) > 0) : f32(kNaN);
    out[kUxContactedSeller] = r.has_contacts ? flag(r.contact_sellers.count(it.seller_id) > 0) : f32(kNaN);
    out[kUxFavorited] = r.has_favorites ? flag(r.favorites.count(it.id) > 0) : f32(kNaN);
    out[kUxShownCount] = r.has_impressions ? f32(static_cast<double>(count_of(r.impressions, it.id))) : f32(kNaN);
    if (r.has_queries) {
        std::size_t distinct, hits;
        bool last;
        query_matches(r, w, distinct, hits, last);
        out[kUxQueryTokenHits] = f32(static_cast<double>(hits));
        out[kUxQueryOverlap] =
            distinct > 0 ? f32(static_cast<double>(hits) / static_cast<double>(distinct)) : 0.0f;
        out[kUxLastQueryMatch] = flag(last);
    } else {
        out[kUxQueryTokenHits] = out[kUxQueryOverlap] = out[kUxLastQueryMatch] = f32(kNaN);
    }
}

void validate_candidates(const Candidates& c, std::size_t n) {
    for (std::size_t i = 0; i < n && c.source; ++i)
        if (c.source[i] < 0 || c.source[i] > 7)
            fail(static_cast<std::int64_t>(i), "candidates.source", "must be in 0..7");
    for (std::size_t i = 0; i < n && c.rank; ++i)
        if (c.rank[i] < 0) fail(static_cast<std::int64_t>(i), "candidates.source_rank", "must be >= 0");
}

}  // namespace

// ---------------------------------------------------------------------------

InputError::InputError(std::int64_t position, const std::string& key, const std::string& msg)
    : std::runtime_error((position < 0 ? std::string("user context") : "item " + std::to_string(position)) +
                         (key.empty() ? std::string() : ": " + key) + ": " + msg),
      position_(position) {}

const std::vector<std::string>& feature_names() {
    static const std::vector<std::string> names = {
        "item_price", "item_log_price", "item_is_free", "item_log_old_price", "item_price_drop",
        "item_age_hours", "item_log_age_hours", "item_freshness", "item_hours_since_update",
        "item_photos", "item_has_video", "item_log_description_len", "item_title_chars",
        "item_title_tokens", "item_category", "item_subcategory", "item_condition_new",
        "item_vas_level", "item_is_promoted", "item_delivery", "item_seller_rating",
        "item_seller_log_reviews", "item_seller_bayes_rating", "item_seller_log_active_items",
        "item_seller_is_company", "item_log_impressions_7d", "item_log_views_7d",
        "item_log_contacts_7d", "item_log_favorites_7d", "item_log_views_total", "item_ctr_7d",
        "item_contact_rate_7d", "item_favorite_rate_7d", "item_views_per_day",
        "src_id", "src_score", "src_rank", "src_log_rank", "src_reciprocal_rank",
        "user_platform", "user_local_hour", "user_local_weekday", "user_log_views", "user_views_24h",
        "user_log_contacts", "user_favorites", "user_interests", "user_interest_entropy",
        "user_median_view_price", "user_log_median_view_price", "user_hours_since_last_view",
        "user_queries", "user_categories_viewed",
        "ux_interest_cat", "ux_interest_subcat", "ux_interest_cat_share", "ux_distance_km",
        "ux_log_distance_km", "ux_same_region", "ux_same_city", "ux_cat_views", "ux_subcat_views",
        "ux_cat_view_share", "ux_hours_since_cat_view", "ux_price_ratio_cat_median",
        "ux_log_price_z_cat", "ux_price_ratio_user_median", "ux_viewed_item", "ux_item_views",
        "ux_seller_views", "ux_contacted_item", "ux_contacted_seller", "ux_favorited",
        "ux_shown_count", "ux_query_token_hits", "ux_query_overlap", "ux_last_query_match",
    };
    return names;
}

void compute(std::string_view user, const std::vector<std::string_view>& items, const Candidates& candidates,
             int threads, float* out) {
    const std::size_t n = items.size();
    validate_candidates(candidates, n);

    Request req;
    {
        msgpack::zone zone;
        const Obj root = decode_record(zone, user, kUser);
        prepare_request(root, req);
    }
    if (n == 0) return;

    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const std::size_t n_workers = std::min<std::size_t>(static_cast<std::size_t>(threads), (n + kChunk - 1) / kChunk);

    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    struct Failure {
        std::size_t pos;
        std::exception_ptr error;
    };
    std::vector<Failure> failures(n_workers, Failure{n, nullptr});

    // Runs on each thread; no exception leaves it (one escaping a
    // std::thread would terminate the process).
    auto work = [&](std::size_t wi) noexcept {
        std::size_t i = n;
        try {
            Worker w;
            // Chunks are claimed in increasing order and a worker finishes
            // the chunk it holds, so once an error is seen every lower
            // position has been checked: the lowest error found is the
            // first overall.
            while (!failed.load(std::memory_order_relaxed)) {
                const std::size_t start = next.fetch_add(kChunk, std::memory_order_relaxed);
                if (start >= n) return;
                const std::size_t end = std::min(start + kChunk, n);
                for (i = start; i < end; ++i) {
                    const auto pos = static_cast<std::int64_t>(i);
                    const Obj root = decode_record(w.zone, items[i], pos);
                    decode_item(root, pos, w.item);
                    item_row(req, w, i, candidates, out + i * kNumFeatures);
                    w.zone.clear();
                }
            }
        } catch (...) {
            failures[wi] = Failure{i, std::current_exception()};
            failed.store(true, std::memory_order_relaxed);
        }
    };

    std::vector<std::thread> pool;
    pool.reserve(n_workers - 1);
    for (std::size_t wi = 1; wi < n_workers; ++wi) {
        try {
            pool.emplace_back(work, wi);
        } catch (const std::system_error&) {
            break;  // no more threads to be had: the started ones share the work
        }
    }
    work(0);  // the calling thread is a worker too
    for (auto& t : pool) t.join();

    const Failure* first = nullptr;
    for (const auto& f : failures)
        if (f.error && (first == nullptr || f.pos < first->pos)) first = &f;
    if (first != nullptr) std::rethrow_exception(first->error);
}

}  // namespace peer
