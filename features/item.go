package features

import (
	"math"
)

// Item is one decoded item record. Optional numeric fields hold NaN when the
// key is absent (or nil); optional ids carry a Has flag. Title is a slice of
// the caller's input buffer, valid only during the call that decoded it.
type Item struct {
	ID          int64
	Title       []byte
	Category    int64
	Subcategory int64
	Price       float64 // currency units, >= 0; 0 = free / negotiable
	CreatedAt   int64   // unix seconds
	SellerID    int64
	Region      int64

	OldPrice          float64 // currency units
	DescriptionLen    float64 // characters
	City              int64
	HasCity           bool
	Lat, Lon          float64 // degrees
	UpdatedAt         int64   // unix seconds
	HasUpdatedAt      bool
	SellerRating      float64 // 0..5
	SellerReviews     float64
	SellerActiveItems float64
	SellerIsCompany   float64 // 0/1
	Photos            float64
	HasVideo          float64 // 0/1
	Delivery          float64 // 0/1
	Condition         float64 // 1 new, 0 used
	VAS               float64 // promotion level 0..4
	Impressions7d     float64
	Views7d           float64
	Contacts7d        float64
	Favorites7d       float64
	ViewsTotal        float64
}

const (
	reqID = 1 << iota
	reqTitle
	reqCategory
	reqSubcategory
	reqPrice
	reqCreatedAt
	reqSellerID
	reqRegion
	reqAllItem = reqID | reqTitle | reqCategory | reqSubcategory | reqPrice | reqCreatedAt | reqSellerID | reqRegion
)

var requiredItemKeys = []struct {
	bit  int
	name string
}{
	{reqID, "id"}, {reqTitle, "title"}, {reqCategory, "category"}, {reqSubcategory, "subcategory"},
	{reqPrice, "price"}, {reqCreatedAt, "created_at"}, {reqSellerID, "seller_id"}, {reqRegion, "region"},
}

// vasLevel maps the paid-promotion string to its level; the order is the
// promotion's strength.
func vasLevel(s []byte) (float64, bool) {
	switch string(s) {
	case "":
		return 0, true
	case "highlight":
		return 1, true
	case "x2":
		return 2, true
	case "x5":
		return 3, true
	case "xl":
		return 4, true
	}
	return 0, false
}

func resetItem(it *Item) {
	nan := math.NaN()
	*it = Item{
		OldPrice: nan, DescriptionLen: nan, Lat: nan, Lon: nan, SellerRating: nan,
		SellerReviews: nan, SellerActiveItems: nan, SellerIsCompany: nan, Photos: nan,
		HasVideo: nan, Delivery: nan, Condition: nan, VAS: nan, Impressions7d: nan,
		Views7d: nan, Contacts7d: nan, Favorites7d: nan, ViewsTotal: nan,
	}
}

