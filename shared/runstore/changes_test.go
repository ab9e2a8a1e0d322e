package runstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
	"github.com/lambda-pipeline/lambda-pipeline/shared/testing/harness"
)

type changeStore interface {
	pipeline.RunStore
	RecordPush(ctx context.Context, k pipeline.Key, c pipeline.Commit) error
	ListSince(ctx context.Context, pipelineName string, since time.Time) ([]pipeline.Run, error)
	Changed(ctx context.Context, pipelineName string, since time.Time) ([]pipeline.Change, error)
	Checkpoint(ctx context.Context, pipelineName string) (pipeline.Checkpoint, error)
	SaveCheckpoint(ctx context.Context, pipelineName string, cp pipeline.Checkpoint) error
}

func changeStores(clock pipeline.Clock) map[string]func(t *testing.T) changeStore {
	return map[string]func(t *testing.T) changeStore{
		"memory": func(*testing.T) changeStore { return runstore.NewMemory().WithClock(clock) },
		"dynamo": func(t *testing.T) changeStore {
			var queries int
			_, db, table := newDynamo(t)
			return runstore.NewDynamo(smallPages{db, &queries}, table, clock)
		},
	}
}

// Changed names the runs whose record changed since a time, placed at the later of when an
// event happened and when it was stored: an event delivered late, with an old time, is a
// change when it is stored (issue 9, defect 12), and ListSince still finds runs by start.
func TestChangedPlacesFactsWhenStored(t *testing.T) {
	clock := harness.NewClock(t0)
	for name, newStore := range changeStores(clock) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			ctx := context.Background()
			store := func(at time.Time, ev pipeline.Event) {
				t.Helper()
				clock.Set(at)
				ev.Pipeline = "p1"
				if _, err := s.Append(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			started := func(exec string, at time.Time) pipeline.Event {
				return pipeline.Event{ID: "start-" + exec, Time: at, Level: pipeline.LevelPipeline, ExecutionID: exec, State: pipeline.StateStarted}
			}
			// exec-old started and ended two hours ago, stored as it happened.
			store(t0.Add(-2*time.Hour), started("exec-old", t0.Add(-2*time.Hour)))
			store(t0.Add(-110*time.Minute), pipeline.Event{ID: "end-old", Time: t0.Add(-110 * time.Minute), Level: pipeline.LevelPipeline,
				ExecutionID: "exec-old", State: pipeline.StateSucceeded})
			// exec-late started two hours ago; its STARTED event arrives now.
			store(t0, started("exec-late", t0.Add(-2*time.Hour)))
			// exec-new started ten minutes ago; a stage event is not a change (not indexed).
			store(t0.Add(-10*time.Minute), started("exec-new", t0.Add(-10*time.Minute)))
			store(t0.Add(-5*time.Minute), pipeline.Event{ID: "stage-new", Time: t0.Add(-5 * time.Minute), Level: pipeline.LevelStage,
				ExecutionID: "exec-new", Stage: "Source", State: pipeline.StateSucceeded})
			// exec-pushed: only its push, recorded 20 minutes after it happened.
			clock.Set(t0.Add(-20 * time.Minute))
			if err := s.RecordPush(ctx, pipeline.Key{Pipeline: "p1", ExecutionID: "exec-pushed"},
				pipeline.Commit{ID: commitA, PushedAt: t0.Add(-40 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			// Another pipeline's run is not p1's change.
			clock.Set(t0)
			if _, err := s.Append(ctx, pipeline.Event{ID: "other", Time: t0, Level: pipeline.LevelPipeline, Pipeline: "p2",
				ExecutionID: "exec-other", State: pipeline.StateStarted}); err != nil {
				t.Fatal(err)
			}

			changes, err := s.Changed(ctx, "p1", t0.Add(-30*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			want := []pipeline.Change{
				{Key: pipeline.Key{Pipeline: "p1", ExecutionID: "exec-late"}, At: t0},
				{Key: pipeline.Key{Pipeline: "p1", ExecutionID: "exec-new"}, At: t0.Add(-10 * time.Minute)},
				{Key: pipeline.Key{Pipeline: "p1", ExecutionID: "exec-pushed"}, At: t0.Add(-20 * time.Minute)},
			}
			if !slices.EqualFunc(changes, want, func(a, b pipeline.Change) bool { return a.Key == b.Key && a.At.Equal(b.At) }) {
				t.Errorf("Changed(30 min ago) = %v, want %v (latest first; stored since, not happened since)", changes, want)
			}

			// Runs by start: the late one started two hours ago, whenever it was stored.
			runs, err := s.ListSince(ctx, "p1", t0.Add(-3*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range runs {
				ids = append(ids, r.ExecutionID)
			}
			if want := []string{"exec-new", "exec-pushed", "exec-old", "exec-late"}; !slices.Equal(ids, want) {
				t.Errorf("ListSince = %v, want %v (newest start first)", ids, want)
			}
			if runs, err := s.ListSince(ctx, "p1", t0.Add(-90*time.Minute)); err != nil || len(runs) != 2 {
				t.Errorf("ListSince(90 min ago) = %d runs, %v; want the two that started since", len(runs), err)
			}
		})
	}
}

// The reconciler's checkpoint: none at first; kept; an older one does not replace a newer
// one (two passes that overlap).
func TestCheckpointKeepsTheLatest(t *testing.T) {
	clock := harness.NewClock(t0)
	for name, newStore := range changeStores(clock) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			ctx := context.Background()
			if _, err := s.Checkpoint(ctx, "p1"); !errors.Is(err, pipeline.ErrNotFound) {
				t.Fatalf("Checkpoint before any = %v, want ErrNotFound", err)
			}
			cp := pipeline.Checkpoint{At: t0,
				Open: []pipeline.Watch{{ExecutionID: "exec-1", Began: t0.Add(-time.Hour)}},
				Failed: []pipeline.Watch{{ExecutionID: "exec-2", Began: t0.Add(-3 * time.Hour), Ended: t0.Add(-2 * time.Hour), Attempt: 2, Stage: "BuildAndTest"},
					{ExecutionID: "exec-3", Began: t0.Add(-5 * time.Hour), Ended: t0.Add(-4 * time.Hour), Attempt: 1}}}
			if err := s.SaveCheckpoint(ctx, "p1", cp); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveCheckpoint(ctx, "p1", pipeline.Checkpoint{At: t0.Add(-10 * time.Minute)}); err != nil {
				t.Fatalf("an older checkpoint is refused without an error: %v", err)
			}
			got, err := s.Checkpoint(ctx, "p1")
			if err != nil {
				t.Fatal(err)
			}
			if !got.At.Equal(cp.At) || !slices.EqualFunc(got.Open, cp.Open, sameWatch) || !slices.EqualFunc(got.Failed, cp.Failed, sameWatch) {
				t.Errorf("Checkpoint = %+v, want %+v", got, cp)
			}
			if _, err := s.Checkpoint(ctx, "p2"); !errors.Is(err, pipeline.ErrNotFound) {
				t.Errorf("another pipeline's checkpoint = %v, want ErrNotFound", err)
			}
			next := pipeline.Checkpoint{At: t0.Add(10 * time.Minute)}
			if err := s.SaveCheckpoint(ctx, "p1", next); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Checkpoint(ctx, "p1"); err != nil || !got.At.Equal(next.At) || len(got.Open)+len(got.Failed) != 0 {
				t.Errorf("Checkpoint after a later pass = %+v, %v", got, err)
			}
		})
	}
}

func sameWatch(a, b pipeline.Watch) bool {
	return a.ExecutionID == b.ExecutionID && a.Began.Equal(b.Began) && a.Ended.Equal(b.Ended) && a.Attempt == b.Attempt && a.Stage == b.Stage
}
