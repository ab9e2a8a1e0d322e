package runstore_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// pushStore is what on-push needs of a store, as both Memory and Dynamo provide it.
type pushStore interface {
	ClaimPush(ctx context.Context, p pipeline.Push, token string, now time.Time, lease time.Duration) (pipeline.PushClaim, error)
	MarkPushStarted(ctx context.Context, p pipeline.Push, executionID string, now time.Time) error
	MarkPushSkipped(ctx context.Context, p pipeline.Push, reason string, now time.Time) error
	ReleasePush(ctx context.Context, p pipeline.Push) error
	RecordSkip(ctx context.Context, p pipeline.Push, reason string, now time.Time) error
	GetPush(ctx context.Context, repository, commitID string) (pipeline.PushClaim, []pipeline.PushSkip, error)
}

var (
	_ pushStore = (*runstore.Memory)(nil)
	_ pushStore = (*runstore.Dynamo)(nil)
)

// newDynamo returns a Dynamo store over a fresh table in the dynalite that main_test.go's
// TestMain shares across the binary, and the client.
func newDynamo(t *testing.T) (*runstore.Dynamo, *dynamodb.Client, string) {
	t.Helper()
	db := dynalitetest.Start(t).Client(t)
	table := dynalitetest.CreateTable(t, db, runstore.TableInput(""))
	return runstore.NewDynamo(db, table, pipeline.SystemClock{}).WithRetention(30 * 24 * time.Hour), db, table
}

// eachStore runs f against a Memory store and a Dynamo store over dynalite.
func eachStore(t *testing.T, f func(t *testing.T, s pushStore)) {
	t.Run("memory", func(t *testing.T) { f(t, runstore.NewMemory()) })
	t.Run("dynamo", func(t *testing.T) {
		d, _, _ := newDynamo(t)
		f(t, d)
	})
}

var t0 = time.Date(2026, 11, 20, 10, 15, 3, 0, time.UTC)

func pushOf(eventID, commit string) pipeline.Push {
	return pipeline.Push{ID: eventID, Time: t0, Repository: "my-lambda", Kind: pipeline.PushReferenceUpdated,
		RefType: "branch", RefName: "main", RefFullName: "refs/heads/main", CommitID: commit}
}

const (
	commitA = "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6"
	commitB = "a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0"
	lease   = 50 * time.Second
)

func mustClaim(t *testing.T, s pushStore, p pipeline.Push, token string, now time.Time) pipeline.PushClaim {
	t.Helper()
	c, err := s.ClaimPush(context.Background(), p, token, now, lease)
	if err != nil {
		t.Fatalf("ClaimPush(%s): %v", p.ID, err)
	}
	return c
}

func TestPushClaimLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, s pushStore) {
		ctx := context.Background()
		first := pushOf("event-1", commitA)
		c := mustClaim(t, s, first, "token-1", t0)
		if !c.Held || c.State != pipeline.PushPending || c.Token != "token-1" || c.EventID != "event-1" || c.Attempts != 1 {
			t.Fatalf("first claim = %+v, want held PENDING with token-1", c)
		}

		// The same commit from another event, under the lease: not held, and it says whose.
		again := pushOf("event-2", commitA)
		c = mustClaim(t, s, again, "token-2", t0.Add(lease-time.Second))
		if c.Held || c.State != pipeline.PushPending || c.Token != "token-1" || c.EventID != "event-1" {
			t.Fatalf("claim under lease = %+v, want not held, PENDING, first event's token", c)
		}

		// Another commit is independent.
		if c := mustClaim(t, s, pushOf("event-3", commitB), "token-3", t0); !c.Held {
			t.Fatalf("other commit not claimed: %+v", c)
		}

		// The holder crashed: after the lease, the next delivery takes the claim, with the
		// first token, so that a start the holder made is not made twice.
		c = mustClaim(t, s, again, "token-2", t0.Add(lease+time.Second))
		if !c.Held || c.Token != "token-1" || c.EventID != "event-1" || c.Attempts != 2 {
			t.Fatalf("claim after lease = %+v, want held with token-1, attempt 2", c)
		}

		if err := s.MarkPushStarted(ctx, again, "5e7c0000-0000-4000-8000-000000000001", t0.Add(lease+2*time.Second)); err != nil {
			t.Fatal(err)
		}
		// STARTED is final: no lease, however late, gives it out again.
		for _, at := range []time.Time{t0.Add(lease + 3*time.Second), t0.Add(24 * time.Hour)} {
			c = mustClaim(t, s, first, "token-1", at)
			if c.Held || c.State != pipeline.PushStarted || c.ExecutionID != "5e7c0000-0000-4000-8000-000000000001" {
				t.Fatalf("claim of a started commit at %v = %+v, want not held, STARTED with the execution", at, c)
			}
		}
		// Releasing a started claim changes nothing.
		if err := s.ReleasePush(ctx, first); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.GetPush(ctx, "my-lambda", commitA)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != pipeline.PushStarted || got.ExecutionID != "5e7c0000-0000-4000-8000-000000000001" || got.Held {
			t.Errorf("GetPush = %+v", got)
		}
	})
}

