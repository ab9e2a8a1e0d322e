package runstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

type recentStore interface {
	pipeline.RunStore
	RecordPush(ctx context.Context, k pipeline.Key, c pipeline.Commit) error
	ListSince(ctx context.Context, pipelineName string, since time.Time) ([]pipeline.Run, error)
}

// smallPages makes every Query return at most two items, so that ListSince must follow
// LastEvaluatedKey as it would past 1 MB in DynamoDB.
type smallPages struct {
	runstore.DynamoAPI
	queries *int
}

func (s smallPages) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	*s.queries++
	limited := *in
	limited.Limit = aws.Int32(2)
	return s.DynamoAPI.Query(ctx, &limited, opts...)
}

func TestListSince(t *testing.T) {
	var queries int
	stores := map[string]func(t *testing.T) recentStore{
		"memory": func(*testing.T) recentStore { return runstore.NewMemory() },
		"dynamo": func(t *testing.T) recentStore {
			_, db, table := newDynamo(t)
			return runstore.NewDynamo(smallPages{db, &queries}, table, pipeline.ClockFunc(func() time.Time { return t0 }))
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			ctx := context.Background()
			started := func(pl, exec string, at time.Time) {
				t.Helper()
				ev := pipeline.Event{ID: "ev-" + exec, Time: at, Level: pipeline.LevelPipeline, Pipeline: pl, ExecutionID: exec, State: pipeline.StateStarted}
				if _, err := s.Append(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			started("p1", "exec-old", t0.Add(-48*time.Hour))
			started("p1", "exec-1", t0.Add(-2*time.Hour))
			started("p1", "exec-2", t0.Add(-time.Hour))
			started("p1", "exec-3", t0.Add(-30*time.Minute))
			started("p2", "exec-other", t0.Add(-time.Hour))
			// A run known only from its push: its events were all lost.
			if err := s.RecordPush(ctx, pipeline.Key{Pipeline: "p1", ExecutionID: "exec-pushed"},
				pipeline.Commit{ID: commitA, Author: "Ana <ana@example.com>", PushedAt: t0.Add(-10 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			// A run that ended is listed too: the caller decides what to do with it.
			if _, err := s.Append(ctx, pipeline.Event{ID: "ev-end", Time: t0.Add(-time.Hour + time.Minute), Level: pipeline.LevelPipeline,
				Pipeline: "p1", ExecutionID: "exec-2", State: pipeline.StateSucceeded}); err != nil {
				t.Fatal(err)
			}

			runs, err := s.ListSince(ctx, "p1", t0.Add(-3*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range runs {
				ids = append(ids, r.ExecutionID)
			}
			if want := []string{"exec-pushed", "exec-3", "exec-2", "exec-1"}; !slices.Equal(ids, want) {
				t.Fatalf("ListSince = %v, want %v (newest first, p1 only, not before since)", ids, want)
			}
			if runs[0].Commit.ID != commitA || runs[0].Commit.Author != "Ana <ana@example.com>" {
				t.Errorf("pushed run's commit = %+v", runs[0].Commit)
			}
			if runs[2].Status != pipeline.StatusSucceeded || runs[1].Status != pipeline.StatusInProgress {
				t.Errorf("statuses = %s, %s", runs[2].Status, runs[1].Status)
			}

			// since is inclusive.
			runs, err = s.ListSince(ctx, "p1", t0.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != 3 {
				t.Errorf("ListSince(start of exec-2) = %d runs, want 3", len(runs))
			}
			if runs, err := s.ListSince(ctx, "none", t0.Add(-time.Hour)); err != nil || len(runs) != 0 {
				t.Errorf("unknown pipeline: %v, %v", runs, err)
			}
		})
	}
	if queries < 3 {
		t.Errorf("dynamo: %d queries; with pages of two, listing four runs takes at least three", queries)
	}
}
