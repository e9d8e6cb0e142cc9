package features

import (
	"errors"
	"fmt"

	"github.com/tinylib/msgp/msgp"
)

// UserPosition is the Position of an InputError raised by the user context
// rather than by an item record.
const UserPosition = -1

// InputError is a problem with the caller's input: malformed MessagePack, a
// record that is not a map, a missing required key, a value of the wrong type
// or out of range. Position is the item's index in the request, or
// UserPosition for the user context. Key names the offending key (with an
// index path for nested values, e.g. "views[3][4]"); it is empty when the
// problem is the record as a whole.
type InputError struct {
	Position int
	Key      string
	Msg      string
	// WrongType is set when the value has the wrong MessagePack type (the
	// Python binding raises an exception that is also a TypeError).
	WrongType bool
}

func (e *InputError) Error() string {
	where := "user context"
	if e.Position >= 0 {
		where = fmt.Sprintf("item %d", e.Position)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s, key %q: %s", where, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

// fieldError turns an error from the msgp readers into a message a user can
// act on. The position is filled in by the caller of the record decoder.
func fieldError(key string, b []byte, err error) *InputError {
	var te msgp.TypeError
	switch {
	case errors.Is(err, msgp.ErrShortBytes):
		return &InputError{Key: key, Msg: "truncated MessagePack"}
	case errors.As(err, &te):
		return &InputError{Key: key, Msg: fmt.Sprintf("expected %s, got %s", te.Method, te.Encoded), WrongType: true}
	}
	var ie *InputError
	if errors.As(err, &ie) {
		ie.Key = key + ie.Key
		return ie
	}
	if len(b) > 0 {
		return &InputError{Key: key, Msg: fmt.Sprintf("invalid MessagePack (%v)", err)}
	}
	return &InputError{Key: key, Msg: err.Error()}
}

func typeError(key string, want string, b []byte) *InputError {
	return &InputError{Key: key, Msg: fmt.Sprintf("expected %s, got %s", want, typeName(b)), WrongType: true}
}

func valueError(key string, format string, args ...any) *InputError {
	return &InputError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// typeName names the MessagePack type at the head of b in the words a Python
// user knows.
func typeName(b []byte) string {
	switch msgp.NextType(b) {
	case msgp.IntType, msgp.UintType:
		return "int"
	case msgp.Float32Type, msgp.Float64Type:
		return "float"
	case msgp.StrType:
		return "str"
	case msgp.BinType:
		return "bytes"
	case msgp.MapType:
		return "map"
	case msgp.ArrayType:
		return "array"
	case msgp.BoolType:
		return "bool"
	case msgp.NilType:
		return "nil"
	case msgp.InvalidType:
		if len(b) == 0 {
			return "end of data"
		}
		return "invalid MessagePack"
	default:
		return "MessagePack " + msgp.NextType(b).String()
	}
}
