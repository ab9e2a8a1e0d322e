// Package simulation is test support: a deterministic simulation of the control plane. From a
// seed it generates the ground truth of several pipelines' executions, renders the EventBridge
// events CodePipeline and CodeCommit would emit, delivers them through the real handlers
// (recording, pushstart, delivery, reconcile over runstore.Memory) with duplicates, delays,
// reordering and losses, injects faults at every store, AWS and Slack call on a simulated
// clock, and checks the notification and run-state invariants against the ground truth.
// docs/simulation.md describes the model and the invariants.
package simulation

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Pipe is one pipeline: its name is unique only within its account and region.
type Pipe struct {
	Account, Region, Name string
	Mode                  string // QUEUED, SUPERSEDED or PARALLEL
}

// Home is the simulated control plane's account and region. Without NameCollisions every
// pipeline is the home's; with it some are another account's or region's, whose events reach
// the control plane's bus (forwarded).
var Home = pipeline.Home{Account: "111111111111", Region: "eu-west-1"}

// ID is the pipeline's identity in the control plane (pipeline.Home.PipelineID).
func (p Pipe) ID() string { return Home.PipelineID(p.Account, p.Region, p.Name) }

// V2 reports whether the pipeline is of type V2, whose events carry the execution's
// start-time: the QUEUED and PARALLEL execution modes need V2; a SUPERSEDED pipeline here is V1.
func (p Pipe) V2() bool { return p.Mode != "SUPERSEDED" }

// Foreign reports whether the pipeline is not the home's.
func (p Pipe) Foreign() bool { return !Home.Owns(p.Account, p.Region) }

// kind is how an execution goes.
type kind string

const (
	kindSuccess      kind = "success"
	kindFail         kind = "fail"
	kindRetryGreen   kind = "retry-green" // a stage fails, the stage retry (attempt 2) succeeds
	kindRetryRed     kind = "retry-red"   // a stage fails, the retry fails again
	kindSuperseded   kind = "superseded"
	kindStopped      kind = "stopped"
	kindSelfUpdate   kind = "self-update" // CANCELED: the pipeline updated itself and restarted
	kindEmptyRepo    kind = "empty-repo"  // the CreatePipeline run on an empty repository
	kindSourceFailed kind = "source-failed"
)

// Attempt is the ground truth of one attempt of an execution that ended.
type Attempt struct {
	N      int
	Status pipeline.Status
	At     time.Time
}

// Exec is the ground truth of one execution.
type Exec struct {
	Pipe      Pipe
	ID        string
	Kind      kind
	Trigger   string
	Start     time.Time
	Commit    string
	Attempts  []Attempt
	Events    []Raw       // what CodePipeline emits, in time order
	Push      *Raw        // the CodeCommit push that starts it (StartPipelineExecution runs)
	Actions   []actionRun // what ListActionExecutions reports, for the reconciler's fake
	FinalAt   time.Time
	Final     pipeline.State
	EmptyRepo bool
}

