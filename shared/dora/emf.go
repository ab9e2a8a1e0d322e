package dora

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// The metrics a finished run emits, in the namespace Namespace. The dashboard in template.yaml
// graphs exactly these (an infrastructure test holds them together).
const (
	Namespace = "LambdaPipeline"

	// Dimensions.
	DimPipeline = "Pipeline"
	DimProject  = "Project"
	DimStatus   = "Status"
	DimStage    = "Stage"

	// Every ended attempt, with dimension Status: runs by status.
	MetricRuns = "Runs"
	// Decisive attempts only (SUCCEEDED or FAILED): 1 or 0 each, so that Sum counts them and
	// Average of RunFailed is the change failure rate of the period.
	MetricRunSucceeded = "RunSucceeded"
	MetricRunFailed    = "RunFailed"
	// Decisive attempts only: start of the run to the end of the attempt.
	MetricRunDuration = "RunDuration"
	// A failed attempt whose failing stage is known, with dimension Stage.
	MetricFailuresByStage = "FailuresByStage"
	// A deploy (Rule.IsDeploy): 1; with the lead time of each change it delivers.
	MetricDeployments = "Deployments"
	MetricLeadTime    = "LeadTime"
	// A success that ended a failure streak: how long the pipeline was broken.
	MetricTimeToRestore = "TimeToRestore"
)

// maxValues is how many values one metric may carry in an embedded-metric-format document
// ("Specification: Embedded metric format", MetricDefinition values: arrays of up to 100
// values, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
const maxValues = 100

// RunEnd is what EMF needs to know of a finished run.
type RunEnd struct {
	Run pipeline.Run
	// Outcome is the attempt that just ended; zero means the run's own status.
	Outcome pipeline.Outcome
	// Project names the project; empty derives it from the pipeline name (ProjectOf).
	Project string
	// Changes are the commit times of the changes this deploy delivers (see Delivered); empty
	// means the run's own commit only.
	Changes []time.Time
	// BrokenSince is when the streak this success ends began (the recovered notification's
	// BrokenSince); zero when the run restored nothing.
	BrokenSince time.Time
}

// ProjectOf returns the project a pipeline belongs to: pipelines are named
// <ProjectName>-pipeline (infrastructure/pipeline.yml). Empty when the name does not say, and
// for a pipeline of another account or region (its identity is an ARN, pipeline.Home):
// projects are the home's.
func ProjectOf(pipelineID string) string {
	if pipeline.ParsePipelineID(pipelineID).Foreign() {
		return ""
	}
	p, ok := strings.CutSuffix(pipelineID, "-pipeline")
	if !ok {
		return ""
	}
	return p
}

// Delivered returns the commit times of the changes the deploy run delivers, from the
// pipeline's runs (which must include the runs since the previous deploy): as Compute counts
// lead time. Empty when run is not a deploy.
func Delivered(runs []pipeline.Run, run pipeline.Run, rule Rule) []time.Time {
	own := []pipeline.Run{run}
	for _, r := range runs {
		if r.Pipeline == run.Pipeline && r.ExecutionID != run.ExecutionID {
			own = append(own, r)
		}
	}
	sortRuns(own)
	var out []time.Time
	for _, c := range changes(own, rule) {
		if c.DeployedBy == run.ExecutionID {
			out = append(out, c.CommittedAt)
		}
	}
	return out
}

// metricDirective and metricDefinition are the embedded metric format's MetricDirective and
// MetricDefinition objects ("Specification: Embedded metric format",
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
type metricDirective struct {
	Namespace  string             `json:"Namespace"`
	Dimensions [][]string         `json:"Dimensions"`
	Metrics    []metricDefinition `json:"Metrics"`
}

