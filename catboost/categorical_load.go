package catboost

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Reading the categorical parts of a JSON export: categorical_features
// (with one-hot values), ctrs (the CTR features the trees split on) and
// ctr_data (the learned tables, keyed by the CTR's projection and type).

type rawCatFeature struct {
	FeatureIndex     *int     `json:"feature_index"`
	FlatFeatureIndex *int     `json:"flat_feature_index"`
	FeatureID        string   `json:"feature_id"`
	FeatureName      string   `json:"feature_name"`
	Values           []int64  `json:"values"`
	StringValues     []string `json:"string_values"`
}

type rawCombElem struct {
	Element           string   `json:"combination_element"`
	CatFeatureIndex   *int     `json:"cat_feature_index"`
	FloatFeatureIndex *int     `json:"float_feature_index"`
	Border            *float64 `json:"border"`
	Value             *int64   `json:"value"`
}

type rawCtr struct {
	Elements        []rawCombElem `json:"elements"`
	CtrType         string        `json:"ctr_type"`
	PriorNum        *float64      `json:"prior_numerator"`
	PriorDenom      *float64      `json:"prior_denomerator"`
	Shift           *float64      `json:"shift"`
	Scale           *float64      `json:"scale"`
	TargetBorderIdx *int          `json:"target_border_idx"`
	Borders         []float64     `json:"borders"`
}

type rawCtrBase struct {
	Identifier []rawCombElem `json:"identifier"`
	Type       string        `json:"type"`
}

type rawCtrTable struct {
	HashMap            []json.RawMessage `json:"hash_map"`
	HashStride         *int              `json:"hash_stride"`
	CounterDenominator *int64            `json:"counter_denominator"`
}

type ctrType uint8

const (
	ctrBorders ctrType = iota
	ctrBuckets
	ctrMean // BinarizedTargetMeanValue and FloatTargetMeanValue
	ctrCounter
	ctrFeatureFreq
)

func parseCtrType(s string) (ctrType, error) {
	switch s {
	case "Borders":
		return ctrBorders, nil
	case "Buckets":
		return ctrBuckets, nil
	case "BinarizedTargetMeanValue", "FloatTargetMeanValue":
		return ctrMean, nil
	case "Counter":
		return ctrCounter, nil
	case "FeatureFreq":
		return ctrFeatureFreq, nil
	}
	return 0, unsupported("CTR type %q", s)
}

// catFeatureInfo is a categorical feature as read from features_info.
type catFeatureInfo struct {
	name   string
	flat   int
	oneHot []int32 // one-hot values (hashes), in split_index order
}

// projElem is one element of a CTR's feature combination.
type projElem struct {
	kind   byte // 'c' cat feature value, 'f' binarized float, 'o' one-hot exact value
	index  int  // cat or float feature index
	border float32
	value  int32
}

// ctrInfo is one CTR feature from features_info.ctrs.
type ctrInfo struct {
	key                  string // projection and type, as ctr_data keys it
	typ                  ctrType
	proj                 []projElem
	priorNum, priorDenom float32
	shift, scale         float32
	targetBorder         int
	borders              []float32
	splitBase            int
}

// ctrTableInfo is one table of ctr_data.
type ctrTableInfo struct {
	hashes      []uint64
	stride      int     // values per hash after the hash itself
	ints        []int64 // counts, [entry][stride] (not for ctrMean)
	sums        []float32
	counts      []int64
	denominator int64
}