func TestPushClaimReleaseAndSkip(t *testing.T) {
	eachStore(t, func(t *testing.T, s pushStore) {
		ctx := context.Background()
		p := pushOf("event-1", commitA)
		mustClaim(t, s, p, "token-1", t0)
		// A failed start releases the claim: the retry takes it at once.
		if err := s.ReleasePush(ctx, p); err != nil {
			t.Fatal(err)
		}
		if c := mustClaim(t, s, p, "token-1", t0.Add(time.Second)); !c.Held || c.Attempts != 2 {
			t.Fatalf("claim after release = %+v, want held, attempt 2", c)
		}
		if err := s.MarkPushSkipped(ctx, p, "[skip ci] in the commit message", t0.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		c := mustClaim(t, s, p, "token-1", t0.Add(time.Hour))
		if c.Held || c.State != pipeline.PushSkipped || c.Reason != "[skip ci] in the commit message" {
			t.Fatalf("claim of a skipped commit = %+v", c)
		}
	})
}

func TestRecordSkip(t *testing.T) {
	eachStore(t, func(t *testing.T, s pushStore) {
		ctx := context.Background()
		tag := pushOf("event-tag", commitA)
		tag.RefType, tag.RefName, tag.RefFullName, tag.Kind = "tag", "v1.4.0", "refs/tags/v1.4.0", pipeline.PushReferenceCreated
		branch := pushOf("event-branch", commitA)
		branch.RefName = "feature/x"
		for _, rec := range []struct {
			p      pipeline.Push
			reason string
			at     time.Time
		}{{tag, "tag", t0}, {branch, "branch feature/x", t0.Add(time.Second)}, {tag, "tag", t0}} { // the tag twice: one record
			if err := s.RecordSkip(ctx, rec.p, rec.reason, rec.at); err != nil {
				t.Fatal(err)
			}
		}
		deleted := pushOf("event-delete", "")
		deleted.Kind, deleted.OldCommitID = pipeline.PushReferenceDeleted, commitB
		if err := s.RecordSkip(ctx, deleted, "branch deleted", t0); err != nil {
			t.Fatal(err)
		}

		claim, skips, err := s.GetPush(ctx, "my-lambda", commitA)
		if err != nil {
			t.Fatal(err)
		}
		if claim.State != "" {
			t.Errorf("skips made a claim: %+v", claim)
		}
		if len(skips) != 2 || skips[0].EventID != "event-tag" || skips[0].RefType != "tag" || skips[0].Reason != "tag" ||
			skips[1].EventID != "event-branch" || skips[1].RefName != "feature/x" || !skips[1].At.Equal(t0.Add(time.Second)) {
			t.Errorf("skips of %s = %+v", commitA, skips)
		}
		_, skips, err = s.GetPush(ctx, "my-lambda", commitB)
		if err != nil {
			t.Fatal(err)
		}
		if len(skips) != 1 || skips[0].Kind != pipeline.PushReferenceDeleted || skips[0].CommitID != commitB {
			t.Errorf("skips of the deleted branch's commit = %+v", skips)
		}
	})
}

func TestPushClaimConcurrentDeliveries(t *testing.T) {
	eachStore(t, func(t *testing.T, s pushStore) {
		const deliveries = 8
		var wg sync.WaitGroup
		held := make(chan pipeline.PushClaim, deliveries)
		errs := make(chan error, deliveries)
		for i := 0; i < deliveries; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c, err := s.ClaimPush(context.Background(), pushOf("event-"+strconv.Itoa(i), commitA), "token-"+strconv.Itoa(i), t0, lease)
				if err != nil {
					errs <- err
					return
				}
				if c.Held {
					held <- c
				}
			}(i)
		}
		wg.Wait()
		close(held)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var winners []pipeline.PushClaim
		for c := range held {
			winners = append(winners, c)
		}
		if len(winners) != 1 {
			t.Fatalf("%d deliveries hold the claim, want 1: %+v", len(winners), winners)
		}
		got, _, err := s.GetPush(context.Background(), "my-lambda", commitA)
		if err != nil {
			t.Fatal(err)
		}
		if got.Token != winners[0].Token || got.EventID != winners[0].EventID {
			t.Errorf("stored claim %+v is not the winner's %+v", got, winners[0])
		}
	})
}

