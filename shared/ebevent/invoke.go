package ebevent

import (
	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"
)

// The deployer is invoked directly, not through EventBridge: by CodePipeline's Lambda Invoke
// action and by CloudFormation for the PipelineStack custom resource. Their payloads use
// aws-lambda-go's types; these decoders add the validation.

// DecodeJob decodes a CodePipeline Invoke action job ({"CodePipeline.job": ...}).
func DecodeJob(data []byte) (events.CodePipelineJob, error) {
	var ev events.CodePipelineJobEvent
	if err := strictUnmarshal(data, &ev); err != nil {
		return events.CodePipelineJob{}, jsonError("", err)
	}
	job := ev.CodePipelineJob
	if job.ID == "" {
		return events.CodePipelineJob{}, malformed("CodePipeline.job.id", "missing")
	}
	if job.AccountID == "" {
		return events.CodePipelineJob{}, malformed("CodePipeline.job.accountId", "missing")
	}
	for _, a := range job.Data.InputArtifacts {
		if a.Location.S3Location.BucketName == "" || a.Location.S3Location.ObjectKey == "" {
			return events.CodePipelineJob{}, malformed("CodePipeline.job.data.inputArtifacts", "artifact %q has no S3 location", a.Name)
		}
	}
	return job, nil
}

// DecodeCustomResource decodes a CloudFormation custom resource request.
func DecodeCustomResource(data []byte) (cfn.Event, error) {
	var ev cfn.Event
	if err := strictUnmarshal(data, &ev); err != nil {
		return cfn.Event{}, jsonError("", err)
	}
	switch ev.RequestType {
	case cfn.RequestCreate, cfn.RequestUpdate, cfn.RequestDelete:
	case "":
		return cfn.Event{}, malformed("RequestType", "missing")
	default:
		return cfn.Event{}, malformed("RequestType", "%q is not Create, Update or Delete", ev.RequestType)
	}
	for _, f := range []struct{ name, value string }{
		{"RequestId", ev.RequestID}, {"ResponseURL", ev.ResponseURL},
		{"StackId", ev.StackID}, {"LogicalResourceId", ev.LogicalResourceID},
	} {
		if f.value == "" {
			return cfn.Event{}, malformed(f.name, "missing")
		}
	}
	if ev.RequestType != cfn.RequestCreate && ev.PhysicalResourceID == "" {
		return cfn.Event{}, malformed("PhysicalResourceId", "missing on %s", ev.RequestType)
	}
	return ev, nil
}

// IsJob reports whether a raw payload looks like a CodePipeline job rather than a custom
// resource request, so that one deployer binary can serve both.
func IsJob(data []byte) bool {
	var probe struct {
		Job *struct{} `json:"CodePipeline.job"`
	}
	return strictUnmarshal(data, &probe) == nil && probe.Job != nil
}
