package catboost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// ErrUnsupported is matched (errors.Is) by every error LoadJSON returns for
// a well-formed model that the native evaluator refuses because it cannot
// evaluate it exactly: text or embedding features, non-symmetric trees,
// unknown split types, CTR types or keys. Callers may fall back to
// the capi backend for those; any other load error means a broken file.
var ErrUnsupported = errors.New("catboost model not supported by the native evaluator")

// unsupportedError carries its own message but still matches ErrUnsupported,
// so that messages name the offending construct instead of a generic phrase.
type unsupportedError string

func (e unsupportedError) Error() string {
	return string(e) + ": not supported by the native evaluator"
}
func (e unsupportedError) Is(target error) bool { return target == ErrUnsupported }

func unsupported(format string, args ...any) error {
	return unsupportedError(fmt.Sprintf(format, args...))
}

// maxDepth is CatBoost's own limit on oblivious tree depth; it also keeps
// 2^depth*dims far from integer overflow.
const maxDepth = 16

// LoadJSONFile reads the CatBoost JSON export at path (as written by
// save_model(path, format="json")) and returns the native model; see
// LoadJSON. Only a regular file of at most MaxModelBytes is read.
func LoadJSONFile(path string) (*NativeModel, error) {
	data, err := ReadModelFile(path)
	if err != nil {
		return nil, fmt.Errorf("catboost: load JSON model: %w", err)
	}
	m, err := parseJSONModel(data)
	if err != nil {
		return nil, fmt.Errorf("catboost: load JSON model %s: %w", path, err)
	}
	return m, nil
}

// LoadJSON parses a CatBoost JSON model export held in data and returns the
// native model. data is not retained. A model that cannot be evaluated
// exactly is refused with an error matching ErrUnsupported; a malformed,
// truncated or inconsistent file gives a plain error naming the place.
func LoadJSON(data []byte) (*NativeModel, error) {
	m, err := parseJSONModel(data)
	if err != nil {
		return nil, fmt.Errorf("catboost: load JSON model: %w", err)
	}
	return m, nil
}

// The raw* types mirror the JSON export. Pointers mark fields whose absence
// must be told apart from a zero value.

type rawFloatFeature struct {
	Borders          []float64 `json:"borders"`
	FeatureID        string    `json:"feature_id"`
	FeatureName      string    `json:"feature_name"`
	FeatureIndex     *int      `json:"feature_index"`
	FlatFeatureIndex *int      `json:"flat_feature_index"`
	NanTreatment     *string   `json:"nan_value_treatment"`
	HasNans          *bool     `json:"has_nans"`
}

type rawSplit struct {
	SplitType    *string  `json:"split_type"`
	FloatFeature *int     `json:"float_feature_index"`
	Border       *float64 `json:"border"`
	SplitIndex   *int     `json:"split_index"`
	// One-hot and CTR splits.
	CatFeatureIndex *int   `json:"cat_feature_index"`
	Value           *int64 `json:"value"`
	CtrTargetBorder *int   `json:"ctr_target_border_idx"`
}

type rawTree struct {
	LeafValues []float64  `json:"leaf_values"`
	Splits     []rawSplit `json:"splits"`
}

// decodeArray decodes a JSON array of T. On failure it decodes the elements
// one by one, only to say which element is broken: encoding/json's own
// message does not carry the index.
func decodeArray[T any](raw json.RawMessage) ([]T, error) {
	var out []T
	err := json.Unmarshal(raw, &out)
	if err == nil {
		return out, nil
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return nil, err
	}
	for i, e := range elems {
		var v T
		if e2 := json.Unmarshal(e, &v); e2 != nil {
			return nil, fmt.Errorf("[%d]: %w", i, e2)
		}
	}
	return nil, err
}

func isNullOrEmpty(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	if s == "null" || s == "" {
		return true
	}
	if len(s) >= 2 && (s[0] == '{' && s[len(s)-1] == '}' || s[0] == '[' && s[len(s)-1] == ']') {
		return strings.TrimSpace(s[1:len(s)-1]) == ""
	}
	return false
}