// The claim item lives as long as the retention, like every other item.
func TestPushClaimExpires(t *testing.T) {
	d, db, table := newDynamo(t)
	ctx := context.Background()
	p := pushOf("event-1", commitA)
	if _, err := d.ClaimPush(ctx, p, "token-1", t0, lease); err != nil {
		t.Fatal(err)
	}
	if err := d.RecordSkip(ctx, pushOf("event-2", commitA), "branch", t0); err != nil {
		t.Fatal(err)
	}
	out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "PUSH#my-lambda#" + commitA}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 2 {
		t.Fatalf("%d items under the commit, want the claim and the skip", len(out.Items))
	}
	want := strconv.FormatInt(t0.Add(30*24*time.Hour).Unix(), 10)
	for _, it := range out.Items {
		n, ok := it["expiresAt"].(*types.AttributeValueMemberN)
		if !ok || n.Value != want {
			t.Errorf("item %v: expiresAt = %v, want %s", it["sk"], it["expiresAt"], want)
		}
	}
}

// TestPushClaimRerunsAnOldCommitPushedAgain: the same event stays a duplicate forever; another
// push of the commit within RerunAfter, or dated before the run started, is the same push told
// twice; a push made after it, past RerunAfter, is a rollback (the commit pushed again) and
// runs again, with its own token.
func TestPushClaimRerunsAnOldCommitPushedAgain(t *testing.T) {
	eachStore(t, func(t *testing.T, s pushStore) {
		ctx := context.Background()
		first := pushOf("event-1", commitA)
		if c := mustClaim(t, s, first, "token-1", t0); !c.Held {
			t.Fatalf("first claim not held: %+v", c)
		}
		started := t0.Add(time.Second)
		if err := s.MarkPushStarted(ctx, first, "5e7c0000-0000-4000-8000-000000000001", started); err != nil {
			t.Fatal(err)
		}
		soon := pushOf("event-2", commitA)
		if c := mustClaim(t, s, soon, "token-2", started.Add(pipeline.RerunAfter-time.Second)); c.Held {
			t.Fatalf("a second event for the commit within RerunAfter was claimed: %+v", c)
		}
		if c := mustClaim(t, s, first, "token-1", started.Add(48*time.Hour)); c.Held {
			t.Fatalf("the same event redelivered later was claimed: %+v", c)
		}
		// Another event of the commit dated before the run started (the branch created and
		// updated in one push), delivered hours late: the run serves it.
		if c := mustClaim(t, s, pushOf("event-late", commitA), "token-late", started.Add(6*time.Hour)); c.Held {
			t.Fatalf("an event dated before the start, delivered late, was claimed: %+v", c)
		}
		rollback := pushOf("event-3", commitA)
		rollback.Time = started.Add(2 * time.Hour)
		c := mustClaim(t, s, rollback, "token-3", rollback.Time.Add(2*time.Second))
		if !c.Held || c.Token != "token-3" || c.EventID != "event-3" || c.State != pipeline.PushPending || c.ExecutionID != "" {
			t.Fatalf("rollback claim = %+v, want held PENDING with token-3", c)
		}
		concurrent := pushOf("event-4", commitA)
		concurrent.Time = rollback.Time
		if c := mustClaim(t, s, concurrent, "token-4", rollback.Time.Add(3*time.Second)); c.Held {
			t.Fatalf("a concurrent rollback took the claim too: %+v", c)
		}
	})
}
