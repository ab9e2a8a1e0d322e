package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// TestDigestClaimOnTheStreamIsLeftToTheDigest: the weekly digest claims through the same
// table, so its claim item's INSERT reaches the notifier's stream handler too. The handler
// sends nothing for it and does not take it over (shared/digest sends it in the invocation
// that claimed it).
func TestDigestClaimOnTheStreamIsLeftToTheDigest(t *testing.T) {
	rig := newNotifierRig(t)
	n := pipeline.DigestNotification("shop-pipeline", "2026-W49", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	attempt, err := rig.store.Claim(context.Background(), n, time.Now(), time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, attempt)

	resp, err := rig.notifier.Handle(context.Background(), streamInsert(n, "1"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Empty(t, rig.slack.Posts())
	assert.Empty(t, rig.sns.Published())
	q, err := rig.store.Queued(context.Background(), n)
	require.NoError(t, err)
	assert.Equal(t, pipeline.ClaimPending, q.State, "still the digest's to send")
}
