package catboostcapi_test

import (
	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/catboostcapi"
)

// The assertion lives in a test so that package capi does not import
// package catboost, which may one day import catboostcapi to pick a backend.
var _ catboost.Model = (*catboostcapi.Model)(nil)
var _ catboost.CategoricalModel = (*catboostcapi.Model)(nil)
