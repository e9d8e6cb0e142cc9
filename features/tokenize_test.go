package features

import (
	"reflect"
	"testing"
	"unicode"
	"unicode/utf8"
)

// slowTokens is the tokenization rule written plainly: the tokenizer's
// ASCII and Cyrillic fast paths must agree with it on every input.
func slowTokens(s []byte) ([]string, int, bool) {
	var toks []string
	var cur []rune
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		i += size
		n++
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			cur = append(cur, unicode.ToLower(r))
		} else if len(cur) > 0 {
			toks = append(toks, string(cur))
			cur = nil
		}
	}
	if len(cur) > 0 {
		toks = append(toks, string(cur))
	}
	return toks, n, utf8.Valid(s)
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"iPhone 13 Pro, 128ГБ!", "Диван УГЛОВОЙ (б/у) Ёлка ёж", "二手 自行车", "\xd0", "\xd0\x90\xff", "İSTANBUL", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		var tk tokenizer
		valid := tk.split(s)
		got := make([]string, tk.n())
		for i := range got {
			got[i] = string(tk.token(i))
		}
		want, runes, wantValid := slowTokens(s)
		if len(want) == 0 {
			want = []string{}
		}
		if !reflect.DeepEqual(got, want) || tk.runes != runes || valid != wantValid {
			t.Fatalf("split(%q) = %q, %d runes, valid %v; want %q, %d, %v", s, got, tk.runes, valid, want, runes, wantValid)
		}
	})
}

func TestCJKBlock(t *testing.T) {
	for r := rune(cjkFirst); r <= cjkLast; r++ {
		if !unicode.IsLetter(r) || unicode.ToLower(r) != r {
			t.Fatalf("U+%04X is not a caseless letter in Go's tables", r)
		}
	}
}
