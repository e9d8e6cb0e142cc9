package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"time"

	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
	"github.com/pyfeat/pyfeat/serving"
)

//export pf_profile
func pf_profile(path *C.char, ns C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_profile")
	if path == nil {
		return setStatus(st, pferr.Argumentf("pf_profile: NULL path"))
	}
	return setStatus(st, serving.CPUProfile(C.GoString(path), time.Duration(ns)))
}
