package features

import (
	"fmt"
	"math"
	"slices"
)

// View is one row of the user's view history:
// [item_id, ts, category, subcategory, price, seller_id].
type View struct {
	ItemID      int64
	TS          int64 // unix seconds
	Category    int64
	Subcategory int64
	Price       float64 // currency units
	SellerID    int64
}

// Contact is one row of the user's contacts: [item_id, ts, seller_id].
type Contact struct {
	ItemID   int64
	TS       int64 // unix seconds
	SellerID int64
}

// Weight is one entry of an interest map, kept in first-seen key order so
// that sums over it run in the same order as in the Python reference.
type Weight struct {
	ID     int64
	Weight float64
}

// Impression is one entry of the impressions map: the item and how many
// times it was already shown to the user.
type Impression struct {
	ItemID int64
	Count  int64
}

// User is the decoded user context. Slices of optional keys are nil when the
// key is absent; Queries point into the caller's input buffer.
type User struct {
	UserID int64
	Now    int64 // unix seconds, the request time

	Platform    float64 // 0 web, 1 ios, 2 android, NaN absent
	TZOffsetMin int64
	HasTZ       bool
	Region      int64
	HasRegion   bool
	City        int64
	HasCity     bool
	Lat, Lon    float64 // degrees, NaN absent

	Interests       []Weight // category -> weight in [0, 1]
	HasInterests    bool
	SubInterests    []Weight // subcategory -> weight in [0, 1]
	HasSubInterests bool
	Views           []View // newest first
	HasViews        bool
	Contacts        []Contact
	HasContacts     bool
	Favorites       []int64
	HasFavorites    bool
	Impressions     []Impression // in record order
	HasImpressions  bool
	Queries         [][]byte // newest first
	HasQueries      bool
}

// MaxNow bounds the request time (year ~36812): far beyond any real clock,
// small enough that local-time arithmetic cannot overflow int64.
const MaxNow = 1 << 40

var platforms = map[string]float64{"web": 0, "ios": 1, "android": 2}

// decodeUserInto decodes into u, reusing the memory of its slices.
func decodeUserInto(b []byte, u *User) *InputError {
	nan := math.NaN()
	*u = User{Platform: nan, Lat: nan, Lon: nan,
		Interests: u.Interests[:0], SubInterests: u.SubInterests[:0], Views: u.Views[:0],
		Contacts: u.Contacts[:0], Favorites: u.Favorites[:0], Impressions: u.Impressions[:0],
		Queries: u.Queries[:0]}
	n, b, err := readMapHeader(b, "")
	if err != nil {
		if err.WrongType {
			err.Msg = "record is not a map: " + err.Msg
		}
		return err
	}
	var seenID, seenNow bool
	for i := uint32(0); i < n; i++ {
		var k []byte
		k, b, err = readKey(b)
		if err != nil {
			err.Msg = "map key: " + err.Msg
			return err
		}
		key := string(k) // once per user key, not per item: the allocation is fine
		if isNil(b) {
			if key == "user_id" || key == "now" {
				return valueError(key, "required key is nil")
			}
			b = b[1:]
			continue
		}
		switch key {
		case "user_id":
			u.UserID, b, err = readInt(b, key)
			seenID = true
		case "now":
			u.Now, b, err = readInt(b, key)
			if err == nil && (u.Now < 0 || u.Now > MaxNow) {
				err = valueError(key, "must be unix seconds in [0, 2^40], got %d", u.Now)
			}
			seenNow = true
		case "platform":
			var s []byte
			s, b, err = readStr(b, key)
			if err == nil {
				p, ok := platforms[string(s)]
				if !ok {
					err = valueError(key, `must be "web", "ios" or "android", got %q`, s)
				}
				u.Platform = p
			}
		case "tz_offset_min":
			u.TZOffsetMin, b, err = readInt(b, key)
			if err == nil && (u.TZOffsetMin < -1440 || u.TZOffsetMin > 1440) {
				err = valueError(key, "must be in [-1440, 1440] minutes, got %d", u.TZOffsetMin)
			}
			u.HasTZ = err == nil
		case "region":
			u.Region, b, err = readInt(b, key)
			u.HasRegion = err == nil
		case "city":
			u.City, b, err = readInt(b, key)
			u.HasCity = err == nil
		case "lat":
			u.Lat, b, err = readFinite(b, key, -90, 90)
		case "lon":
			u.Lon, b, err = readFinite(b, key, -180, 180)
		case "interests":
			u.Interests, b, err = readWeights(b, key, u.Interests[:0])
			u.HasInterests = err == nil
		case "sub_interests":
			u.SubInterests, b, err = readWeights(b, key, u.SubInterests[:0])
			u.HasSubInterests = err == nil
		case "views":
			u.Views, b, err = readViews(b, u.Views[:0])
			u.HasViews = err == nil
		case "contacts":
			u.Contacts, b, err = readContacts(b, u.Contacts[:0])
			u.HasContacts = err == nil
		case "favorites":
			u.Favorites, b, err = readIDs(b, key, u.Favorites[:0])
			u.HasFavorites = err == nil
		case "impressions":
			u.Impressions, b, err = readImpressions(b, u.Impressions[:0])
			u.HasImpressions = err == nil
		case "queries":
			u.Queries, b, err = readStrings(b, key, u.Queries[:0])
			u.HasQueries = err == nil
		default:
			b, err = skip(b, key)
		}
		if err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return valueError("", "%d trailing bytes after the record", len(b))
	}
	if !seenID {
		return valueError("user_id", "required key is missing")
	}
	if !seenNow {
		return valueError("now", "required key is missing")
	}
	return nil
}