// canonicalKey names a CTR base (projection and type) independently of how
// the JSON spelled it.
func canonicalKey(typ string, elems []rawCombElem) (string, []projElem, error) {
	var b strings.Builder
	b.WriteString(typ)
	proj := make([]projElem, 0, len(elems))
	for i, e := range elems {
		var p projElem
		switch e.Element {
		case "cat_feature_value":
			if e.CatFeatureIndex == nil {
				return "", nil, fmt.Errorf("element %d: missing cat_feature_index", i)
			}
			p = projElem{kind: 'c', index: *e.CatFeatureIndex}
		case "float_feature":
			if e.FloatFeatureIndex == nil || e.Border == nil {
				return "", nil, fmt.Errorf("element %d: missing float_feature_index or border", i)
			}
			if math.IsNaN(*e.Border) {
				return "", nil, fmt.Errorf("element %d: border is NaN", i)
			}
			p = projElem{kind: 'f', index: *e.FloatFeatureIndex, border: float32(*e.Border)}
		case "cat_feature_exact_value":
			if e.CatFeatureIndex == nil || e.Value == nil {
				return "", nil, fmt.Errorf("element %d: missing cat_feature_index or value", i)
			}
			if *e.Value < math.MinInt32 || *e.Value > math.MaxUint32 {
				return "", nil, fmt.Errorf("element %d: value %d is not a 32-bit hash", i, *e.Value)
			}
			p = projElem{kind: 'o', index: *e.CatFeatureIndex, value: int32(*e.Value)}
		default:
			return "", nil, unsupported("CTR combination element %q", e.Element)
		}
		if p.index < 0 {
			return "", nil, fmt.Errorf("element %d: negative feature index %d", i, p.index)
		}
		fmt.Fprintf(&b, "|%c%d:%x:%d", p.kind, p.index, math.Float32bits(p.border), p.value)
		proj = append(proj, p)
	}
	return b.String(), proj, nil
}

func parseCatFeatures(raw json.RawMessage) ([]catFeatureInfo, error) {
	if raw == nil || isNullOrEmpty(raw) {
		return nil, nil
	}
	raws, err := decodeArray[rawCatFeature](raw)
	if err != nil {
		return nil, fmt.Errorf("categorical_features%w", prefixIndexError(err))
	}
	out := make([]catFeatureInfo, len(raws))
	for i, r := range raws {
		if r.FeatureIndex == nil || r.FlatFeatureIndex == nil {
			return nil, fmt.Errorf("categorical_features[%d]: missing feature_index or flat_feature_index", i)
		}
		if *r.FeatureIndex != i {
			return nil, fmt.Errorf("categorical_features[%d]: feature_index %d, want %d (its position)", i, *r.FeatureIndex, i)
		}
		c := catFeatureInfo{name: r.FeatureID, flat: *r.FlatFeatureIndex}
		if c.name == "" {
			c.name = r.FeatureName
		}
		for j, v := range r.Values {
			if v < math.MinInt32 || v > math.MaxUint32 {
				return nil, fmt.Errorf("categorical_features[%d]: values[%d] = %d is not a 32-bit hash", i, j, v)
			}
			c.oneHot = append(c.oneHot, int32(v))
		}
		out[i] = c
	}
	return out, nil
}

func parseCtrs(raw json.RawMessage) ([]ctrInfo, error) {
	if raw == nil || isNullOrEmpty(raw) {
		return nil, nil
	}
	raws, err := decodeArray[rawCtr](raw)
	if err != nil {
		return nil, fmt.Errorf("ctrs%w", prefixIndexError(err))
	}
	out := make([]ctrInfo, len(raws))
	for i, r := range raws {
		c, err := convertCtr(&r)
		if err != nil {
			return nil, fmt.Errorf("ctrs[%d]: %w", i, err)
		}
		out[i] = c
	}
	return out, nil
}

func convertCtr(r *rawCtr) (ctrInfo, error) {
	var c ctrInfo
	typ, err := parseCtrType(r.CtrType)
	if err != nil {
		return c, err
	}
	if len(r.Elements) == 0 {
		return c, errors.New("empty elements")
	}
	key, proj, err := canonicalKey(r.CtrType, r.Elements)
	if err != nil {
		return c, err
	}
	if r.PriorNum == nil || r.PriorDenom == nil || r.Shift == nil || r.Scale == nil || r.TargetBorderIdx == nil {
		return c, errors.New("missing prior_numerator, prior_denomerator, shift, scale or target_border_idx")
	}
	if *r.TargetBorderIdx < 0 {
		return c, fmt.Errorf("negative target_border_idx %d", *r.TargetBorderIdx)
	}
	c = ctrInfo{
		key: key, typ: typ, proj: proj,
		priorNum: float32(*r.PriorNum), priorDenom: float32(*r.PriorDenom),
		shift: float32(*r.Shift), scale: float32(*r.Scale),
		targetBorder: *r.TargetBorderIdx,
	}
	c.borders = make([]float32, len(r.Borders))
	for j, b := range r.Borders {
		if math.IsNaN(b) {
			return c, fmt.Errorf("borders[%d] is NaN", j)
		}
		c.borders[j] = float32(b)
	}
	return c, nil
}

