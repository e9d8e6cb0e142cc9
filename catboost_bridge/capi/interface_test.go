package capi_test

import (
	catboostbridge "github.com/pyfeat/pyfeat/catboost_bridge"
	"github.com/pyfeat/pyfeat/catboost_bridge/capi"
)

// The assertion lives in a test so that package capi does not import
// catboostbridge, which may one day import capi to pick a backend.
var _ catboostbridge.Model = (*capi.Model)(nil)
