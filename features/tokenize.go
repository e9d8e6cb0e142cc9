package features

import (
	"unicode"
	"unicode/utf8"
)

// Tokenization is defined once, here, and mirrored by pyfeat.reference:
// a token is a maximal run of letters (Unicode category L) and decimal
// digits (Nd); every other character separates tokens; each character is
// lowercased with Unicode's simple (one-to-one) case mapping. Simple mapping
// keeps a token's length in characters and makes "İ" -> "i", as Go's
// unicode.ToLower does.

// asciiToken maps an ASCII letter or digit to its lowercase form, and every
// other ASCII byte to 0 (a separator).
var asciiToken = func() (t [utf8.RuneSelf]byte) {
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c
	}
	for c := byte('a'); c <= 'z'; c++ {
		t[c] = c
		t[c-'a'+'A'] = c
	}
	return
}()

// The CJK Unified Ideographs block: every code point in it is a letter
// (category Lo) without case, as TestCJKBlock checks against the tables.
const cjkFirst, cjkLast = 0x4e00, 0x9fff

// tokenizer splits text into lowercase tokens, reusing its buffers across
// calls so that a worker tokenizes thousands of titles without allocating.
type tokenizer struct {
	buf   []byte // the tokens' bytes, back to back
	ends  []int  // end offset of each token in buf
	runes int    // characters in the text split last
}

// split tokenizes s and reports whether s is valid UTF-8 (callers that
// need validity get it from the same pass).
func (t *tokenizer) split(s []byte) bool {
	t.buf = t.buf[:0]
	t.ends = t.ends[:0]
	t.runes = 0
	in, valid := false, true
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			t.runes++
			i++
			if l := asciiToken[c]; l != 0 {
				t.buf = append(t.buf, l)
				in = true
			} else if in {
				t.ends = append(t.ends, len(t.buf))
				in = false
			}
			continue
		}
		// Basic Cyrillic А..я (U+0410..U+044F) is two bytes, D0 90..D1 8F:
		// all letters with a fixed case offset, and most of the catalogue's
		// titles, so it skips the generic decoder and the Unicode tables.
		if (c == 0xd0 || c == 0xd1) && i+1 < len(s) {
			if c1 := s[i+1]; c1&0xc0 == 0x80 {
				r := rune(c&0x1f)<<6 | rune(c1&0x3f)
				if r >= 0x410 && r <= 0x44f {
					if r < 0x430 {
						r += 0x20
					}
					t.buf = append(t.buf, byte(0xc0|r>>6), byte(0x80|r&0x3f))
					t.runes++
					i += 2
					in = true
					continue
				}
			}
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			valid = false
		}
		i += size
		t.runes++
		if r >= cjkFirst && r <= cjkLast { // letters without case: no table lookups
			t.buf = append(t.buf, s[i-size:i]...)
			in = true
		} else if unicode.IsLetter(r) || unicode.IsDigit(r) {
			t.buf = utf8.AppendRune(t.buf, unicode.ToLower(r))
			in = true
		} else if in {
			t.ends = append(t.ends, len(t.buf))
			in = false
		}
	}
	if in {
		t.ends = append(t.ends, len(t.buf))
	}
	return valid
}

func (t *tokenizer) n() int { return len(t.ends) }

func (t *tokenizer) token(i int) []byte {
	start := 0
	if i > 0 {
		start = t.ends[i-1]
	}
	return t.buf[start:t.ends[i]]
}
