package pipeline

import (
	"strings"
)

// A pipeline's name is unique only within its account and region: two accounts, or two
// regions, may each have an "app-pipeline", and events from other accounts reach the control
// plane's bus as soon as someone forwards them. Inside the control plane a pipeline is
// therefore known by its identity (the Pipeline field of Event, Run, Outcome, Notification
// and Key, and every store key built from them):
//
//   - its name, for a pipeline of the control plane's own account and region (Home), so that
//     the records, outcomes and claims of those pipelines keep the keys they always had;
//   - its ARN, arn:<partition>:codepipeline:<region>:<account>:<name>, for any other.
//
// Pipeline names cannot contain ':', so a name and an ARN never collide. Everything keyed by
// the identity (runs, outcomes, the "recovered" decision, claims) is per account, region and
// pipeline. What needs the pipeline's own name or region (CodePipeline's API, console links,
// projects, what people read) takes it from ParsePipelineID.

// Home is the account and region the control plane runs in. An empty field matches any: the
// zero Home (lp replay without --home, tests) takes every event for its own, and so does an
// event that names no account or region (the sample events).
type Home struct {
	Account string // 12 digits, e.g. 111111111111
	Region  string // e.g. eu-west-1
}

// Owns reports whether a pipeline of account and region is one of the home's.
func (h Home) Owns(account, region string) bool {
	return matches(h.Account, account) && matches(h.Region, region)
}

func matches(home, other string) bool { return home == "" || other == "" || home == other }

// PipelineID returns the identity of the pipeline called name in account and region: the
// name when the home owns it, else its ARN.
func (h Home) PipelineID(account, region, name string) string {
	if h.Owns(account, region) {
		return name
	}
	return PipelineRef{Partition: PartitionOf(region), Account: account, Region: region, Name: name}.ARN()
}

// Identify returns ev with its Pipeline set to the identity of its pipeline (PipelineID). The
// functions apply it once, where an event enters the use case (shared/recording); every key,
// outcome, claim and decision after that is per account, region and pipeline. An event
// whose Pipeline is an identity already (the reconciler's) is returned as it is.
func (h Home) Identify(ev Event) Event {
	if strings.Contains(ev.Pipeline, ":") {
		return ev
	}
	ev.Pipeline = h.PipelineID(ev.Account, ev.Region, ev.Pipeline)
	return ev
}

// PipelineRef is what a pipeline identity says: the pipeline's name and, for a pipeline of
// another account or region, where it is.
type PipelineRef struct {
	Partition, Account, Region string // empty for a home pipeline
	Name                       string
}

// ParsePipelineID reads a pipeline identity (see Home.PipelineID): a name is a home pipeline;
// an ARN names a pipeline of another account or region. A string that is neither is taken
// for a name.
func ParsePipelineID(id string) PipelineRef {
	parts := strings.SplitN(id, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "codepipeline" || parts[5] == "" {
		return PipelineRef{Name: id}
	}
	return PipelineRef{Partition: parts[1], Region: parts[3], Account: parts[4], Name: parts[5]}
}

// Foreign reports whether the pipeline is not the home's: the control plane can read nothing
// of it (CodePipeline, CodeBuild, CloudFormation answer for their own account and region).
func (p PipelineRef) Foreign() bool { return p.Account != "" || p.Region != "" }

// ARN is the pipeline's ARN; "" for a home pipeline, whose account and region the identity
// does not carry.
func (p PipelineRef) ARN() string {
	if !p.Foreign() {
		return ""
	}
	return "arn:" + p.Partition + ":codepipeline:" + p.Region + ":" + p.Account + ":" + p.Name
}

// String names the pipeline for people: its name, followed for a foreign pipeline by its
// account and region, "app-pipeline (222222222222/us-east-1)", so that two pipelines of one
// name read apart.
func (p PipelineRef) String() string {
	if !p.Foreign() {
		return p.Name
	}
	return p.Name + " (" + p.Account + "/" + p.Region + ")"
}

// DisplayName names the pipeline of identity id for people (PipelineRef.String).
func DisplayName(id string) string { return ParsePipelineID(id).String() }

// PartitionOf returns the AWS partition of a region: aws-cn for China, aws-us-gov for
// GovCloud, aws otherwise. Events are forwarded only within a partition, so a foreign
// pipeline's partition is the home's; it is derived from the event's region because events
// name no partition outside their resources.
func PartitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	}
	return "aws"
}
