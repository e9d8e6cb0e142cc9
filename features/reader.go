package features

import (
	"encoding/binary"
	"math"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"
)

// The readers below wrap msgp's zero-copy byte readers with the type rules of
// DESIGN.md, "Inputs": ints are accepted wherever a float is, floats never where an int
// is, strings must be UTF-8. Each returns the remaining bytes.

// Fast paths: msgp decodes every value, except that the encodings the item
// store writes for nearly every key and number (a fixstr key; a positive
// fixint, uint16 or uint32; a float64) are read inline first. Decoding them
// through msgp's general readers (a call, a type switch, an error interface
// per value) was a third of the engine's time. Anything else, and every
// error, goes through msgp; FuzzFastPaths checks the two agree.

func readInt(b []byte, key string) (int64, []byte, *InputError) {
	if v, n := uintFast(b); n > 0 {
		return v, b[n:], nil
	}
	return readIntMsgp(b, key)
}

// uintFast reads a positive fixint, a uint8, uint16 or uint32 (ids,
// timestamps and counts) and returns it with its encoded size, or size 0
// for anything else. It is small enough to inline.
func uintFast(b []byte) (int64, int) {
	if len(b) >= 5 {
		switch b[0] {
		case 0xce:
			return int64(binary.BigEndian.Uint32(b[1:5])), 5
		case 0xcd:
			return int64(binary.BigEndian.Uint16(b[1:3])), 3
		case 0xcc:
			return int64(b[1]), 2
		}
	}
	if len(b) > 0 && b[0] <= 0x7f {
		return int64(b[0]), 1
	}
	return 0, 0
}

func readIntMsgp(b []byte, key string) (int64, []byte, *InputError) {
	v, o, err := msgp.ReadInt64Bytes(b)
	if err != nil {
		return 0, nil, intError(b, key, err)
	}
	return v, o, nil
}

func intError(b []byte, key string, err error) *InputError {
	switch msgp.NextType(b) {
	case msgp.IntType, msgp.UintType:
		var ie msgp.IntOverflow
		var ue msgp.UintOverflow
		if asIntOverflow(err, &ie, &ue) {
			return valueError(key, "integer out of int64 range")
		}
		return fieldError(key, b, err)
	}
	if len(b) == 0 {
		return valueError(key, "truncated MessagePack")
	}
	return typeError(key, "int", b)
}

func asIntOverflow(err error, ie *msgp.IntOverflow, ue *msgp.UintOverflow) bool {
	switch e := err.(type) {
	case msgp.IntOverflow:
		*ie = e
		return true
	case msgp.UintOverflow:
		*ue = e
		return true
	}
	return false
}

// readNumber reads an int or a float as float64. The value may be NaN or
// infinite; callers that need a finite value check it.
func readNumber(b []byte, key string) (float64, []byte, *InputError) {
	if len(b) >= 9 && b[0] == 0xcb {
		return math.Float64frombits(binary.BigEndian.Uint64(b[1:9])), b[9:], nil
	}
	if v, n := uintFast(b); n > 0 {
		return float64(v), b[n:], nil
	}
	return readNumberMsgp(b, key)
}

func readNumberMsgp(b []byte, key string) (float64, []byte, *InputError) {
	if len(b) > 0 {
		switch lead := b[0]; {
		case lead == 0xcb || lead == 0xca: // float64, float32
			v, o, err := msgp.ReadFloat64Bytes(b)
			if err != nil {
				return 0, nil, fieldError(key, b, err)
			}
			return v, o, nil
		case lead == 0xcf: // uint64: above the int64 range it is still a number
			u, o, err := msgp.ReadUint64Bytes(b)
			if err != nil {
				return 0, nil, fieldError(key, b, err)
			}
			return float64(u), o, nil
		}
		if v, o, err := msgp.ReadInt64Bytes(b); err == nil {
			return float64(v), o, nil
		} else if t := msgp.NextType(b); t == msgp.IntType || t == msgp.UintType {
			return 0, nil, fieldError(key, b, err)
		}
		return 0, nil, typeError(key, "a number", b)
	}
	return 0, nil, valueError(key, "truncated MessagePack")
}