func parseJSONModel(data []byte) (*NativeModel, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if top == nil {
		return nil, errors.New("invalid JSON: top level is null, want an object")
	}
	// Sorted, so that a file with several problems always reports the same.
	for _, key := range slices.Sorted(maps.Keys(top)) {
		raw := top[key]
		switch key {
		case "features_info", "model_info", "oblivious_trees", "scale_and_bias", "ctr_data":
		case "trees":
			if !isNullOrEmpty(raw) {
				return nil, unsupported(`non-symmetric trees ("trees", grow_policy Depthwise or Lossguide)`)
			}
		default:
			return nil, unsupported("unknown top-level key %q", key)
		}
	}

	m := &NativeModel{scale: 1}

	meta, err := parseModelInfo(top["model_info"])
	if err != nil {
		return nil, fmt.Errorf("model_info: %w", err)
	}
	m.meta = meta

	features, cp, err := parseFeaturesInfo(top["features_info"])
	if err != nil {
		return nil, fmt.Errorf("features_info: %w", err)
	}
	if cp != nil {
		if cp.tables, err = parseCtrData(top["ctr_data"]); err != nil {
			return nil, fmt.Errorf("ctr_data: %w", err)
		}
	} else if !isNullOrEmpty(top["ctr_data"]) {
		return nil, errors.New("ctr_data without categorical features")
	}
	m.numFeatures = len(features)
	for _, f := range features {
		if f.name != "" {
			m.names = make([]string, len(features))
			for i, f := range features {
				m.names[i] = f.name
			}
			break
		}
	}

	rawTrees, ok := top["oblivious_trees"]
	if !ok {
		return nil, errors.New(`missing "oblivious_trees"`)
	}
	trees, err := decodeArray[rawTree](rawTrees)
	if err != nil {
		return nil, fmt.Errorf("oblivious_trees%w", prefixIndexError(err))
	}
	if trees == nil {
		return nil, errors.New(`oblivious_trees: null, want an array`)
	}

	dims := 0
	for i := range trees {
		d, err := treeDims(&trees[i], dims)
		if err != nil {
			return nil, fmt.Errorf("oblivious_trees[%d]: %w", i, err)
		}
		dims = d
	}

	scale, bias, err := parseScaleAndBias(top["scale_and_bias"])
	if err != nil {
		return nil, fmt.Errorf("scale_and_bias: %w", err)
	}
	if dims == 0 { // no trees: the bias alone says how many outputs there are
		dims = max(len(bias), 1)
	}
	switch len(bias) {
	case 0:
		bias = make([]float64, dims)
	case dims:
	default:
		return nil, fmt.Errorf("scale_and_bias: %d bias values for %d model dimensions", len(bias), dims)
	}
	m.dims, m.scale, m.bias = dims, scale, bias

	if err := m.build(features, trees, cp); err != nil {
		return nil, err
	}
	return m, nil
}

// prefixIndexError makes decodeArray's "[i]: ..." read naturally after a
// key, and puts ": " before anything else.
func prefixIndexError(err error) error {
	if strings.HasPrefix(err.Error(), "[") {
		return err
	}
	return fmt.Errorf(": %w", err)
}

func parseModelInfo(raw json.RawMessage) (map[string]string, error) {
	meta := map[string]string{}
	if raw == nil || isNullOrEmpty(raw) {
		return meta, nil
	}
	var info map[string]json.RawMessage
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, err
	}
	for k, v := range info {
		var s string
		if json.Unmarshal(v, &s) == nil {
			meta[k] = s
			continue
		}
		// The export expands values of keys ending in "params" into JSON
		// trees; CatBoost's own JSON loader turns them back into compact
		// JSON text, so that is what the metadata holds.
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		meta[k] = buf.String()
	}
	return meta, nil
}

// floatFeature is a float feature as read from features_info.
type floatFeature struct {
	name    string
	flat    int
	nan     nanTreatment
	hasNans bool
	borders []float32
	// splitBase is the split_index of this feature's first border: CatBoost
	// numbers the binary features of all float features consecutively.
	splitBase int
}

type nanTreatment uint8

const (
	nanAsIs nanTreatment = iota
	nanAsFalse
	nanAsTrue
)

