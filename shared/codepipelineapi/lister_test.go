package codepipelineapi_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Started reads ListPipelineExecutions page by page (100 a page) and stops at the first page
// with nothing started since: 350 executions a minute apart, the last 120 asked for, cost
// three calls, not four.
func TestListerReadsOnlyThePagesItNeeds(t *testing.T) {
	const name = "my-lambda-pipeline"
	fake := awsfake.NewCodePipeline(t, name)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i := range 350 {
		status := types.PipelineExecutionStatusSucceeded
		if i == 349 {
			status = types.PipelineExecutionStatusInProgress
		}
		fake.SetExecution(awsfake.Execution{Pipeline: name, ID: fmt.Sprintf("0b1c2d3e-4f50-4617-8829-%012d", i), Status: status,
			StartTime: t0.Add(time.Duration(i) * time.Minute), LastUpdateTime: t0.Add(time.Duration(i)*time.Minute + 30*time.Second)})
	}
	l := codepipelineapi.Lister{API: fake.Client(t)}
	got, err := l.Started(context.Background(), name, t0.Add(230*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 120 {
		t.Fatalf("%d executions, want the 120 started since", len(got))
	}
	newest := got[0]
	if newest.ExecutionID != "0b1c2d3e-4f50-4617-8829-000000000349" || newest.State != pipeline.StateStarted || !newest.StartTime.Equal(t0.Add(349*time.Minute)) {
		t.Errorf("newest = %+v", newest)
	}
	if got[119].State != pipeline.StateSucceeded || !got[119].StartTime.Equal(t0.Add(230*time.Minute)) {
		t.Errorf("oldest = %+v", got[119])
	}
	if n := fake.Calls(awsfake.OpListPipelineExecutions); n != 3 {
		t.Errorf("ListPipelineExecutions calls = %d, want 3", n)
	}

	if _, err := l.Started(context.Background(), "unknown-pipeline", t0); !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("unknown pipeline: %v, want ErrNotFound", err)
	}
}
