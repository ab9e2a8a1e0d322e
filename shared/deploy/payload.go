package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"
)

// The deployer is invoked directly, not through EventBridge: by CodePipeline's Lambda Invoke
// action ("Invoke an AWS Lambda function in a pipeline in CodePipeline",
// https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-invoke-lambda-function.html)
// and by CloudFormation for the PipelineStack custom resource ("Custom resource request
// objects",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/crpg-ref-requests.html).
// Their payloads use aws-lambda-go's types; these decoders add the validation.

// ErrMalformedPayload is the kind of every decoding error here, for errors.Is.
var ErrMalformedPayload = errors.New("malformed payload")

// PayloadError is a payload that does not decode. Field is the JSON path of the offending field
// ("" for the whole document).
type PayloadError struct {
	Field  string
	Reason string
}

func (e *PayloadError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: %s", ErrMalformedPayload, e.Reason)
	}
	return fmt.Sprintf("%v: %s: %s", ErrMalformedPayload, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrMalformedPayload) work.
func (e *PayloadError) Is(target error) bool { return target == ErrMalformedPayload }

func malformedPayload(field, format string, args ...any) *PayloadError {
	return &PayloadError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// decodeStrict decodes exactly one JSON value, naming the field of a type error.
func decodeStrict(data []byte, v any) *PayloadError {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return malformedPayload(te.Field, "expected %s, got JSON %s", te.Type, te.Value)
		}
		return malformedPayload("", "invalid JSON: %v", err)
	}
	if dec.More() {
		return malformedPayload("", "unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return malformedPayload("", "unexpected data after the JSON value")
	}
	return nil
}

// DecodeJob decodes a CodePipeline Invoke action job ({"CodePipeline.job": ...}).
func DecodeJob(data []byte) (events.CodePipelineJob, error) {
	var ev events.CodePipelineJobEvent
	if err := decodeStrict(data, &ev); err != nil {
		return events.CodePipelineJob{}, err
	}
	job := ev.CodePipelineJob
	if job.ID == "" {
		return events.CodePipelineJob{}, malformedPayload("CodePipeline.job.id", "missing")
	}
	if job.AccountID == "" {
		return events.CodePipelineJob{}, malformedPayload("CodePipeline.job.accountId", "missing")
	}
	for _, a := range job.Data.InputArtifacts {
		if a.Location.S3Location.BucketName == "" || a.Location.S3Location.ObjectKey == "" {
			return events.CodePipelineJob{}, malformedPayload("CodePipeline.job.data.inputArtifacts", "artifact %q has no S3 location", a.Name)
		}
	}
	return job, nil
}

// DecodeCustomResource decodes a CloudFormation custom resource request.
func DecodeCustomResource(data []byte) (cfn.Event, error) {
	var ev cfn.Event
	if err := decodeStrict(data, &ev); err != nil {
		return cfn.Event{}, err
	}
	switch ev.RequestType {
	case cfn.RequestCreate, cfn.RequestUpdate, cfn.RequestDelete:
	case "":
		return cfn.Event{}, malformedPayload("RequestType", "missing")
	default:
		return cfn.Event{}, malformedPayload("RequestType", "%q is not Create, Update or Delete", ev.RequestType)
	}
	for _, f := range []struct{ name, value string }{
		{"RequestId", ev.RequestID}, {"ResponseURL", ev.ResponseURL},
		{"StackId", ev.StackID}, {"LogicalResourceId", ev.LogicalResourceID},
	} {
		if f.value == "" {
			return cfn.Event{}, malformedPayload(f.name, "missing")
		}
	}
	if ev.RequestType != cfn.RequestCreate && ev.PhysicalResourceID == "" {
		return cfn.Event{}, malformedPayload("PhysicalResourceId", "missing on %s", ev.RequestType)
	}
	return ev, nil
}

// IsJob reports whether a raw payload looks like a CodePipeline job rather than a custom
// resource request, so that one deployer binary can serve both.
func IsJob(data []byte) bool {
	var probe struct {
		Job *struct{} `json:"CodePipeline.job"`
	}
	return decodeStrict(data, &probe) == nil && probe.Job != nil
}

// jobIDOf reads the id of a job that does not decode as a whole ("" when there is none).
func jobIDOf(data []byte) string {
	var probe struct {
		Job struct {
			ID string `json:"id"`
		} `json:"CodePipeline.job"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return ""
	}
	return probe.Job.ID
}

// salvageRequest reads, from a custom resource request that does not decode, the fields an
// answer needs: whichever of them are strings. ok is false without a ResponseURL.
func salvageRequest(data []byte) (ev cfn.Event, ok bool) {
	var fields map[string]any
	if json.Unmarshal(data, &fields) != nil {
		return cfn.Event{}, false
	}
	str := func(k string) string { s, _ := fields[k].(string); return s }
	ev = cfn.Event{
		RequestType: cfn.RequestType(str("RequestType")), RequestID: str("RequestId"), ResponseURL: str("ResponseURL"),
		StackID: str("StackId"), LogicalResourceID: str("LogicalResourceId"), PhysicalResourceID: str("PhysicalResourceId"),
		ResourceType: str("ResourceType"),
	}
	return ev, ev.ResponseURL != ""
}