// Raw is one EventBridge event as JSON, with the time it was emitted.
type Raw struct {
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"event"`
}

type actionRun struct {
	pipeline.ActionExecution
	attempt int
}

var stages = []struct{ stage, action, category, provider string }{
	{"Source", "Source", "Source", "CodeCommit"},
	{"CreateUpdatePipeline", "SelfUpdate", "Invoke", "Lambda"},
	{"BuildAndTest", "Build", "Build", "CodeBuild"},
	{"CreateUpdateLambda", "DeployFunction", "Invoke", "Lambda"},
}

// Features switch parts of the generated world on; each one exercises a defect of issue 9
// that the code now handles (see docs/simulation.md).
type Features struct {
	NameCollisions bool // the same pipeline name in several accounts and regions (defect 6)
	HiddenTriggers bool // a FAILED event without execution-trigger whose STARTED is lost (defect 3)
	SameSecondEnds bool // two runs of a pipeline ending in the same second (defect 8)
	// IdleGaps: some pipelines stay idle longer than the store's retention (Retention)
	// between two runs, and the table's TTL deletes what expired (defect 12's outcomes).
	IdleGaps bool
}

// AllFeatures switches every feature on.
var AllFeatures = Features{NameCollisions: true, HiddenTriggers: true, SameSecondEnds: true, IdleGaps: true}

// Retention is the simulated table's retention (RetentionDays): shorter than the deployed
// default (90 days), so that an idle gap outlasts it without simulating months, and longer
// than the reconciler's Lookback (8 days), as the deployed default is.
const Retention = 9 * 24 * time.Hour

// SuiteFeatures are the features the suite (simulation_test.go) and cmd/sim generate their
// worlds with: every one, now that the defects they exercise (3, 6, 8 and 12) are fixed.
var SuiteFeatures = AllFeatures

// World is one seed's ground truth.
type World struct {
	Seed  uint64
	Pipes []Pipe
	Execs []*Exec
}

// Generate builds the ground truth of seed: 2–4 pipelines, each with 3–10 executions.
func Generate(seed uint64, f Features) *World {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	w := &World{Seed: seed}
	accounts := []string{"111111111111", "222222222222"}
	regions := []string{"eu-west-1", "us-east-1"}
	names := []string{"app", "api", "search", "billing"}
	modes := []string{"QUEUED", "SUPERSEDED", "PARALLEL"}
	np := 2 + rng.IntN(3)
	seen := map[string]bool{}
	for i := 0; i < np; i++ {
		p := Pipe{Account: accounts[0], Region: regions[0], Name: names[i], Mode: modes[rng.IntN(3)]}
		if f.NameCollisions && i > 0 && rng.IntN(2) == 0 {
			p.Name = w.Pipes[rng.IntN(len(w.Pipes))].Name
			p.Account, p.Region = accounts[rng.IntN(2)], regions[rng.IntN(2)]
		}
		id := p.Account + "/" + p.Region + "/" + p.Name
		if seen[id] {
			p.Account, p.Region = accounts[1], regions[1]
			if seen[p.Account+"/"+p.Region+"/"+p.Name] {
				p.Name = names[i]
				p.Account, p.Region = accounts[0], regions[0]
			}
		}
		seen[p.Account+"/"+p.Region+"/"+p.Name] = true
		w.Pipes = append(w.Pipes, p)
	}
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	// The idle gaps come from their own stream, so that the rest of a seed's world is the
	// same with the feature on or off (only shifted in time).
	idle := rand.New(rand.NewPCG(seed, 0x1d1e))
	n := 0
	for pi, p := range w.Pipes {
		t := base.Add(time.Duration(rng.IntN(600)) * time.Second)
		count := 3 + rng.IntN(8)
		gapAfter := -1 // the execution after which the pipeline stays idle
		if f.IdleGaps && idle.IntN(3) == 0 {
			gapAfter = idle.IntN(count - 1)
		}
		var prevEnd time.Time
		for i := 0; i < count; i++ {
			n++
			e := &Exec{Pipe: p, ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", seed&0xffffffff, n), Trigger: "StartPipelineExecution",
				Commit: fmt.Sprintf("%040x", seed*1000+uint64(n))}
			switch r := rng.IntN(100); {
			case i == 0 && rng.IntN(2) == 0:
				e.Kind, e.Trigger, e.EmptyRepo = kindEmptyRepo, pipeline.TriggerCreatePipeline, true
			case r < 38:
				e.Kind = kindSuccess
			case r < 60:
				e.Kind = kindFail
			case r < 68:
				e.Kind = kindRetryGreen
			case r < 72:
				e.Kind = kindRetryRed
			case r < 80:
				e.Kind = kindSuperseded
			case r < 86:
				e.Kind = kindStopped
			case r < 93:
				e.Kind = kindSelfUpdate
			default:
				e.Kind = kindSourceFailed
			}
			e.Start = t
			render(e, rng, f)
			// Executions end in distinct seconds unless SameSecondEnds asks for a tie.
			if !prevEnd.IsZero() && !e.FinalAt.After(prevEnd) && !(f.SameSecondEnds && e.FinalAt.Equal(prevEnd)) {
				shift := prevEnd.Sub(e.FinalAt) + time.Second
				shiftExec(e, shift)
			}
			prevEnd = e.FinalAt
			w.Execs = append(w.Execs, e)
			gap := time.Duration(3+rng.IntN(30)) * time.Minute
			if p.Mode == "PARALLEL" && rng.IntN(3) == 0 {
				gap = time.Duration(20+rng.IntN(60)) * time.Second
			}
			if f.SameSecondEnds && rng.IntN(12) == 0 {
				// The next run starts so that it ends in the same second as this one.
				gap = 0
			}
			t = t.Add(gap)
			if e.FinalAt.After(t) && p.Mode != "PARALLEL" && gap != 0 {
				t = e.FinalAt.Add(time.Duration(1+rng.IntN(120)) * time.Second)
			}
			if i == gapAfter {
				// Idle past the retention: TTL removes this run and what came before.
				t = maxTime(t, e.FinalAt).Add(Retention + time.Duration(1+idle.IntN(24))*time.Hour)
			}
		}
		_ = pi
	}
	return w
}

func shiftExec(e *Exec, d time.Duration) {
	// Shift only the end: the terminal events move later (a slower last action).
	e.FinalAt = e.FinalAt.Add(d)
	for i := range e.Attempts {
		if e.Attempts[i].N == len(e.Attempts) {
			e.Attempts[i].At = e.Attempts[i].At.Add(d)
		}
	}
	for i := range e.Events {
		if !e.Events[i].At.Before(e.FinalAt.Add(-d)) {
			e.Events[i].At = e.Events[i].At.Add(d)
			e.Events[i].Data = retime(e.Events[i].Data, e.Events[i].At)
		}
	}
	for i := range e.Actions {
		a := &e.Actions[i]
		if !a.UpdatedAt.Before(e.FinalAt.Add(-d)) && a.attempt == len(e.Attempts) {
			a.UpdatedAt = a.UpdatedAt.Add(d)
		}
	}
}

func retime(data json.RawMessage, t time.Time) json.RawMessage {
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	m["time"] = t.UTC().Format(time.RFC3339)
	out, _ := json.Marshal(m)
	return out
}

// render writes an execution's events, attempts and action executions.
func render(e *Exec, rng *rand.Rand, f Features) {
	t := e.Start
	seq := 0
	emit := func(level, stage, action, state string, attempt int, extra map[string]any) {
		seq++
		detail := map[string]any{"pipeline": e.Pipe.Name, "execution-id": e.ID, "state": state, "version": 3, "pipeline-execution-attempt": attempt}
		if level == "pipeline" && e.Pipe.V2() {
			detail["start-time"] = e.Start.UTC().Format(time.RFC3339Nano)
		}
		dt := "CodePipeline Pipeline Execution State Change"
		switch level {
		case "stage":
			dt, detail["stage"] = "CodePipeline Stage Execution State Change", stage
		case "action":
			dt, detail["stage"], detail["action"] = "CodePipeline Action Execution State Change", stage, action
		}
		for k, v := range extra {
			detail[k] = v
		}
		env := map[string]any{"version": "0", "id": fmt.Sprintf("%s-%04d", e.ID[:18], seq), "detail-type": dt, "source": "aws.codepipeline",
			"account": e.Pipe.Account, "time": t.UTC().Format(time.RFC3339), "region": e.Pipe.Region,
			"resources": []string{"arn:aws:codepipeline:" + e.Pipe.Region + ":" + e.Pipe.Account + ":" + e.Pipe.Name}, "detail": detail}
		data, _ := json.Marshal(env)
		e.Events = append(e.Events, Raw{At: t, Data: data})
	}
	trigger := map[string]any{"execution-trigger": map[string]any{"trigger-type": e.Trigger, "trigger-detail": "arn:aws:sts::" + e.Pipe.Account + ":assumed-role/x/y"}}
	step := func() { t = t.Add(time.Duration(5+rng.IntN(60)) * time.Second) }
	if e.Trigger == "StartPipelineExecution" {
		push := map[string]any{"version": "0", "id": "push-" + e.ID, "detail-type": "CodeCommit Repository State Change", "source": "aws.codecommit",
			"account": e.Pipe.Account, "time": t.Add(-3 * time.Second).UTC().Format(time.RFC3339), "region": e.Pipe.Region,
			"resources": []string{"arn:aws:codecommit:" + e.Pipe.Region + ":" + e.Pipe.Account + ":" + e.Pipe.Name},
			"detail": map[string]any{"event": "referenceUpdated", "repositoryName": e.Pipe.Name, "repositoryId": "r-" + e.Pipe.Name,
				"referenceType": "branch", "referenceName": "main", "referenceFullName": "refs/heads/main", "commitId": e.Commit, "oldCommitId": fmt.Sprintf("%040x", 0)}}
		data, _ := json.Marshal(push)
		e.Push = &Raw{At: t.Add(-3 * time.Second), Data: data}
	}
	emit("pipeline", "", "", "STARTED", 1, trigger)
	// failAt is the stage index that fails (or is interrupted); -1: none.
	failAt := -1
	switch e.Kind {
	case kindFail, kindRetryGreen, kindRetryRed:
		failAt = 1 + rng.IntN(3)
	case kindEmptyRepo, kindSourceFailed:
		failAt = 0
	case kindSuperseded, kindStopped:
		failAt = rng.IntN(4)
	case kindSelfUpdate:
		failAt = 1
	}
	hideTrigger := f.HiddenTriggers && rng.IntN(3) == 0
	endTrigger := trigger
	if hideTrigger {
		endTrigger = nil
	}
	actionType := func(i int) map[string]any {
		s := stages[i]
		return map[string]any{"type": map[string]any{"owner": "AWS", "category": s.category, "provider": s.provider, "version": "1"}, "region": e.Pipe.Region}
	}
	runStages := func(from, to, attempt int, last string) {
		for i := from; i <= to && i < len(stages); i++ {
			s := stages[i]
			state := "STARTED"
			if attempt > 1 && i == from {
				state = "RESUMED"
			}
			step()
			emit("stage", s.stage, "", state, attempt, nil)
			aid := fmt.Sprintf("%s-a%d%d", e.ID[:18], i, attempt)
			start := t
			emit("action", s.stage, s.action, "STARTED", attempt, merge(actionType(i), map[string]any{"action-execution-id": aid}))
			step()
			end := t
			res := pipeline.ExecutionResult{}
			astate := "SUCCEEDED"
			extra := merge(actionType(i), map[string]any{"action-execution-id": aid})
			if i == to && last != "" {
				astate = last
			}
			switch astate {
			case "FAILED":
				switch e.Kind {
				case kindEmptyRepo:
					res = pipeline.ExecutionResult{ErrorCode: "ConfigurationError", Summary: "The branch main does not exist in the repository " + e.Pipe.Name}
				case kindSourceFailed:
					res = pipeline.ExecutionResult{ErrorCode: "PermissionError", Summary: "Access denied to the repository " + e.Pipe.Name}
				default:
					res = pipeline.ExecutionResult{ErrorCode: "JobFailed", Summary: "Build terminated with state: FAILED"}
				}
				extra["execution-result"] = map[string]any{"error-code": res.ErrorCode, "external-execution-summary": res.Summary}
			case "SUCCEEDED":
				if i == 0 {
					res = pipeline.ExecutionResult{ExternalID: e.Commit, Summary: "change " + e.Commit[:8]}
					extra["execution-result"] = map[string]any{"external-execution-id": e.Commit, "external-execution-summary": res.Summary}
				}
			}
			emit("action", s.stage, s.action, astate, attempt, extra)
			e.Actions = append(e.Actions, actionRun{attempt: attempt, ActionExecution: pipeline.ActionExecution{Stage: s.stage, Action: s.action,
				State: pipeline.State(astate), ExecutionID: aid, StartTime: start, UpdatedAt: end, Region: e.Pipe.Region,
				Type: pipeline.ActionType{Owner: "AWS", Category: s.category, Provider: s.provider, Version: "1"}, Result: res}})
			stageState := astate
			if astate == "ABANDONED" {
				stageState = "CANCELED"
			}
			if i == to && last == "" {
				// the execution goes on
			}
			emit("stage", s.stage, "", stageState, attempt, nil)
		}
	}
	end := func(state string, attempt int) {
		emit("pipeline", "", "", state, attempt, endTrigger)
		st := pipeline.State(state).Status()
		e.Attempts = append(e.Attempts, Attempt{N: attempt, Status: st, At: t})
		e.FinalAt, e.Final = t, pipeline.State(state)
	}
	switch e.Kind {
	case kindSuccess:
		runStages(0, 3, 1, "")
		end("SUCCEEDED", 1)
	case kindFail, kindEmptyRepo, kindSourceFailed:
		runStages(0, failAt, 1, "FAILED")
		end("FAILED", 1)
	case kindRetryGreen, kindRetryRed:
		runStages(0, failAt, 1, "FAILED")
		end("FAILED", 1)
		t = t.Add(time.Duration(30+rng.IntN(120)) * time.Second)
		emit("pipeline", "", "", "RESUMED", 2, trigger)
		if e.Kind == kindRetryGreen {
			runStages(failAt, 3, 2, "")
			end("SUCCEEDED", 2)
		} else {
			runStages(failAt, failAt, 2, "FAILED")
			end("FAILED", 2)
		}
	case kindSuperseded:
		runStages(0, failAt, 1, "ABANDONED")
		end("SUPERSEDED", 1)
	case kindStopped:
		step()
		emit("pipeline", "", "", "STOPPING", 1, nil)
		runStages(0, failAt, 1, "ABANDONED")
		end("STOPPED", 1)
	case kindSelfUpdate:
		runStages(0, 1, 1, "")
		end("CANCELED", 1)
	}
	slices.SortStableFunc(e.Events, func(a, b Raw) int { return a.At.Compare(b.At) })
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// view is what CodePipeline's API reports of e at now (GetPipelineExecution,
// ListActionExecutions), for the reconciler.
func (e *Exec) view(now time.Time) pipeline.ExecutionView {
	v := pipeline.ExecutionView{State: pipeline.StateStarted, Version: 3, Trigger: pipeline.Trigger{Type: e.Trigger}}
	if !now.Before(e.FinalAt) {
		v.State = e.Final
	}
	for _, a := range e.Actions {
		if a.StartTime.After(now) {
			continue
		}
		x := a.ActionExecution
		if x.UpdatedAt.After(now) {
			x.State, x.UpdatedAt, x.Result = pipeline.StateStarted, x.StartTime, pipeline.ExecutionResult{}
		}
		v.Actions = append(v.Actions, x)
	}
	return v
}

// head is the execution whose commit is at the head of p's branch at now: the latest push.
func (w *World) head(p Pipe, now time.Time) *Exec {
	var head *Exec
	for _, e := range w.Execs {
		if e.Pipe == p && e.Push != nil && !e.Push.At.After(now) && (head == nil || !e.Push.At.Before(head.Push.At)) {
			head = e
		}
	}
	return head
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
