package runstore

import "github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"

// Recorder returns the recorder of the deployed functions over d: decided notifications go to
// the outbox, and the notifier function sends them. on-pipeline-event and the reconciler both
// build theirs here.
func (d *Dynamo) Recorder() *pipeline.Recorder {
	return pipeline.NewRecorder(d, d, Outbox{Store: d}, d.clock)
}

// Recorder returns a recorder over m that claims each decided notification and hands it to n
// at once (`lp replay`, scripts/invoke, tests).
func (m *Memory) Recorder(n pipeline.Notifier, clock pipeline.Clock) *pipeline.Recorder {
	return pipeline.NewRecorder(m, m, &pipeline.Direct{Claims: m, Notifier: n, Clock: clock}, clock)
}
