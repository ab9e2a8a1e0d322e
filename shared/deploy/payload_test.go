package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

// payloadFiles are the reference payloads (testdata/) and the project's samples (events/).
func payloadFiles(t testing.TB) []string {
	var files []string
	for _, pattern := range []string{"testdata/*.json", "../../events/job-*.json", "../../events/custom-resource-*.json"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 7 {
		t.Fatalf("payload samples missing: %v", files)
	}
	return files
}

func TestDecodeEveryPayloadSample(t *testing.T) {
	for _, f := range payloadFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			if deploy.IsJob(data) {
				job, err := deploy.DecodeJob(data)
				require.NoError(t, err)
				assert.NotEmpty(t, job.ID)
				return
			}
			ev, err := deploy.DecodeCustomResource(data)
			require.NoError(t, err)
			assert.NotEmpty(t, ev.RequestID)
		})
	}
}

// edit edits a JSON document: each edit is "a/b/c=VALUE" where VALUE is JSON, or "-" to delete
// the key.
func edit(t *testing.T, file string, edits ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(data, &doc))
	for _, e := range edits {
		path, value, ok := strings.Cut(e, "=")
		require.True(t, ok, "edit %q", e)
		keys := strings.Split(path, "/")
		m := doc
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		if value == "-" {
			delete(m, keys[len(keys)-1])
			continue
		}
		var v any
		require.NoError(t, json.Unmarshal([]byte(value), &v), "edit %q", e)
		m[keys[len(keys)-1]] = v
	}
	out, err := json.Marshal(doc)
	require.NoError(t, err)
	return out
}

func TestDecodePayloadErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   func() error
		field string
	}{
		{"job without id", func() error {
			_, err := deploy.DecodeJob([]byte(`{"CodePipeline.job": {"accountId": "1"}}`))
			return err
		}, "CodePipeline.job.id"},
		{"job without account", func() error {
			_, err := deploy.DecodeJob(edit(t, "../../events/job-create-update-lambda.json", "CodePipeline.job/accountId=-"))
			return err
		}, "CodePipeline.job.accountId"},
		{"job with trailing data", func() error { _, err := deploy.DecodeJob([]byte(`{"CodePipeline.job": {"id": "x"}} {}`)); return err }, ""},
		{"update without physical id", func() error {
			_, err := deploy.DecodeCustomResource(edit(t, "../../events/custom-resource-update.json", "PhysicalResourceId=-"))
			return err
		}, "PhysicalResourceId"},
		{"unknown request type", func() error {
			_, err := deploy.DecodeCustomResource(edit(t, "../../events/custom-resource-create.json", `RequestType="Upsert"`))
			return err
		}, "RequestType"},
		{"no response URL", func() error {
			_, err := deploy.DecodeCustomResource(edit(t, "../../events/custom-resource-create.json", `ResponseURL=-`))
			return err
		}, "ResponseURL"},
		{"request id of the wrong type", func() error {
			_, err := deploy.DecodeCustomResource(edit(t, "../../events/custom-resource-create.json", `RequestId=7`))
			return err
		}, "RequestId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			var pe *deploy.PayloadError
			require.True(t, errors.As(err, &pe), "want *PayloadError, got %v", err)
			assert.Equal(t, tc.field, pe.Field)
			assert.ErrorIs(t, err, deploy.ErrMalformedPayload)
		})
	}
	assert.False(t, deploy.IsJob([]byte(`{"RequestType":"Create"}`)))
}

func FuzzDecodeJob(f *testing.F) {
	for _, file := range payloadFiles(f) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := deploy.DecodeJob(data)
		if err == nil && (job.ID == "" || job.AccountID == "") {
			t.Fatal("job without id or account accepted")
		}
		if err != nil && job.ID != "" {
			t.Fatal("half-filled job on error")
		}
		var pe *deploy.PayloadError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %T is not *PayloadError", err)
		}
	})
}

func FuzzDecodeCustomResource(f *testing.F) {
	for _, file := range payloadFiles(f) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := deploy.DecodeCustomResource(data)
		if err == nil && (ev.RequestID == "" || ev.ResponseURL == "" || ev.RequestType == "") {
			t.Fatal("incomplete request accepted")
		}
		if err != nil && ev.RequestID != "" {
			t.Fatal("half-filled request on error")
		}
	})
}

// The router answers what it cannot decode wherever an answer can go.
func TestRouterAnswersMalformedJobsByTheirID(t *testing.T) {
	w := newWorld(t)
	r := &deploy.Router{Jobs: w.handler, Custom: w.customResource().cr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const id = "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702"
	resp, err := r.Handle(context.Background(), []byte(`{"CodePipeline.job": {"id": "`+id+`"}}`))
	require.NoError(t, err)
	assert.Equal(t, "rejected", resp.Outcome)
	assert.Contains(t, resp.Reason, "accountId")
	res, ok := w.jobs.Result(id)
	require.True(t, ok, "the job was answered")
	assert.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, "CodePipeline.job.accountId")
}

// Issue 9, defect 12: an undecodable custom resource request still gets an answer, so that
// CloudFormation does not wait for its timeout.
func TestRouterAnswersMalformedCustomResourceRequestsFailed(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	r := &deploy.Router{Jobs: w.handler, Custom: h.cr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	raw := edit(t, "../../events/custom-resource-create.json", `RequestType="Upsert"`, `ResponseURL=`+jsonString(h.url), `RequestId="r-1"`)
	resp, err := r.Handle(context.Background(), raw)
	require.NoError(t, err)
	assert.Equal(t, "rejected", resp.Outcome)
	body := h.last(t)
	assert.Equal(t, "FAILED", body.Status)
	assert.Contains(t, body.Reason, "RequestType")
	assert.Equal(t, "r-1", body.RequestID)
	assert.Equal(t, "PipelineStack", body.LogicalResourceID)
	assert.Equal(t, "not-created:r-1", body.PhysicalResourceID, "names no stack: the Delete that follows deletes nothing")
	assert.Zero(t, w.cfn.Calls(awsfake.OpDescribeStacks), "nothing was asked of CloudFormation")
	assert.NotContains(t, w.logs.String(), signature)

	// Without a ResponseURL there is nobody to answer: the invocation fails (and, after
	// Lambda's retries, lands in the deployer's failure queue, with its alarm).
	_, err = r.Handle(context.Background(), edit(t, "../../events/custom-resource-create.json", `ResponseURL=-`, `RequestType="Upsert"`))
	assert.ErrorContains(t, err, "neither a CodePipeline job nor a custom resource request")
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestLoopbackReplier(t *testing.T) {
	got := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got++ }))
	defer srv.Close()
	var logs strings.Builder
	r := deploy.LoopbackReplier{Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	if err := r.Reply(context.Background(), srv.URL+"/answer", []byte(`{}`)); err != nil || got != 1 {
		t.Errorf("loopback: %v, %d answers", err, got)
	}
	if err := r.Reply(context.Background(), "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/x?X-Amz-Signature=abc", []byte(`{}`)); err != nil || got != 1 {
		t.Errorf("AWS URL: %v, %d answers", err, got)
	}
	if !strings.Contains(logs.String(), "not sent") || strings.Contains(logs.String(), "X-Amz-Signature") {
		t.Errorf("log: %s", logs.String())
	}
}