func idx(key string, i uint32) string { return fmt.Sprintf("%s[%d]", key, i) }

// at prefixes an element error's key with its container and index. Keys are
// built only here, on the error path, so decoding a long history allocates
// no strings.
func at(err *InputError, key string, i uint32) *InputError {
	err.Key = idx(key, i) + err.Key
	return err
}

// readWeights reads a map int -> weight in [0, 1]. A repeated key keeps its
// first position and its last value, as a Python dict built from the same
// map does.
func readWeights(b []byte, key string, out []Weight) ([]Weight, []byte, *InputError) {
	n, b, err := readMapHeader(b, key)
	if err != nil {
		return nil, nil, err
	}
	out = slices.Grow(out, capHint(n, b, 2))
	// A repeated key is found by a scan while the map is short, as interest
	// maps are; a longer one gets an index.
	var pos map[int64]int
	for i := uint32(0); i < n; i++ {
		var id int64
		var w float64
		id, b, err = readInt(b, key+" key")
		if err != nil {
			err.Key = key
			return nil, nil, err
		}
		if isNil(b) {
			return nil, nil, valueError(fmt.Sprint(key, "[", id, "]"), "weight is nil")
		}
		w, b, err = readFinite(b, "", 0, 1)
		if err != nil {
			err.Key = fmt.Sprint(key, "[", id, "]")
			return nil, nil, err
		}
		if j := weightIndex(out, pos, id); j >= 0 {
			out[j].Weight = w
			continue
		}
		if pos == nil && len(out) == 32 {
			pos = make(map[int64]int, capHint(n, b, 2)+len(out))
			for j, o := range out {
				pos[o.ID] = j
			}
		}
		if pos != nil {
			pos[id] = len(out)
		}
		out = append(out, Weight{id, w})
	}
	return out, b, nil
}

// weightIndex is the position of id in out, or -1.
func weightIndex(out []Weight, pos map[int64]int, id int64) int {
	if pos != nil {
		if j, ok := pos[id]; ok {
			return j
		}
		return -1
	}
	for j, o := range out {
		if o.ID == id {
			return j
		}
	}
	return -1
}

