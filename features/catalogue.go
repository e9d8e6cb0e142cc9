package features

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
)

// Feature describes one column of the feature matrix.
type Feature struct {
	Name  string // stable identifier, e.g. "item_log_price"
	Group string // "item", "source", "user" or "user_item"
	Def   string // one line: formula and unit; NaN conditions
}

// The kinds of column: numeric columns are float32 (NaN for missing);
// categorical columns are int64 ids (CatMissing for missing) that CatBoost
// takes as categorical features, each id as its decimal string.
const (
	KindNumeric     = "numeric"
	KindCategorical = "categorical"
)

// Column indices of the feature matrix. The order is part of the model
// contract (see SpecHash): append new features, never reorder.
const (
	fItemPrice = iota
	fItemLogPrice
	fItemIsFree
	fItemLogOldPrice
	fItemPriceDrop
	fItemAgeHours
	fItemLogAgeHours
	fItemFreshness
	fItemHoursSinceUpdate
	fItemPhotos
	fItemHasVideo
	fItemLogDescriptionLen
	fItemTitleChars
	fItemTitleTokens
	fItemCategory
	fItemSubcategory
	fItemConditionNew
	fItemVASLevel
	fItemIsPromoted
	fItemDelivery
	fItemSellerRating
	fItemSellerLogReviews
	fItemSellerBayesRating
	fItemSellerLogActiveItems
	fItemSellerIsCompany
	fItemLogImpressions7d
	fItemLogViews7d
	fItemLogContacts7d
	fItemLogFavorites7d
	fItemLogViewsTotal
	fItemCTR7d
	fItemContactRate7d
	fItemFavoriteRate7d
	fItemViewsPerDay

	fSrcID
	fSrcScore
	fSrcRank
	fSrcLogRank
	fSrcReciprocalRank

	fUserPlatform
	fUserLocalHour
	fUserLocalWeekday
	fUserLogViews
	fUserViews24h
	fUserLogContacts
	fUserFavorites
	fUserInterests
	fUserInterestEntropy
	fUserMedianViewPrice
	fUserLogMedianViewPrice
	fUserHoursSinceLastView
	fUserQueries
	fUserCategoriesViewed

	fUXInterestCat
	fUXInterestSubcat
	fUXInterestCatShare
	fUXDistanceKm
	fUXLogDistanceKm
	fUXSameRegion
	fUXSameCity
	fUXCatViews
	fUXSubcatViews
	fUXCatViewShare
	fUXHoursSinceCatView
	fUXPriceRatioCatMedian
	fUXLogPriceZCat
	fUXPriceRatioUserMedian
	fUXViewedItem
	fUXItemViews
	fUXSellerViews
	fUXContactedItem
	fUXContactedSeller
	fUXFavorited
	fUXShownCount
	fUXQueryTokenHits
	fUXQueryOverlap
	fUXLastQueryMatch

	NumFeatures
)

// Smoothing priors for the item rates: (events + prior*strength) /
// (exposures + strength), so an item with few impressions sits near the
// catalogue average instead of at 0 or 1.
const (
	ctrPrior, ctrStrength             = 0.05, 20.0
	contactPrior, contactStrength     = 0.02, 10.0
	favoritePrior, favoriteStrength   = 0.03, 10.0
	sellerRatingPrior, sellerStrength = 4.0, 5.0
	freshnessHours                    = 72.0
	earthRadiusKm                     = 6371.0
	zScoreEpsilon                     = 0.1
)

