package features

import "unsafe"

// Decoded is an item record decoded once and kept, for a cache: the exact
// bytes it was decoded from (Item.Title points into them, and a logged
// request records them), the decoded fields and the title's tokens. It is
// immutable once built, so any number of requests may read it at once; a
// changed record is a new Decoded.
type Decoded struct {
	Item Item
	Raw  []byte
	tok  tokenizer
}

// decodedOverhead is what a Decoded costs besides its variable-length
// buffers: the struct itself and the slice headers it holds.
const decodedOverhead = int(unsafe.Sizeof(Decoded{}))

// DecodeOwned decodes one item record into a new Decoded, copying raw (the
// caller's buffer may go away). The error's Position is left for the caller.
func DecodeOwned(raw []byte) (*Decoded, *InputError) {
	d := &Decoded{Raw: append([]byte(nil), raw...)}
	var tok tokenizer
	if err := decodeItem(d.Raw, &d.Item, &tok); err != nil {
		return nil, err
	}
	// Exact-size copies: a cache holds many of these for a long time.
	d.tok.buf = append([]byte(nil), tok.buf...)
	d.tok.ends = append([]int(nil), tok.ends...)
	d.tok.runes = tok.runes
	return d, nil
}

// Size is the memory the record holds, in bytes, for a cache's accounting.
func (d *Decoded) Size() int {
	return decodedOverhead + cap(d.Raw) + cap(d.tok.buf) + cap(d.tok.ends)*int(unsafe.Sizeof(int(0)))
}
