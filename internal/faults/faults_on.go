//go:build pffaults

package faults

import (
	"os"
	"strings"
)

// armed is read once, when the library loads, from PYFEAT_FAULT: a
// comma-separated list of sites that panic whenever they are reached.
var armed = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Split(os.Getenv("PYFEAT_FAULT"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			m[s] = true
		}
	}
	return m
}()

// Point panics when site is armed.
func Point(site string) {
	if armed[site] {
		panic("injected fault at " + site)
	}
}
