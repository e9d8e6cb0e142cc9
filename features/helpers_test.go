package features

import (
	"math"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// kv is an ordered map literal for building MessagePack test records.
type kv []struct {
	K string
	V any
}

func pack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := appendValue(nil, v)
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	return b
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case kv:
		b = msgp.AppendMapHeader(b, uint32(len(x)))
		for _, e := range x {
			b = msgp.AppendString(b, e.K)
			var err error
			if b, err = appendValue(b, e.V); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[int64]float64:
		b = msgp.AppendMapHeader(b, uint32(len(x)))
		for k, w := range x {
			b = msgp.AppendInt64(b, k)
			b = msgp.AppendFloat64(b, w)
		}
		return b, nil
	case map[int64]int64:
		b = msgp.AppendMapHeader(b, uint32(len(x)))
		for k, w := range x {
			b = msgp.AppendInt64(b, k)
			b = msgp.AppendInt64(b, w)
		}
		return b, nil
	case []any:
		b = msgp.AppendArrayHeader(b, uint32(len(x)))
		for _, e := range x {
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case []byte:
		return append(b, x...), nil // pre-encoded raw MessagePack
	default:
		return msgp.AppendIntf(b, v)
	}
}

func baseItem() kv {
	return kv{
		{"id", int64(42)}, {"title", "Диван угловой IKEA"}, {"category", 3}, {"subcategory", 31},
		{"price", 1500.5}, {"created_at", int64(1_767_000_000)}, {"seller_id", int64(7)}, {"region", 5},
	}
}

func baseUser() kv {
	return kv{{"user_id", int64(1)}, {"now", int64(1_767_225_600)}}
}

// with returns a copy of r with key k set to v (replaced in place, or
// appended); a nil v encodes MessagePack nil.
func with(r kv, k string, v any) kv {
	out := append(kv{}, r...)
	for i := range out {
		if out[i].K == k {
			out[i].V = v
			return out
		}
	}
	return append(out, struct {
		K string
		V any
	}{k, v})
}

func without(r kv, k string) kv {
	out := kv{}
	for _, e := range r {
		if e.K != k {
			out = append(out, e)
		}
	}
	return out
}

func sameFloat32(a, b float32) bool {
	return a == b || (math.IsNaN(float64(a)) && math.IsNaN(float64(b)))
}

// decodeItemAlone decodes one item record, its title split into a
// tokenizer of its own.
func decodeItemAlone(b []byte, it *Item) *InputError {
	var t tokenizer
	return decodeItem(b, it, &t)
}

// decodeUser decodes a user context; errors carry Position UserPosition.
func decodeUser(b []byte) (*User, error) {
	u := new(User)
	if err := decodeUserInto(b, u); err != nil {
		err.Position = UserPosition
		return nil, err
	}
	return u, nil
}

// tokenize returns the lowercase tokens of s (see tokenize.go's rule).
func tokenize(s string) []string {
	var t tokenizer
	t.split([]byte(s))
	out := make([]string, t.n())
	for i := range out {
		out[i] = string(t.token(i))
	}
	return out
}
