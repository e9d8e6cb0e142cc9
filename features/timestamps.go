package features

// readTime reads a timestamp: unix seconds in [0, MaxNow], the range the
// request time `now` must be in. A timestamp in milliseconds (~1.7e12 today)
// is outside it and is refused, rather than read as a date 50,000 years
// ahead (item age 0, freshness 1).
func readTime(b []byte, key string) (int64, []byte, *InputError) {
	v, rest, err := readInt(b, key)
	if err == nil && (v < 0 || v > MaxNow) {
		return 0, nil, valueError(key, "must be unix seconds in [0, 2^40], got %d (milliseconds?)", v)
	}
	return v, rest, err
}
