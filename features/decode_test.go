package features

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

func TestDecodeItemRejects(t *testing.T) {
	nanBytes := []byte{0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0} // float64 NaN
	cases := []struct {
		name      string
		blob      []byte
		key       string
		wrongType bool
		msg       string
	}{
		{"not a map", pack(t, []any{1, 2}), "", true, "not a map"},
		{"empty", nil, "", false, "truncated"},
		{"truncated", pack(t, baseItem())[:20], "title", false, "truncated"},
		{"missing id", pack(t, without(baseItem(), "id")), "id", false, "missing"},
		{"missing price", pack(t, without(baseItem(), "price")), "price", false, "missing"},
		{"nil required", pack(t, with(baseItem(), "region", nil)), "region", false, "nil"},
		{"price as str", pack(t, with(baseItem(), "price", "100")), "price", true, "expected a number, got str"},
		{"negative price", pack(t, with(baseItem(), "price", -1.0)), "price", false, ">= 0"},
		{"NaN price", pack(t, with(baseItem(), "price", nanBytes)), "price", false, "finite"},
		{"inf price", pack(t, with(baseItem(), "price", math.Inf(1))), "price", false, "finite"},
		{"float id", pack(t, with(baseItem(), "id", 1.5)), "id", true, "expected int, got float"},
		{"title not str", pack(t, with(baseItem(), "title", 5)), "title", true, "str"},
		{"bad utf8", pack(t, with(baseItem(), "title", []byte{0xa3, 0xff, 0xfe, 0x41})), "title", false, "UTF-8"},
		{"bool as int", pack(t, with(baseItem(), "has_video", 1)), "has_video", true, "bool"},
		{"bad condition", pack(t, with(baseItem(), "condition", "broken")), "condition", false, `"new" or "used"`},
		{"bad vas", pack(t, with(baseItem(), "vas", "x3")), "vas", false, "one of"},
		{"rating range", pack(t, with(baseItem(), "seller_rating", 5.5)), "seller_rating", false, "[0, 5]"},
		{"lat range", pack(t, with(baseItem(), "lat", 91.0)), "lat", false, "[-90, 90]"},
		{"negative counter", pack(t, with(baseItem(), "views_7d", -3)), "views_7d", false, ">= 0"},
		{"trailing bytes", append(pack(t, baseItem()), 0x01), "", false, "trailing"},
		{"map of 4 billion", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa2, 'i', 'd', 0x01}, "", false, "truncated"},
		{"non-string key", append([]byte{0x81, 0x01}, 0x02), "", true, "map key"},
		{"uint64 id overflow", pack(t, with(baseItem(), "id", uint64(math.MaxUint64))), "id", false, "int64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var it Item
			err := decodeItemAlone(c.blob, &it)
			if err == nil {
				t.Fatalf("accepted %x", c.blob)
			}
			if err.Key != c.key || err.WrongType != c.wrongType || !strings.Contains(err.Msg, c.msg) {
				t.Fatalf("got key=%q wrongType=%v msg=%q; want key=%q wrongType=%v msg~%q",
					err.Key, err.WrongType, err.Msg, c.key, c.wrongType, c.msg)
			}
		})
	}
}

func TestDecodeItemOptional(t *testing.T) {
	var it Item
	rec := with(with(with(baseItem(), "old_price", nil), "unknown_key", kv{{"nested", []any{1, "x"}}}), "photos", 3)
	if err := decodeItemAlone(pack(t, rec), &it); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(it.OldPrice) || it.Photos != 3 || it.ID != 42 || string(it.Title) != "Диван угловой IKEA" {
		t.Fatalf("decoded %+v", it)
	}
	// price may be an int
	if err := decodeItemAlone(pack(t, with(baseItem(), "price", 0)), &it); err != nil || it.Price != 0 {
		t.Fatalf("int price: %v %v", err, it.Price)
	}
}