type metricDefinition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// EMF returns the CloudWatch embedded-metric-format log line of a finished run attempt: one
// JSON object, without a trailing newline, that CloudWatch Logs turns into the metrics above
// when the line is written as is to a Lambda function's standard output ("Using the embedded
// metric format with Lambda",
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Lambda.html).
// Its timestamp is the attempt's end. Write it with fmt.Println, not through a logger that
// would wrap it in another object.
//
// The metrics have the dimensions Pipeline and Project (Pipeline alone when the project is not
// known); Runs adds Status and FailuresByStage adds Stage. The line also carries executionId,
// attempt, status and commitId, for CloudWatch Logs Insights.
//
// It returns an error when the run has no pipeline or the attempt has not ended.
func EMF(e RunEnd, rule Rule) ([]byte, error) {
	r := e.Run
	if r.Pipeline == "" {
		return nil, errors.New("emf: the run has no pipeline")
	}
	o := e.Outcome
	if o.Status == "" {
		end, _ := EndOf(r)
		o = pipeline.Outcome{Pipeline: r.Pipeline, ExecutionID: r.ExecutionID, Attempt: max(r.Attempt, 1), Status: r.Status, At: end}
	}
	if !o.Status.Terminal() || o.At.IsZero() {
		return nil, fmt.Errorf("emf: run %s attempt %d has not ended (%s)", r.ExecutionID, o.Attempt, o.Status)
	}
	project := e.Project
	if project == "" {
		project = ProjectOf(r.Pipeline)
	}
	dims := []string{DimPipeline}
	doc := map[string]any{DimPipeline: r.Pipeline}
	if project != "" {
		dims = append(dims, DimProject)
		doc[DimProject] = project
	}
	with := func(extra string) [][]string {
		return [][]string{append(append([]string{}, dims...), extra)}
	}

	var runMetrics []metricDefinition
	put := func(name, unit string, v any) {
		runMetrics = append(runMetrics, metricDefinition{Name: name, Unit: unit})
		doc[name] = v
	}
	directives := []metricDirective{}

	doc[DimStatus] = string(o.Status)
	doc[MetricRuns] = 1
	directives = append(directives, metricDirective{Namespace: Namespace, Dimensions: with(DimStatus),
		Metrics: []metricDefinition{{Name: MetricRuns, Unit: "Count"}}})

	if o.Status.Decisive() {
		succeeded, failed := 0, 0
		if o.Status == pipeline.StatusSucceeded {
			succeeded = 1
		} else {
			failed = 1
		}
		put(MetricRunSucceeded, "Count", succeeded)
		put(MetricRunFailed, "Count", failed)
		if !r.StartedAt.IsZero() && !o.At.Before(r.StartedAt) {
			put(MetricRunDuration, "Seconds", o.At.Sub(r.StartedAt).Seconds())
		}
	}
	if o.Status == pipeline.StatusSucceeded && rule.IsDeploy(withStatus(r, o.Status)) {
		put(MetricDeployments, "Count", 1)
		changes := e.Changes
		if len(changes) == 0 {
			if c := r.EnteredAt(); !c.IsZero() {
				changes = []time.Time{c}
			}
		}
		if len(changes) > maxValues {
			changes = changes[len(changes)-maxValues:]
		}
		var leads []float64
		for _, c := range changes {
			leads = append(leads, max(o.At.Sub(c), 0).Seconds())
		}
		switch len(leads) {
		case 0:
		case 1:
			put(MetricLeadTime, "Seconds", leads[0])
		default:
			put(MetricLeadTime, "Seconds", leads)
		}
	}
	if o.Status == pipeline.StatusSucceeded && !e.BrokenSince.IsZero() && !o.At.Before(e.BrokenSince) {
		put(MetricTimeToRestore, "Seconds", o.At.Sub(e.BrokenSince).Seconds())
	}
	if len(runMetrics) > 0 {
		directives = append(directives, metricDirective{Namespace: Namespace, Dimensions: [][]string{dims}, Metrics: runMetrics})
	}
	if o.Status == pipeline.StatusFailed {
		if f := r.FailureAt(o.Attempt); f.Stage != "" {
			doc[DimStage] = f.Stage
			doc[MetricFailuresByStage] = 1
			directives = append(directives, metricDirective{Namespace: Namespace, Dimensions: with(DimStage),
				Metrics: []metricDefinition{{Name: MetricFailuresByStage, Unit: "Count"}}})
		}
	}

	doc["executionId"] = r.ExecutionID
	doc["attempt"] = o.Attempt
	if r.Commit.ID != "" {
		doc["commitId"] = r.Commit.ID
	}
	doc["_aws"] = map[string]any{
		"Timestamp":         o.At.UnixMilli(),
		"CloudWatchMetrics": directives,
	}
	return json.Marshal(doc)
}

// withStatus is the run as if its status were s: an attempt that succeeded is a deploy when
// it reached the deploy stage, whatever the record's latest status says.
func withStatus(r pipeline.Run, s pipeline.Status) pipeline.Run {
	r.Status = s
	return r
}