// Catalogue is the feature table: one entry per column, in column order.
// "age" and every "hours since" use the request's `now`, never the wall
// clock. Features of an optional key are NaN when it is absent.
var Catalogue = [NumFeatures]Feature{
	fItemPrice:                {"item_price", "item", "price, currency units"},
	fItemLogPrice:             {"item_log_price", "item", "log1p(price)"},
	fItemIsFree:               {"item_is_free", "item", "1 if price == 0 else 0"},
	fItemLogOldPrice:          {"item_log_old_price", "item", "log1p(old_price); NaN without old_price"},
	fItemPriceDrop:            {"item_price_drop", "item", "(old_price - price) / old_price, fraction; NaN without old_price or when it is 0"},
	fItemAgeHours:             {"item_age_hours", "item", "max(now - created_at, 0) / 3600, hours"},
	fItemLogAgeHours:          {"item_log_age_hours", "item", "log1p(item_age_hours)"},
	fItemFreshness:            {"item_freshness", "item", "exp(-item_age_hours / 72), 1 = brand new"},
	fItemHoursSinceUpdate:     {"item_hours_since_update", "item", "max(now - updated_at, 0) / 3600, hours; NaN without updated_at"},
	fItemPhotos:               {"item_photos", "item", "number of photos"},
	fItemHasVideo:             {"item_has_video", "item", "1 if has_video else 0"},
	fItemLogDescriptionLen:    {"item_log_description_len", "item", "log1p(description_len), characters"},
	fItemTitleChars:           {"item_title_chars", "item", "title length in characters (code points)"},
	fItemTitleTokens:          {"item_title_tokens", "item", "number of title tokens (with repeats)"},
	fItemCategory:             {"item_category", "item", "category id"},
	fItemSubcategory:          {"item_subcategory", "item", "subcategory id"},
	fItemConditionNew:         {"item_condition_new", "item", "1 if condition == 'new', 0 if 'used'"},
	fItemVASLevel:             {"item_vas_level", "item", "paid promotion level: '' 0, highlight 1, x2 2, x5 3, xl 4"},
	fItemIsPromoted:           {"item_is_promoted", "item", "1 if vas != '' else 0"},
	fItemDelivery:             {"item_delivery", "item", "1 if delivery else 0"},
	fItemSellerRating:         {"item_seller_rating", "item", "seller_rating, 0..5"},
	fItemSellerLogReviews:     {"item_seller_log_reviews", "item", "log1p(seller_reviews)"},
	fItemSellerBayesRating:    {"item_seller_bayes_rating", "item", "(seller_rating * seller_reviews + 4.0 * 5) / (seller_reviews + 5), 0..5; NaN unless both are present"},
	fItemSellerLogActiveItems: {"item_seller_log_active_items", "item", "log1p(seller_active_items)"},
	fItemSellerIsCompany:      {"item_seller_is_company", "item", "1 if seller_is_company else 0"},
	fItemLogImpressions7d:     {"item_log_impressions_7d", "item", "log1p(impressions_7d)"},
	fItemLogViews7d:           {"item_log_views_7d", "item", "log1p(views_7d)"},
	fItemLogContacts7d:        {"item_log_contacts_7d", "item", "log1p(contacts_7d)"},
	fItemLogFavorites7d:       {"item_log_favorites_7d", "item", "log1p(favorites_7d)"},
	fItemLogViewsTotal:        {"item_log_views_total", "item", "log1p(views_total)"},
	fItemCTR7d:                {"item_ctr_7d", "item", "(views_7d + 0.05 * 20) / (impressions_7d + 20), smoothed click-through rate"},
	fItemContactRate7d:        {"item_contact_rate_7d", "item", "(contacts_7d + 0.02 * 10) / (views_7d + 10), smoothed contacts per view"},
	fItemFavoriteRate7d:       {"item_favorite_rate_7d", "item", "(favorites_7d + 0.03 * 10) / (views_7d + 10), smoothed favorites per view"},
	fItemViewsPerDay:          {"item_views_per_day", "item", "views_total / max(item_age_hours / 24, 1), views per day"},

	fSrcID:             {"src_id", "source", "candidate generator id, 0..7; NaN without candidates"},
	fSrcScore:          {"src_score", "source", "the generator's score"},
	fSrcRank:           {"src_rank", "source", "rank within the generator, 0 = best"},
	fSrcLogRank:        {"src_log_rank", "source", "log1p(source_rank)"},
	fSrcReciprocalRank: {"src_reciprocal_rank", "source", "1 / (source_rank + 1)"},

	fUserPlatform:           {"user_platform", "user", "web 0, ios 1, android 2"},
	fUserLocalHour:          {"user_local_hour", "user", "hour of day at the user, 0..23: floor(((now + 60 * tz_offset_min) mod 86400) / 3600); NaN without tz_offset_min"},
	fUserLocalWeekday:       {"user_local_weekday", "user", "weekday at the user, Monday 0: (floor((now + 60 * tz_offset_min) / 86400) + 3) mod 7; NaN without tz_offset_min"},
	fUserLogViews:           {"user_log_views", "user", "log1p(number of views)"},
	fUserViews24h:           {"user_views_24h", "user", "views with 0 <= now - ts <= 86400"},
	fUserLogContacts:        {"user_log_contacts", "user", "log1p(number of contacts)"},
	fUserFavorites:          {"user_favorites", "user", "number of favorites"},
	fUserInterests:          {"user_interests", "user", "categories with interest weight > 0"},
	fUserInterestEntropy:    {"user_interest_entropy", "user", "-sum(p * ln p) over weights > 0, p = weight / sum, nats; 0 if the sum is 0"},
	fUserMedianViewPrice:    {"user_median_view_price", "user", "median price of the viewed items, currency units; NaN without views"},
	fUserLogMedianViewPrice: {"user_log_median_view_price", "user", "log1p(user_median_view_price)"},
	fUserHoursSinceLastView: {"user_hours_since_last_view", "user", "max(now - max(view ts), 0) / 3600, hours; NaN without views"},
	fUserQueries:            {"user_queries", "user", "number of recent queries"},
	fUserCategoriesViewed:   {"user_categories_viewed", "user", "distinct categories among the views"},

	fUXInterestCat:          {"ux_interest_cat", "user_item", "interests[category], 0 if absent from the map; NaN without interests"},
	fUXInterestSubcat:       {"ux_interest_subcat", "user_item", "sub_interests[subcategory], 0 if absent from the map; NaN without sub_interests"},
	fUXInterestCatShare:     {"ux_interest_cat_share", "user_item", "interests[category] / sum of interests, 0 if the sum is 0"},
	fUXDistanceKm:           {"ux_distance_km", "user_item", "haversine distance user-item, R = 6371 km; NaN unless both locations are present"},
	fUXLogDistanceKm:        {"ux_log_distance_km", "user_item", "log1p(ux_distance_km)"},
	fUXSameRegion:           {"ux_same_region", "user_item", "1 if user region == item region; NaN without the user's region"},
	fUXSameCity:             {"ux_same_city", "user_item", "1 if user city == item city; NaN unless both are present"},
	fUXCatViews:             {"ux_cat_views", "user_item", "user's views in the item's category"},
	fUXSubcatViews:          {"ux_subcat_views", "user_item", "user's views in the item's subcategory"},
	fUXCatViewShare:         {"ux_cat_view_share", "user_item", "ux_cat_views / number of views, 0 without any view"},
	fUXHoursSinceCatView:    {"ux_hours_since_cat_view", "user_item", "max(now - last view ts in the category, 0) / 3600, hours; NaN if none"},
	fUXPriceRatioCatMedian:  {"ux_price_ratio_cat_median", "user_item", "price / median price of the user's views in the category; NaN if none or the median is 0"},
	fUXLogPriceZCat:         {"ux_log_price_z_cat", "user_item", "(log1p(price) - mean) / (std + 0.1) over log1p(prices) of the user's views in the category (population std); NaN if none"},
	fUXPriceRatioUserMedian: {"ux_price_ratio_user_median", "user_item", "price / user_median_view_price; NaN if that is NaN or 0"},
	fUXViewedItem:           {"ux_viewed_item", "user_item", "1 if the user viewed this item"},
	fUXItemViews:            {"ux_item_views", "user_item", "times the user viewed this item"},
	fUXSellerViews:          {"ux_seller_views", "user_item", "user's views of this seller's items"},
	fUXContactedItem:        {"ux_contacted_item", "user_item", "1 if the user contacted about this item; NaN without contacts"},
	fUXContactedSeller:      {"ux_contacted_seller", "user_item", "1 if the user contacted this seller; NaN without contacts"},
	fUXFavorited:            {"ux_favorited", "user_item", "1 if the item is in favorites; NaN without favorites"},
	fUXShownCount:           {"ux_shown_count", "user_item", "impressions[item id], 0 if absent from the map; NaN without impressions"},
	fUXQueryTokenHits:       {"ux_query_token_hits", "user_item", "distinct title tokens found among the tokens of all queries; NaN without queries"},
	fUXQueryOverlap:         {"ux_query_overlap", "user_item", "ux_query_token_hits / distinct title tokens, 0 for a title without tokens"},
	fUXLastQueryMatch:       {"ux_last_query_match", "user_item", "1 if a title token is in the newest query, 0 if none or no queries"},
}