func TestDecodeUserRejects(t *testing.T) {
	cases := []struct {
		name string
		rec  any
		key  string
		msg  string
	}{
		{"missing now", without(baseUser(), "now"), "now", "missing"},
		{"missing user_id", without(baseUser(), "user_id"), "user_id", "missing"},
		{"now negative", with(baseUser(), "now", -5), "now", "unix seconds"},
		{"views row short", with(baseUser(), "views", []any{[]any{1, 2, 3, 4, 5, 6}, []any{1, 2, 3, 4, 5}}), "views[1]", "6 values"},
		{"views row not array", with(baseUser(), "views", []any{7}), "views[0]", "expected array"},
		{"views price str", with(baseUser(), "views", []any{[]any{1, 2, 3, 4, "5", 6}}), "views[0][4]", "number"},
		{"contacts row", with(baseUser(), "contacts", []any{[]any{1, 2}}), "contacts[0]", "3 values"},
		{"interest out of range", with(baseUser(), "interests", map[int64]float64{3: 1.5}), "interests[3]", "[0, 1]"},
		{"favorites str", with(baseUser(), "favorites", []any{1, "2"}), "favorites[1]", "int"},
		{"queries int", with(baseUser(), "queries", []any{"ok", 5}), "queries[1]", "str"},
		{"impressions negative", with(baseUser(), "impressions", map[int64]int64{9: -1}), "impressions[9]", ">= 0"},
		{"platform", with(baseUser(), "platform", "tv"), "platform", "web"},
		{"tz", with(baseUser(), "tz_offset_min", 5000), "tz_offset_min", "1440"},
		{"views header 4 billion", with(baseUser(), "views", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}), "views[0]", "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeUser(pack(t, c.rec))
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an InputError", err)
			}
			if ie.Position != UserPosition || ie.Key != c.key || !strings.Contains(ie.Msg, c.msg) {
				t.Fatalf("got pos=%d key=%q msg=%q; want key=%q msg~%q", ie.Position, ie.Key, ie.Msg, c.key, c.msg)
			}
		})
	}
}

func TestComputeFirstErrorWins(t *testing.T) {
	good := pack(t, baseItem())
	bad := pack(t, with(baseItem(), "price", -1))
	recs := make([][]byte, 1000)
	for i := range recs {
		recs[i] = good
	}
	recs[700] = bad
	recs[130] = bad
	recs[999] = bad
	out := make([]float32, len(recs)*NumFeatures)
	for trial := 0; trial < 20; trial++ {
		err := Compute(pack(t, baseUser()), Concat(recs), nil, 4, out)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Position != 130 {
			t.Fatalf("trial %d: got %v, want the error of item 130", trial, err)
		}
	}
}

func TestComputeCandidatesValidation(t *testing.T) {
	recs := Concat([][]byte{pack(t, baseItem()), pack(t, baseItem())})
	out := make([]float32, 2*NumFeatures)
	err := Compute(pack(t, baseUser()), recs, &Candidates{Source: []int64{1, 9}}, 1, out)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Position != 1 || ie.Key != "candidates.source" {
		t.Fatalf("got %v", err)
	}
	err = Compute(pack(t, baseUser()), recs, &Candidates{Score: []float64{1}}, 1, out)
	if !errors.As(err, &ie) || ie.Key != "candidates.source_score" {
		t.Fatalf("got %v", err)
	}
	if err := Compute(pack(t, baseUser()), recs, nil, 1, out[:5]); err == nil {
		t.Fatal("accepted a short output buffer")
	}
}

// wideRecord encodes r with the widest encodings (str8 keys and strings,
// int64 ints), which the inline fast paths leave to msgp.
func wideRecord(r kv) []byte {
	str8 := func(b []byte, s string) []byte {
		return append(append(b, 0xd9, byte(len(s))), s...)
	}
	b := msgp.AppendMapHeader(nil, uint32(len(r)))
	for _, e := range r {
		b = str8(b, e.K)
		switch v := e.V.(type) {
		case string:
			b = str8(b, v)
		case int:
			b = binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
		case int64:
			b = binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
		default:
			b, _ = msgp.AppendIntf(b, v)
		}
	}
	return b
}

// The fast paths and msgp must decode the same record to the same item,
// whatever encodings the store chose.
func TestDecodeItemEncodingsAgree(t *testing.T) {
	rec := with(with(with(with(with(with(with(baseItem(), "condition", "used"), "vas", "x5"),
		"photos", 200), "views_total", 70000), "description_len", 12), "seller_is_company", true), "lat", 55)
	for _, r := range []kv{rec, with(rec, "condition", "new"), with(rec, "vas", "")} {
		var fast, wide Item
		if err := decodeItemAlone(pack(t, r), &fast); err != nil {
			t.Fatal(err)
		}
		if err := decodeItemAlone(wideRecord(r), &wide); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", fast) != fmt.Sprintf("%+v", wide) {
			t.Fatalf("encodings disagree:\n%+v\n%+v", fast, wide)
		}
	}
	var it Item
	if err := decodeItemAlone(wideRecord(with(baseItem(), "condition", "mint")), &it); err == nil || err.Key != "condition" {
		t.Fatalf("want a condition error, got %v", err)
	}
	if err := decodeItemAlone(wideRecord(with(baseItem(), "vas", "x9")), &it); err == nil || err.Key != "vas" {
		t.Fatalf("want a vas error, got %v", err)
	}
}