func parseFeaturesInfo(raw json.RawMessage) ([]floatFeature, *catParse, error) {
	if raw == nil || isNullOrEmpty(raw) {
		return nil, nil, nil
	}
	var info map[string]json.RawMessage
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, nil, err
	}
	for _, key := range slices.Sorted(maps.Keys(info)) {
		v := info[key]
		switch key {
		case "float_features", "categorical_features", "ctrs":
		case "cat_features_hash":
			// Hash to string, for people reading the file; not needed to
			// evaluate.
		case "text_features":
			if !isNullOrEmpty(v) {
				return nil, nil, unsupported("text features (%s)", key)
			}
		case "embedding_features":
			if !isNullOrEmpty(v) {
				return nil, nil, unsupported("embedding features (%s)", key)
			}
		default:
			return nil, nil, unsupported("unknown key %q", key)
		}
	}
	var raws []rawFloatFeature
	if rawFeatures, ok := info["float_features"]; ok {
		var err error
		if raws, err = decodeArray[rawFloatFeature](rawFeatures); err != nil {
			return nil, nil, fmt.Errorf("float_features%w", prefixIndexError(err))
		}
	}
	features := make([]floatFeature, len(raws))
	splitBase := 0
	for i, r := range raws {
		f, err := convertFloatFeature(i, &r)
		if err != nil {
			return nil, nil, fmt.Errorf("float_features[%d]: %w", i, err)
		}
		f.splitBase = splitBase
		splitBase += len(f.borders)
		features[i] = f
	}
	cats, err := parseCatFeatures(info["categorical_features"])
	if err != nil {
		return nil, nil, err
	}
	ctrs, err := parseCtrs(info["ctrs"])
	if err != nil {
		return nil, nil, err
	}
	if len(cats) == 0 && len(ctrs) > 0 {
		return nil, nil, errors.New("ctrs without categorical_features")
	}
	// Columns of the training table: float and categorical features
	// together must number them 0..n-1, each kind in its own order.
	seen := make([]bool, len(features)+len(cats))
	prev := -1
	for i := range features {
		fl := features[i].flat
		if fl < 0 || fl >= len(seen) || seen[fl] || fl < prev {
			if fl >= len(seen) {
				return nil, nil, unsupported("float_features[%d]: flat_feature_index %d: the model has columns that are neither float nor categorical features", i, fl)
			}
			return nil, nil, fmt.Errorf("float_features[%d]: flat_feature_index %d does not fit the model's %d columns", i, fl, len(seen))
		}
		seen[fl], prev = true, fl
	}
	prev = -1
	for i := range cats {
		fl := cats[i].flat
		if fl < 0 || fl >= len(seen) || seen[fl] || fl < prev {
			if fl >= len(seen) {
				return nil, nil, unsupported("categorical_features[%d]: flat_feature_index %d: the model has columns that are neither float nor categorical features", i, fl)
			}
			return nil, nil, fmt.Errorf("categorical_features[%d]: flat_feature_index %d does not fit the model's %d columns", i, fl, len(seen))
		}
		seen[fl], prev = true, fl
	}
	if len(cats) == 0 {
		return features, nil, nil
	}
	cp := &catParse{cats: cats, ctrs: ctrs}
	for ci := range cats {
		for vi := range cats[ci].oneHot {
			cp.oneHotPairs = append(cp.oneHotPairs, [2]int{ci, vi})
		}
	}
	base := 0
	for i := range ctrs {
		ctrs[i].splitBase = base
		base += len(ctrs[i].borders)
	}
	return features, cp, nil
}

func convertFloatFeature(i int, r *rawFloatFeature) (floatFeature, error) {
	var f floatFeature
	// Rows are indexed by flat_feature_index. With float features only, it
	// equals the feature's position; anything else means columns of another
	// kind sit between them.
	if r.FeatureIndex == nil || r.FlatFeatureIndex == nil {
		return f, errors.New("missing feature_index or flat_feature_index")
	}
	if *r.FeatureIndex != i {
		return f, fmt.Errorf("feature_index %d, want %d (its position in float_features)", *r.FeatureIndex, i)
	}
	f.flat = *r.FlatFeatureIndex
	// Absent from older exports: NaN is then replaced as the treatment says.
	f.hasNans = r.HasNans == nil || *r.HasNans
	if r.NanTreatment == nil {
		return f, errors.New("missing nan_value_treatment")
	}
	switch *r.NanTreatment {
	case "AsIs":
		f.nan = nanAsIs
	case "AsFalse":
		f.nan = nanAsFalse
	case "AsTrue":
		f.nan = nanAsTrue
	default:
		return f, unsupported("nan_value_treatment %q", *r.NanTreatment)
	}
	f.name = r.FeatureID
	if f.name == "" {
		f.name = r.FeatureName
	}
	f.borders = make([]float32, len(r.Borders))
	for j, b := range r.Borders {
		// CatBoost stores borders as float32 and reads the JSON double back
		// by rounding it to float32; so do we.
		f.borders[j] = float32(b)
		if math.IsNaN(b) {
			return f, fmt.Errorf("borders[%d] is NaN", j)
		}
	}
	return f, nil
}

