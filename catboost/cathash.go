package catboost

import (
	"encoding/binary"
	"math/bits"
	"strconv"
)

// CatBoost hashes a categorical value to 32 bits with the low half of
// CityHash64 version 1.0 (not the 1.1 mainline, whose short-string paths
// differ); every table of a model (one-hot values, CTR tables) is keyed by
// that hash, so it has to be reproduced exactly.

// HashCategorical is CatBoost's hash of a categorical value given as a
// string (its bytes as they are; Python str values are encoded as UTF-8).
func HashCategorical(s string) uint32 {
	return uint32(cityHash64([]byte(s)))
}

// HashCategoricalBytes is HashCategorical for a byte slice.
func HashCategoricalBytes(b []byte) uint32 {
	return uint32(cityHash64(b))
}

// HashCategoricalInt is CatBoost's hash of an integer categorical value:
// the hash of its decimal representation, which is what catboost's Python
// package trains and predicts with for int columns.
func HashCategoricalInt(v int64) uint32 {
	var buf [20]byte
	return uint32(cityHash64(strconv.AppendInt(buf[:0], v, 10)))
}

const (
	cityK0  = 0xc3a5c85c97cb3127
	cityK1  = 0xb492b66fbe98f273
	cityK2  = 0x9ae16a3b2f90404f
	cityK3  = 0xc949d7c7509e6557
	cityMul = 0x9ddfea08eb382d69
)

func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }
func load32(b []byte, i int) uint64 { return uint64(binary.LittleEndian.Uint32(b[i:])) }

func rotr(v uint64, s int) uint64 { return bits.RotateLeft64(v, -s) }

func shiftMix(v uint64) uint64 { return v ^ v>>47 }

// hash16 folds 128 bits (lo, hi) into 64, Murmur style.
func hash16(lo, hi uint64) uint64 {
	a := (lo ^ hi) * cityMul
	a ^= a >> 47
	b := (hi ^ a) * cityMul
	b ^= b >> 47
	return b * cityMul
}

func cityHash64(s []byte) uint64 {
	n := len(s)
	switch {
	case n <= 16:
		return cityShort(s)
	case n <= 32:
		a := load64(s, 0) * cityK1
		b := load64(s, 8)
		c := load64(s, n-8) * cityK2
		d := load64(s, n-16) * cityK0
		return hash16(rotr(a-b, 43)+rotr(c, 30)+d, a+rotr(b^cityK3, 20)-c+uint64(n))
	case n <= 64:
		return cityMedium(s)
	}
	return cityLong(s)
}

func cityShort(s []byte) uint64 {
	n := len(s)
	switch {
	case n > 8:
		a, b := load64(s, 0), load64(s, n-8)
		return hash16(a, rotr(b+uint64(n), n)) ^ b
	case n >= 4:
		return hash16(uint64(n)+load32(s, 0)<<3, load32(s, n-4))
	case n > 0:
		y := uint32(s[0]) + uint32(s[n>>1])<<8
		z := uint32(n) + uint32(s[n-1])<<2
		return shiftMix(uint64(y)*cityK2^uint64(z)*cityK3) * cityK2
	}
	return cityK2
}

func cityMedium(s []byte) uint64 {
	n := len(s)
	z := load64(s, 24)
	a := load64(s, 0) + (uint64(n)+load64(s, n-16))*cityK0
	b := rotr(a+z, 52)
	c := rotr(a, 37)
	a += load64(s, 8)
	c += rotr(a, 7)
	a += load64(s, 16)
	vf := a + z
	vs := b + rotr(a, 31) + c
	a = load64(s, 16) + load64(s, n-32)
	z = load64(s, n-8)
	b = rotr(a+z, 52)
	c = rotr(a, 37)
	a += load64(s, n-24)
	c += rotr(a, 7)
	a += load64(s, n-16)
	wf := a + z
	ws := b + rotr(a, 31) + c
	r := shiftMix((vf+ws)*cityK2 + (wf+vs)*cityK0)
	return shiftMix(r*cityK0+vs) * cityK2
}

// weak32 mixes the 32 bytes at s[i:] with seeds a and b into 128 bits.
func weak32(s []byte, i int, a, b uint64) (uint64, uint64) {
	w, x, y, z := load64(s, i), load64(s, i+8), load64(s, i+16), load64(s, i+24)
	a += w
	b = rotr(b+a+z, 21)
	c := a
	a += x + y
	b += rotr(a, 44)
	return a + z, b + c
}

func cityLong(s []byte) uint64 {
	n := len(s)
	x := load64(s, 0)
	y := load64(s, n-16) ^ cityK1
	z := load64(s, n-56) ^ cityK0
	v1, v2 := weak32(s, n-64, uint64(n), y)
	w1, w2 := weak32(s, n-32, uint64(n)*cityK1, cityK0)
	z += shiftMix(v2) * cityK1
	x = rotr(z+x, 39) * cityK1
	y = rotr(y, 33) * cityK1
	// Whole 64-byte chunks from the start; the tail was mixed in above.
	rest := (n - 1) &^ 63
	for i := 0; rest > 0; i, rest = i+64, rest-64 {
		x = rotr(x+y+v1+load64(s, i+16), 37) * cityK1
		y = rotr(y+v2+load64(s, i+48), 42) * cityK1
		x ^= w2
		y ^= v1
		z = rotr(z^w1, 33)
		v1, v2 = weak32(s, i, v2*cityK1, x+w1)
		w1, w2 = weak32(s, i+32, z+w2, y)
		z, x = x, z
	}
	return hash16(hash16(v1, w1)+shiftMix(y)*cityK1+z, hash16(v2, w2)+x)
}
