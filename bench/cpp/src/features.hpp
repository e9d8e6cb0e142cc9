// The 77 features of pyfeat, computed from MessagePack records.
//
// Column order and definitions follow pyfeat.reference (the executable
// specification) and features/catalogue.go. This header is free of Python:
// module.cpp binds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace peer {

// Column indices. The order is the model contract: never reorder.
enum Feature : int {
    kItemPrice,
    kItemLogPrice,
    kItemIsFree,
    kItemLogOldPrice,
    kItemPriceDrop,
    kItemAgeHours,
    kItemLogAgeHours,
    kItemFreshness,
    kItemHoursSinceUpdate,
    kItemPhotos,
    kItemHasVideo,
    kItemLogDescriptionLen,
    kItemTitleChars,
    kItemTitleTokens,
    kItemCategory,
    kItemSubcategory,
    kItemConditionNew,
    kItemVasLevel,
    kItemIsPromoted,
    kItemDelivery,
    kItemSellerRating,
    kItemSellerLogReviews,
    kItemSellerBayesRating,
    kItemSellerLogActiveItems,
    kItemSellerIsCompany,
    kItemLogImpressions7d,
    kItemLogViews7d,
    kItemLogContacts7d,
    kItemLogFavorites7d,
    kItemLogViewsTotal,
    kItemCtr7d,
    kItemContactRate7d,
    kItemFavoriteRate7d,
    kItemViewsPerDay,

    kSrcId,
    kSrcScore,
    kSrcRank,
    kSrcLogRank,
    kSrcReciprocalRank,

    kUserPlatform,
    kUserLocalHour,
    kUserLocalWeekday,
    kUserLogViews,
    kUserViews24h,
    kUserLogContacts,
    kUserFavorites,
    kUserInterests,
    kUserInterestEntropy,
    kUserMedianViewPrice,
    kUserLogMedianViewPrice,
    kUserHoursSinceLastView,
    kUserQueries,
    kUserCategoriesViewed,

    kUxInterestCat,
    kUxInterestSubcat,
    kUxInterestCatShare,
    kUxDistanceKm,
    kUxLogDistanceKm,
    kUxSameRegion,
    kUxSameCity,
    kUxCatViews,
    kUxSubcatViews,
    kUxCatViewShare,
    kUxHoursSinceCatView,
    kUxPriceRatioCatMedian,
    kUxLogPriceZCat,
    kUxPriceRatioUserMedian,
    kUxViewedItem,
    kUxItemViews,
    kUxSellerViews,
    kUxContactedItem,
    kUxContactedSeller,
    kUxFavorited,
    kUxShownCount,
    kUxQueryTokenHits,
    kUxQueryOverlap,
    kUxLastQueryMatch,

    kNumFeatures
};

// Column names, in column order.
const std::vector<std::string>& feature_names();

// A record that cannot be used: malformed MessagePack, a missing required
// key, a value of the wrong type or out of range. position is the item's
// index, or -1 for the user context and the candidate arrays.
class InputError : public std::runtime_error {
public:
    InputError(std::int64_t position, const std::string& key, const std::string& msg);
    std::int64_t position() const { return position_; }

private:
    std::int64_t position_;
};

// Candidate metadata, parallel to the items; a null pointer means the array
// was not given and its features are NaN.
struct Candidates {
    const std::int64_t* source = nullptr;
    const double* score = nullptr;
    const std::int64_t* rank = nullptr;
};

// Computes the feature matrix of one request into out (row-major,
// items.size() x kNumFeatures floats, allocated by the caller). Items are
// split across up to `threads` std::threads (<= 0: hardware concurrency).
// Throws InputError for bad input (the one at the lowest item position when
// several items are bad).
void compute(std::string_view user, const std::vector<std::string_view>& items, const Candidates& candidates,
             int threads, float* out);

}  // namespace peer
