package features

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// The decoders must turn any byte string into either a value or an
// *InputError: never a panic, a hang or an allocation sized by a header.

func seedCorpus(f *testing.F) {
	f.Add(pack(f, baseItem()))
	f.Add(pack(f, with(with(baseItem(), "lat", 55.7), "vas", "xl")))
	f.Add(pack(f, with(baseUser(), "views", []any{[]any{1, 2, 3, 4, 5.5, 6}})))
	f.Add(pack(f, with(baseItem(), "created_at", int64(1_767_000_000_000)))) // milliseconds: refused
	f.Add(pack(f, with(baseUser(), "interests", map[int64]float64{1: 0.5})))
	f.Add(pack(f, with(baseUser(), "queries", []any{"Диван", "二手"})))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
}

func FuzzDecodeItem(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var it Item
		_ = decodeItemAlone(b, &it)
	})
}

func FuzzDecodeUser(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := decodeUser(b)
		var ie *InputError
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("non-input error %T: %v", err, err)
		}
	})
}

// FuzzCompute feeds the same bytes as the user context and as an item.
func FuzzCompute(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		user := pack(t, with(baseUser(), "queries", []any{"диван"}))
		items := Concat([][]byte{b, pack(t, baseItem())})
		out := make([]float32, 2*NumFeatures)
		_ = Compute(user, items, nil, 2, out)
		_ = Compute(b, items, nil, 1, out)
	})
}

// FuzzFastPaths checks the inline readers against msgp's: whatever the
// bytes, both must read the same value and leave the same remainder, or
// both fail.
func FuzzFastPaths(f *testing.F) {
	for _, b := range [][]byte{
		{0x05}, {0x7f}, {0xcc, 0xff}, {0xcd, 0x01, 0x02}, {0xce, 0x80, 0, 0, 1}, {0xce, 1, 2},
		{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, {0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe},
		{0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18}, {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}, {0xcb, 1},
		{0xca, 0x3f, 0x80, 0, 0}, {0xc2}, {0xc3}, {0xc0}, {0xa3, 'a', 'b', 'c'}, {0xa3, 'a'}, {0xa0},
		{0xd9, 2, 'h', 'i'}, {0xe0}, {},
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		same := func(what string, v1, v2 any, o1, o2 []byte, e1, e2 *InputError) {
			t.Helper()
			if (e1 == nil) != (e2 == nil) || (e1 != nil && e1.Error() != e2.Error()) {
				t.Fatalf("%s(% x): errors differ: %v vs %v", what, b, e1, e2)
			}
			if e1 == nil && (!bytes.Equal(o1, o2) || len(o1) != len(o2) || fmt.Sprint(v1) != fmt.Sprint(v2)) {
				t.Fatalf("%s(% x): got %v, rest % x; msgp reads %v, rest % x", what, b, v1, o1, v2, o2)
			}
		}
		i1, o1, e1 := readInt(b, "k")
		i2, o2, e2 := readIntMsgp(b, "k")
		same("readInt", i1, i2, o1, o2, e1, e2)
		f1, o1, e1 := readNumber(b, "k")
		f2, o2, e2 := readNumberMsgp(b, "k")
		same("readNumber", math.Float64bits(f1), math.Float64bits(f2), o1, o2, e1, e2)
		k1, o1, e1 := readKey(b)
		k2, o2, e2 := readKeyMsgp(b)
		same("readKey", string(k1), string(k2), o1, o2, e1, e2)
		b1, o1, e1 := readBool(b, "k")
		v, o2, err := msgp.ReadBoolBytes(b)
		var e3 *InputError
		if err != nil {
			e3 = e1 // the error text is readBool's own; only success must agree
			if e1 == nil {
				t.Fatalf("readBool(% x) = %v, msgp fails: %v", b, b1, err)
			}
		}
		same("readBool", b1, v, o1, o2, e1, e3)
	})
}
