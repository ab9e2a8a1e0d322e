package pipeline

import (
	"slices"
	"strconv"
	"strings"
)

// ObservationID names what an event observes: one element of a run (the run itself, a stage
// or an action), in one state, in one attempt. A store keeps one observation per id and treats
// a second event with the same id as a duplicate, whichever event id or time it carries: that
// is what makes EventBridge's at-least-once delivery (and the reconciler's made-up events for
// a state an event already told) cost nothing.
func (ev Event) ObservationID() string {
	var b strings.Builder
	switch ev.Level {
	case LevelStage:
		b.WriteString("S|" + ev.Stage)
	case LevelAction:
		b.WriteString("A|" + ev.Stage + "|" + ev.Action)
	default:
		b.WriteString("P")
	}
	b.WriteString("|" + string(ev.State) + "|" + strconv.Itoa(max(ev.Attempt, 1)))
	return b.String()
}

// Key returns the key of the run the event is about.
func (ev Event) Key() Key { return Key{ev.Pipeline, ev.ExecutionID} }

// EndsAttempt reports whether ev ends an attempt of its run: a pipeline-level terminal state,
// the one kind of event whose handling needs the whole run (for the notification decision).
func (ev Event) EndsAttempt() bool {
	return ev.Level == LevelPipeline && ev.State.Status().Terminal()
}

// History is what a store holds of one run: the observations its events carried, and the
// commit on-push recorded for it. Stores keep histories; Fold turns one into a Run.
type History struct {
	Key    Key
	Events []Event
	Push   Commit // zero when on-push recorded nothing for the run
}

// Without returns the history without the observation with the given id.
func (h History) Without(observationID string) History {
	out := h
	out.Events = slices.DeleteFunc(slices.Clone(h.Events), func(ev Event) bool { return ev.ObservationID() == observationID })
	return out
}

// Fold returns the run the history tells. The fold is order-independent; the events are
// folded in observation-id order only to make the work repeatable.
func (h History) Fold() Run {
	evs := slices.Clone(h.Events)
	slices.SortFunc(evs, func(a, b Event) int { return strings.Compare(a.ObservationID(), b.ObservationID()) })
	var run Run
	for _, ev := range evs {
		run, _ = Apply(run, ev)
	}
	if run.Pipeline == "" {
		run.Pipeline, run.ExecutionID = h.Key.Pipeline, h.Key.ExecutionID
	}
	return WithPush(run, h.Push)
}