func readViews(b []byte, out []View) ([]View, []byte, *InputError) {
	n, b, err := readArrayHeader(b, "views")
	if err != nil {
		return nil, nil, err
	}
	out = slices.Grow(out, capHint(n, b, 7))
	for i := uint32(0); i < n; i++ {
		var m uint32
		m, b, err = readArrayHeader(b, "")
		if err != nil {
			return nil, nil, at(err, "views", i)
		}
		if m != 6 {
			return nil, nil, valueError(idx("views", i), "expected a row of 6 values [item_id, ts, category, subcategory, price, seller_id], got %d", m)
		}
		var v View
		if v.ItemID, b, err = readInt(b, "[0]"); err != nil {
			return nil, nil, at(err, "views", i)
		}
		if v.TS, b, err = readTime(b, "[1]"); err != nil {
			return nil, nil, at(err, "views", i)
		}
		if v.Category, b, err = readInt(b, "[2]"); err != nil {
			return nil, nil, at(err, "views", i)
		}
		if v.Subcategory, b, err = readInt(b, "[3]"); err != nil {
			return nil, nil, at(err, "views", i)
		}
		if v.Price, b, err = readFinite(b, "[4]", 0, math.MaxFloat64); err != nil {
			return nil, nil, at(err, "views", i)
		}
		if v.SellerID, b, err = readInt(b, "[5]"); err != nil {
			return nil, nil, at(err, "views", i)
		}
		out = append(out, v)
	}
	return out, b, nil
}

func readContacts(b []byte, out []Contact) ([]Contact, []byte, *InputError) {
	n, b, err := readArrayHeader(b, "contacts")
	if err != nil {
		return nil, nil, err
	}
	out = slices.Grow(out, capHint(n, b, 4))
	for i := uint32(0); i < n; i++ {
		var m uint32
		m, b, err = readArrayHeader(b, "")
		if err != nil {
			return nil, nil, at(err, "contacts", i)
		}
		if m != 3 {
			return nil, nil, valueError(idx("contacts", i), "expected a row of 3 values [item_id, ts, seller_id], got %d", m)
		}
		var c Contact
		if c.ItemID, b, err = readInt(b, "[0]"); err != nil {
			return nil, nil, at(err, "contacts", i)
		}
		if c.TS, b, err = readTime(b, "[1]"); err != nil {
			return nil, nil, at(err, "contacts", i)
		}
		if c.SellerID, b, err = readInt(b, "[2]"); err != nil {
			return nil, nil, at(err, "contacts", i)
		}
		out = append(out, c)
	}
	return out, b, nil
}

func readIDs(b []byte, key string, out []int64) ([]int64, []byte, *InputError) {
	n, b, err := readArrayHeader(b, key)
	if err != nil {
		return nil, nil, err
	}
	out = slices.Grow(out, capHint(n, b, 1))
	for i := uint32(0); i < n; i++ {
		var v int64
		if v, b, err = readInt(b, ""); err != nil {
			return nil, nil, at(err, key, i)
		}
		out = append(out, v)
	}
	return out, b, nil
}

func readImpressions(b []byte, out []Impression) ([]Impression, []byte, *InputError) {
	n, b, err := readMapHeader(b, "impressions")
	if err != nil {
		return nil, nil, err
	}
	out = slices.Grow(out, capHint(n, b, 2))
	for i := uint32(0); i < n; i++ {
		var id, c int64
		if id, b, err = readInt(b, "impressions"); err != nil {
			return nil, nil, err
		}
		if c, b, err = readCount(b, ""); err != nil {
			err.Key = fmt.Sprint("impressions[", id, "]")
			return nil, nil, err
		}
		out = append(out, Impression{id, c})
	}
	return out, b, nil
}

func readStrings(b []byte, key string, out [][]byte) ([][]byte, []byte, *InputError) {
	n, b, err := readArrayHeader(b, key)
	if err != nil {
		return nil, nil, err
	}
	out = slices.Grow(out, capHint(n, b, 1))
	for i := uint32(0); i < n; i++ {
		var s []byte
		if s, b, err = readStr(b, ""); err != nil {
			return nil, nil, at(err, key, i)
		}
		out = append(out, s)
	}
	return out, b, nil
}