// Columns of the categorical matrix, a set of its own after the numeric
// columns: append, never reorder.
const (
	cItemCategory = iota
	cItemSubcategory
	cItemRegion
	cItemCity
	cItemSeller
	cItemCondition
	cItemVAS
	cUserPlatform
	cSrcID
	cUXRegionCategory
	cUXPlatformCategory

	NumCatFeatures
)

// CatMissing is the value of a missing categorical feature. CatBoost sees
// it as the string "-9223372036854775808", in training files and in
// serving alike; an input id equal to it is refused, so it never stands
// for a real value.
const CatMissing int64 = math.MinInt64

// CatCatalogue is the table of the categorical columns, in column order.
var CatCatalogue = [NumCatFeatures]Feature{
	cItemCategory:       {"cat_item_category", "item", "category id"},
	cItemSubcategory:    {"cat_item_subcategory", "item", "subcategory id"},
	cItemRegion:         {"cat_item_region", "item", "region id"},
	cItemCity:           {"cat_item_city", "item", "city id; missing without city"},
	cItemSeller:         {"cat_item_seller", "item", "seller_id"},
	cItemCondition:      {"cat_item_condition", "item", "condition: used 0, new 1; missing without condition"},
	cItemVAS:            {"cat_item_vas", "item", "paid promotion: '' 0, highlight 1, x2 2, x5 3, xl 4; missing without vas"},
	cUserPlatform:       {"cat_user_platform", "user", "platform: web 0, ios 1, android 2; missing without platform"},
	cSrcID:              {"cat_src_id", "source", "candidate generator id, 0..7; missing without candidates"},
	cUXRegionCategory:   {"cat_ux_region_category", "user_item", "cross(user region, item category); missing without the user's region"},
	cUXPlatformCategory: {"cat_ux_platform_category", "user_item", "cross(cat_user_platform, item category); missing without platform"},
}