// treeDims checks a tree's shape and returns its number of output
// dimensions, which must equal prev unless prev is 0 (first tree).
func treeDims(t *rawTree, prev int) (int, error) {
	if t.LeafValues == nil {
		return 0, errors.New("missing leaf_values")
	}
	depth := len(t.Splits)
	if depth > maxDepth {
		return 0, fmt.Errorf("depth %d exceeds CatBoost's maximum of %d", depth, maxDepth)
	}
	leaves := 1 << depth
	n := len(t.LeafValues)
	if n == 0 || n%leaves != 0 {
		return 0, fmt.Errorf("%d leaf_values for depth %d: want a positive multiple of %d", n, depth, leaves)
	}
	dims := n / leaves
	if prev != 0 && dims != prev {
		return 0, fmt.Errorf("%d leaf_values for depth %d means %d dimensions, but earlier trees have %d", n, depth, dims, prev)
	}
	return dims, nil
}

func parseScaleAndBias(raw json.RawMessage) (float64, []float64, error) {
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		return 1, nil, nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return 0, nil, err
	}
	if len(parts) != 2 {
		return 0, nil, fmt.Errorf("%d elements, want [scale, [bias...]]", len(parts))
	}
	var scale float64
	if err := json.Unmarshal(parts[0], &scale); err != nil {
		return 0, nil, fmt.Errorf("scale: %w", err)
	}
	var bias []float64
	if err := json.Unmarshal(parts[1], &bias); err != nil {
		return 0, nil, fmt.Errorf("bias: %w", err)
	}
	return scale, bias, nil
}

// resolveSplit validates one split against features_info and returns the
// binary feature it tests. CatBoost itself evaluates a JSON model through
// split_index (a position among all binary features), so the file's
// fields and split_index must agree for our reading to be its.
func resolveSplit(s *rawSplit, features []floatFeature, cp *catParse, floatBorders int) (splitRef, error) {
	if s.SplitType == nil {
		return splitRef{}, errors.New("missing split_type")
	}
	switch *s.SplitType {
	case "FloatFeature":
		f, b, err := checkFloatSplit(s, features)
		return splitRef{kind: 'f', index: f, border: b}, err
	case "OneHotFeature", "OnlineCtr":
		if cp == nil {
			return splitRef{}, fmt.Errorf("split_type %s in a model without categorical features", *s.SplitType)
		}
		return cp.resolveCatSplit(s, floatBorders)
	}
	return splitRef{}, unsupported("split_type %q", *s.SplitType)
}

// checkFloatSplit validates a float split and returns its feature and
// float32 border.
func checkFloatSplit(s *rawSplit, features []floatFeature) (int, float32, error) {
	if s.FloatFeature == nil || s.Border == nil {
		return 0, 0, errors.New("missing float_feature_index or border")
	}
	f := *s.FloatFeature
	if f < 0 || f >= len(features) {
		return 0, 0, fmt.Errorf("float_feature_index %d out of range: the model has %d float features", f, len(features))
	}
	if math.IsNaN(*s.Border) {
		return 0, 0, errors.New("border is NaN")
	}
	b := float32(*s.Border)
	borders := features[f].borders
	if s.SplitIndex == nil {
		if !slices.Contains(borders, b) {
			return 0, 0, fmt.Errorf("border %v is not among the borders of float feature %d", *s.Border, f)
		}
		return f, b, nil
	}
	j := *s.SplitIndex - features[f].splitBase
	if j < 0 || j >= len(borders) || borders[j] != b {
		return 0, 0, fmt.Errorf("split_index %d does not name float feature %d border %v in features_info", *s.SplitIndex, f, *s.Border)
	}
	return f, b, nil
}
