package features

import (
	"reflect"
	"regexp"
	"testing"
)

func TestCatalogue(t *testing.T) {
	if NumFeatures < 60 {
		t.Fatalf("only %d features", NumFeatures)
	}
	name := regexp.MustCompile(`^(item|src|user|ux)_[a-z0-9_]+$`)
	prefix := map[string]string{"item": "item_", "source": "src_", "user": "user_", "user_item": "ux_"}
	seen := map[string]bool{}
	for i, f := range Catalogue {
		if f.Name == "" || f.Def == "" {
			t.Fatalf("column %d has no catalogue entry", i)
		}
		if !name.MatchString(f.Name) || seen[f.Name] {
			t.Fatalf("column %d: bad or duplicate name %q", i, f.Name)
		}
		p, ok := prefix[f.Group]
		if !ok || f.Name[:len(p)] != p {
			t.Fatalf("%s: group %q does not match its prefix", f.Name, f.Group)
		}
		seen[f.Name] = true
	}
	if h := SpecHash(); len(h) != 16 || SpecHash() != h {
		t.Fatal("spec hash: not 16 hex digits, or not the same on every call")
	}
}

func TestTokenize(t *testing.T) {
	cases := map[string][]string{
		"iPhone 13 Pro, 128ГБ!":   {"iphone", "13", "pro", "128гб"},
		"Диван УГЛОВОЙ (б/у)":     {"диван", "угловой", "б", "у"},
		"二手 自行车，山地车":              {"二手", "自行车", "山地车"},
		"  ":                      {},
		"snake_case-and.dots":     {"snake", "case", "and", "dots"},
		"İstanbul ΟΔΟΣ straße":    {"istanbul", "οδοσ", "straße"},
		"x²":                      {"x"}, // superscript two is No, not Nd
		"١٢٣ arabic-indic digits": {"١٢٣", "arabic", "indic", "digits"},
		"emoji😀between":           {"emoji", "between"},
	}
	for in, want := range cases {
		got := tokenize(in)
		if len(want) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("tokenize(%q) = %q, want %q", in, got, want)
		}
	}
}