// Cross is the id of a pair of ids, for the categorical crosses: SplitMix64's
// finalizer of a*0x9E3779B97F4A7C15 + b (uint64 arithmetic, wrapping),
// as int64; CatMissing maps to CatMissing+1. Distinct pairs of realistic
// ids get distinct crosses; CatBoost hashes every value to 32 bits anyway.
func Cross(a, b int64) int64 {
	z := uint64(a)*0x9E3779B97F4A7C15 + uint64(b)
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	z ^= z >> 31
	if v := int64(z); v != CatMissing {
		return v
	}
	return CatMissing + 1
}

// FeatureNames returns the numeric column names in order (a new slice).
func FeatureNames() []string {
	out := make([]string, NumFeatures)
	for i, f := range Catalogue {
		out[i] = f.Name
	}
	return out
}

// CatFeatureNames returns the categorical column names in order.
func CatFeatureNames() []string {
	out := make([]string, NumCatFeatures)
	for i, f := range CatCatalogue {
		out[i] = f.Name
	}
	return out
}

// SpecHash identifies the feature list: the first 16 hex digits of SHA-256
// over "name\tkind" of every column, numeric then categorical, joined by
// "\n". A model records it at training time.
func SpecHash() string {
	lines := make([]string, 0, NumFeatures+NumCatFeatures)
	for _, f := range Catalogue {
		lines = append(lines, f.Name+"\t"+KindNumeric)
	}
	for _, f := range CatCatalogue {
		lines = append(lines, f.Name+"\t"+KindCategorical)
	}
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:8])
}