// decodeItem decodes one item record from MessagePack into it, and splits
// the title into tok: the split validates the UTF-8 on the way, so the title
// is read once, not twice. Unknown keys are skipped; a nil value for an
// optional key counts as absent. The returned error's Position is left for
// the caller to set.
func decodeItem(b []byte, it *Item, tok *tokenizer) *InputError {
	resetItem(it)
	n, b, err := readMapHeader(b, "")
	if err != nil {
		if err.WrongType {
			err.Msg = "record is not a map: " + err.Msg
		}
		return err
	}
	seen := 0
	for i := uint32(0); i < n; i++ {
		var k []byte
		if l := fixstrSize(b); l > 0 && l <= len(b) {
			k, b = b[1:l], b[l:] // readKey's fast path, inlined: keys are most of the calls
		} else if k, b, err = readKey(b); err != nil {
			err.Msg = "map key: " + err.Msg
			return err
		}
		// Keys are compared as string(k) in switches, which Go does without
		// allocating; a key becomes a Go string only on the error path.
		if isNil(b) {
			switch string(k) {
			case "id", "title", "category", "subcategory", "price", "created_at", "seller_id", "region":
				return valueError(string(k), "required key is nil")
			}
			b = b[1:]
			continue
		}
		var bv bool
		switch string(k) {
		case "id":
			it.ID, b, err = readInt(b, "id")
			seen |= reqID
		case "title":
			it.Title, b, err = readKey(b)
			if err != nil {
				err.Key = "title"
			} else if !tok.split(it.Title) {
				err = valueError("title", "string is not valid UTF-8")
			}
			seen |= reqTitle
		case "category":
			it.Category, b, err = readInt(b, "category")
			seen |= reqCategory
		case "subcategory":
			it.Subcategory, b, err = readInt(b, "subcategory")
			seen |= reqSubcategory
		case "price":
			it.Price, b, err = readFinite(b, "price", 0, math.MaxFloat64)
			seen |= reqPrice
		case "created_at":
			it.CreatedAt, b, err = readTime(b, "created_at")
			seen |= reqCreatedAt
		case "seller_id":
			it.SellerID, b, err = readInt(b, "seller_id")
			seen |= reqSellerID
		case "region":
			it.Region, b, err = readInt(b, "region")
			seen |= reqRegion
		case "old_price":
			it.OldPrice, b, err = readFinite(b, "old_price", 0, math.MaxFloat64)
		case "description_len":
			it.DescriptionLen, b, err = readCountF(b, "description_len")
		case "city":
			it.City, b, err = readInt(b, "city")
			it.HasCity = err == nil
		case "lat":
			it.Lat, b, err = readFinite(b, "lat", -90, 90)
		case "lon":
			it.Lon, b, err = readFinite(b, "lon", -180, 180)
		case "updated_at":
			it.UpdatedAt, b, err = readTime(b, "updated_at")
			it.HasUpdatedAt = err == nil
		case "seller_rating":
			it.SellerRating, b, err = readFinite(b, "seller_rating", 0, 5)
		case "seller_reviews":
			it.SellerReviews, b, err = readCountF(b, "seller_reviews")
		case "seller_active_items":
			it.SellerActiveItems, b, err = readCountF(b, "seller_active_items")
		case "seller_is_company":
			bv, b, err = readBool(b, "seller_is_company")
			it.SellerIsCompany = b2f(bv)
		case "photos":
			it.Photos, b, err = readCountF(b, "photos")
		case "has_video":
			bv, b, err = readBool(b, "has_video")
			it.HasVideo = b2f(bv)
		case "delivery":
			bv, b, err = readBool(b, "delivery")
			it.Delivery = b2f(bv)
		case "condition":
			// The known values are ASCII, so a match needs no UTF-8 check;
			// anything else goes through readStr for the right error.
			if l := fixstrSize(b); l > 0 && l <= len(b) && (string(b[1:l]) == "new" || string(b[1:l]) == "used") {
				it.Condition = b2f(l == 4)
				b = b[l:]
				break
			}
			var s []byte
			if s, b, err = readStr(b, "condition"); err == nil {
				switch string(s) {
				case "new":
					it.Condition = 1
				case "used":
					it.Condition = 0
				default:
					err = valueError("condition", `must be "new" or "used", got %q`, s)
				}
			}
		case "vas":
			if l := fixstrSize(b); l > 0 && l <= len(b) {
				if lvl, ok := vasLevel(b[1:l]); ok {
					it.VAS = lvl
					b = b[l:]
					break
				}
			}
			var s []byte
			if s, b, err = readStr(b, "vas"); err == nil {
				var ok bool
				if it.VAS, ok = vasLevel(s); !ok {
					err = valueError("vas", `must be one of "", "highlight", "x2", "x5", "xl", got %q`, s)
				}
			}
		case "impressions_7d":
			it.Impressions7d, b, err = readCountF(b, "impressions_7d")
		case "views_7d":
			it.Views7d, b, err = readCountF(b, "views_7d")
		case "contacts_7d":
			it.Contacts7d, b, err = readCountF(b, "contacts_7d")
		case "favorites_7d":
			it.Favorites7d, b, err = readCountF(b, "favorites_7d")
		case "views_total":
			it.ViewsTotal, b, err = readCountF(b, "views_total")
		default:
			b, err = skip(b, "")
			if err != nil {
				err.Key = string(k)
			}
		}
		if err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return valueError("", "%d trailing bytes after the record", len(b))
	}
	if seen != reqAllItem {
		for _, r := range requiredItemKeys {
			if seen&r.bit == 0 {
				return valueError(r.name, "required key is missing")
			}
		}
	}
	return nil
}

func readCountF(b []byte, key string) (float64, []byte, *InputError) {
	v, o, err := readCount(b, key)
	return float64(v), o, err
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