// readFinite reads a number and requires it to be finite and within [lo, hi].
func readFinite(b []byte, key string, lo, hi float64) (float64, []byte, *InputError) {
	v, o, err := readNumber(b, key)
	if err != nil {
		return 0, nil, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, nil, valueError(key, "must be a finite number, got %v", v)
	}
	if v < lo || v > hi {
		if hi == math.MaxFloat64 {
			return 0, nil, valueError(key, "must be >= %v, got %v", lo, v)
		}
		return 0, nil, valueError(key, "must be in [%v, %v], got %v", lo, hi, v)
	}
	return v, o, nil
}

// readCount reads a non-negative int.
func readCount(b []byte, key string) (int64, []byte, *InputError) {
	if v, n := uintFast(b); n > 0 {
		return v, b[n:], nil
	}
	v, o, err := readIntMsgp(b, key)
	if err != nil {
		return 0, nil, err
	}
	if v < 0 {
		return 0, nil, valueError(key, "must be >= 0, got %d", v)
	}
	return v, o, nil
}

func readBool(b []byte, key string) (bool, []byte, *InputError) {
	if len(b) > 0 && b[0]&0xfe == 0xc2 {
		return b[0] == 0xc3, b[1:], nil
	}
	if msgp.NextType(b) != msgp.BoolType {
		if len(b) == 0 {
			return false, nil, valueError(key, "truncated MessagePack")
		}
		return false, nil, typeError(key, "bool", b)
	}
	v, o, err := msgp.ReadBoolBytes(b)
	if err != nil {
		return false, nil, fieldError(key, b, err)
	}
	return v, o, nil
}

// readStr returns a slice into b (zero copy): it is valid only while the
// caller's input buffer is, i.e. for the duration of one call.
func readStr(b []byte, key string) ([]byte, []byte, *InputError) {
	s, o, err := readKey(b)
	if err != nil {
		err.Key = key
		return nil, nil, err
	}
	if !utf8.Valid(s) {
		return nil, nil, valueError(key, "string is not valid UTF-8")
	}
	return s, o, nil
}

// readKey reads a map key without UTF-8 validation: keys are only compared
// with the ASCII names we know, so an invalid key is simply an unknown one.
func readKey(b []byte) ([]byte, []byte, *InputError) {
	if n := fixstrSize(b); n > 0 && n <= len(b) {
		return b[1:n], b[n:], nil
	}
	return readKeyMsgp(b)
}

// fixstrSize is the encoded size of the fixstr (a string of up to 31
// bytes) that b starts with, or 0 if it starts with something else.
func fixstrSize(b []byte) int {
	if len(b) > 0 && b[0]&0xe0 == 0xa0 {
		return int(b[0]&0x1f) + 1
	}
	return 0
}

func readKeyMsgp(b []byte) ([]byte, []byte, *InputError) {
	s, o, err := msgp.ReadStringZC(b)
	if err != nil {
		return nil, nil, keyError(b, err)
	}
	return s, o, nil
}

func keyError(b []byte, err error) *InputError {
	if len(b) == 0 {
		return valueError("", "truncated MessagePack")
	}
	if msgp.NextType(b) != msgp.StrType {
		return typeError("", "str", b)
	}
	return fieldError("", b, err)
}

func readMapHeader(b []byte, key string) (uint32, []byte, *InputError) {
	if msgp.NextType(b) != msgp.MapType {
		if len(b) == 0 {
			return 0, nil, valueError(key, "truncated MessagePack")
		}
		return 0, nil, typeError(key, "map", b)
	}
	n, o, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return 0, nil, fieldError(key, b, err)
	}
	return n, o, nil
}

func readArrayHeader(b []byte, key string) (uint32, []byte, *InputError) {
	if msgp.NextType(b) != msgp.ArrayType {
		if len(b) == 0 {
			return 0, nil, valueError(key, "truncated MessagePack")
		}
		return 0, nil, typeError(key, "array", b)
	}
	n, o, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return 0, nil, fieldError(key, b, err)
	}
	return n, o, nil
}

// capHint bounds a preallocation by what the remaining bytes could possibly
// hold, so a header that claims 4 billion entries cannot make us allocate.
func capHint(n uint32, remaining []byte, minElemBytes int) int {
	limit := len(remaining) / minElemBytes
	if int(n) < limit {
		return int(n)
	}
	return limit
}

func skip(b []byte, key string) ([]byte, *InputError) {
	o, err := msgp.Skip(b)
	if err != nil {
		return nil, fieldError(key, b, err)
	}
	return o, nil
}

func isNil(b []byte) bool { return len(b) > 0 && b[0] == 0xc0 }
