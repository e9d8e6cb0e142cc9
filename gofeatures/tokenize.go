package gofeatures

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

// tokenizer splits text into lowercase tokens, reusing its buffers across
// calls so that a worker tokenizes thousands of titles without allocating.
type tokenizer struct {
	buf   []byte // the tokens' bytes, back to back
	ends  []int  // end offset of each token in buf
	runes int    // characters in the text split last
}

func (t *tokenizer) split(s []byte) {
	t.buf = t.buf[:0]
	t.ends = t.ends[:0]
	t.runes = 0
	in := false
	for i := 0; i < len(s); {
		t.runes++
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				t.buf = append(t.buf, c)
				in = true
			case 'A' <= c && c <= 'Z':
				t.buf = append(t.buf, c+('a'-'A'))
				in = true
			default:
				if in {
					t.ends = append(t.ends, len(t.buf))
					in = false
				}
			}
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		i += size
		// Basic Cyrillic А..я is all letters with a fixed case offset: most
		// of the catalogue's titles, so skip the Unicode table lookups.
		if r >= 0x410 && r <= 0x44f {
			if r < 0x430 {
				r += 0x20
			}
			t.buf = utf8.AppendRune(t.buf, r)
			in = true
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
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
}

func (t *tokenizer) n() int { return len(t.ends) }

func (t *tokenizer) token(i int) []byte {
	start := 0
	if i > 0 {
		start = t.ends[i-1]
	}
	return t.buf[start:t.ends[i]]
}

// Tokenize returns the lowercase tokens of s (see the rule above).
func Tokenize(s string) []string {
	var t tokenizer
	t.split([]byte(s))
	out := make([]string, t.n())
	for i := range out {
		out[i] = string(t.token(i))
	}
	return out
}