// parseCtrData reads ctr_data into tables by canonical key.
func parseCtrData(raw json.RawMessage) (map[string]*ctrTableInfo, error) {
	out := map[string]*ctrTableInfo{}
	if raw == nil || isNullOrEmpty(raw) {
		return out, nil
	}
	var tables map[string]rawCtrTable
	if err := json.Unmarshal(raw, &tables); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range tables {
			if !yield(k) {
				return
			}
		}
	}) {
		t, err := convertCtrTable(name, tables[name])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		out[t.key] = t.table
	}
	return out, nil
}

type keyedTable struct {
	key   string
	table *ctrTableInfo
}

func convertCtrTable(name string, r rawCtrTable) (keyedTable, error) {
	var base rawCtrBase
	if err := json.Unmarshal([]byte(name), &base); err != nil {
		return keyedTable{}, fmt.Errorf("key is not a CTR description: %w", err)
	}
	typ, err := parseCtrType(base.Type)
	if err != nil {
		return keyedTable{}, err
	}
	key, _, err := canonicalKey(base.Type, base.Identifier)
	if err != nil {
		return keyedTable{}, err
	}
	if r.HashStride == nil || *r.HashStride < 2 || *r.HashStride > 1<<16 {
		return keyedTable{}, errors.New("missing or invalid hash_stride")
	}
	stride := *r.HashStride
	if len(r.HashMap)%stride != 0 {
		return keyedTable{}, fmt.Errorf("hash_map has %d values, not a multiple of hash_stride %d", len(r.HashMap), stride)
	}
	n := len(r.HashMap) / stride
	t := &ctrTableInfo{hashes: make([]uint64, n), stride: stride - 1}
	if r.CounterDenominator != nil {
		t.denominator = *r.CounterDenominator
	}
	switch typ {
	case ctrMean:
		if stride != 3 {
			return keyedTable{}, fmt.Errorf("hash_stride %d for a mean CTR, want 3", stride)
		}
		t.sums, t.counts = make([]float32, n), make([]int64, n)
	case ctrCounter, ctrFeatureFreq:
		if stride != 2 {
			return keyedTable{}, fmt.Errorf("hash_stride %d for a counter CTR, want 2", stride)
		}
		t.ints = make([]int64, n)
	default:
		t.ints = make([]int64, n*(stride-1))
	}
	seen := make(map[uint64]struct{}, n)
	for e := range n {
		row := r.HashMap[e*stride : (e+1)*stride]
		var hs string
		if err := json.Unmarshal(row[0], &hs); err != nil {
			return keyedTable{}, fmt.Errorf("hash_map[%d]: want a hash as a decimal string: %w", e*stride, err)
		}
		h, err := strconv.ParseUint(hs, 10, 64)
		if err != nil {
			return keyedTable{}, fmt.Errorf("hash_map[%d]: %w", e*stride, err)
		}
		if _, dup := seen[h]; dup {
			return keyedTable{}, fmt.Errorf("hash_map[%d]: hash %d repeated", e*stride, h)
		}
		seen[h] = struct{}{}
		t.hashes[e] = h
		if typ == ctrMean {
			var sum float64
			var count int64
			if err := json.Unmarshal(row[1], &sum); err != nil {
				return keyedTable{}, fmt.Errorf("hash_map[%d]: %w", e*stride+1, err)
			}
			if err := json.Unmarshal(row[2], &count); err != nil {
				return keyedTable{}, fmt.Errorf("hash_map[%d]: %w", e*stride+2, err)
			}
			t.sums[e], t.counts[e] = float32(sum), count
			continue
		}
		for j := 1; j < stride; j++ {
			var v int64
			if err := json.Unmarshal(row[j], &v); err != nil {
				return keyedTable{}, fmt.Errorf("hash_map[%d]: %w", e*stride+j, err)
			}
			if v < math.MinInt32 || v > math.MaxInt32 {
				return keyedTable{}, fmt.Errorf("hash_map[%d]: count %d out of range", e*stride+j, v)
			}
			t.ints[e*(stride-1)+j-1] = v
		}
	}
	return keyedTable{key: key, table: t}, nil
}
