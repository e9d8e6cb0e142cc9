package serving

import "github.com/pyfeat/pyfeat/features"

// Timings of one Rank call: the feature computation's (its CPU stages,
// scoring being the sink) and the ordering's.
type Timings struct {
	features.Timings
	TopK  int64 // ns sorting the scores and writing the top k
	Score int64 // ns scoring after the computation (categorical models), 0 when scored in it
}

// The stages of a call's wall time, in the order of the C ABI's timings
// array (pyfeat.h, PF_STAGES).
const (
	StageTotal    = iota // the whole call, from entering Go to returning
	StageWait            // before the computation could start: handles, the share of the cores
	StageUser            // preparing the user context (or waiting for it)
	StageDecode          // decoding item records
	StageFeatures        // computing the feature rows
	StageScoring         // scoring the rows
	StageTopK            // ordering the scores
	StageOther           // the rest: argument checks, setting up the outputs
	NumStages
)

// Stages attributes a call's wall time to its stages. The computation runs
// its stages on several goroutines at once, so its wall time is split in
// proportion to each stage's CPU time; the stages add up to total.
func Stages(total, wait int64, t *Timings) [NumStages]int64 {
	var s [NumStages]int64
	s[StageTotal], s[StageWait], s[StageTopK], s[StageScoring] = total, wait, t.TopK, t.Score
	cpu := t.Prepare + t.Decode + t.Features + t.Sink
	if w := t.Wall; w > 0 && cpu > 0 {
		share := func(x int64) int64 { return int64(float64(w) * float64(x) / float64(cpu)) }
		s[StageUser], s[StageDecode] = share(t.Prepare), share(t.Decode)
		inSink := share(t.Sink)
		s[StageScoring] += inSink
		s[StageFeatures] = w - s[StageUser] - s[StageDecode] - inSink
	}
	s[StageOther] = max(0, total-wait-t.Wall-t.Score-t.TopK)
	return s
}
