package pipeline

import (
	"fmt"
	"time"
)

// seqBuilder writes the events CodePipeline emits for one execution, in their natural order.
type seqBuilder struct {
	pipeline, exec string
	t              time.Time
	attempt        int
	events         []Event
	n              int
}

func newSeq(pipeline, exec string, start time.Time) *seqBuilder {
	return &seqBuilder{pipeline: pipeline, exec: exec, t: start, attempt: 1}
}

func (b *seqBuilder) add(level Level, stage, action string, state State, mod func(*Event)) *seqBuilder {
	b.t = b.t.Add(time.Second)
	b.n++
	ev := Event{ID: fmt.Sprintf("%s-%03d", b.exec, b.n), Time: b.t, Level: level, Pipeline: b.pipeline, ExecutionID: b.exec,
		Stage: stage, Action: action, State: state, Version: 3, Attempt: b.attempt}
	if level == LevelPipeline {
		ev.Trigger = Trigger{Type: "StartPipelineExecution", Detail: "arn:aws:sts::123456789012:assumed-role/on-push/x"}
	}
	if level == LevelAction {
		ev.ActionExecutionID = fmt.Sprintf("%s-%s-%s-%d", b.exec, stage, action, b.attempt)
	}
	if mod != nil {
		mod(&ev)
	}
	b.events = append(b.events, ev)
	return b
}

func (b *seqBuilder) pipelineState(s State) *seqBuilder { return b.add(LevelPipeline, "", "", s, nil) }

// stage runs a stage with one action that ends in end (the stage ends alike).
func (b *seqBuilder) stage(stage, action string, end State) *seqBuilder {
	b.add(LevelStage, stage, "", StateStarted, nil)
	b.add(LevelAction, stage, action, StateStarted, nil)
	b.add(LevelAction, stage, action, end, func(ev *Event) {
		switch {
		case stage == "Source" && end == StateSucceeded:
			ev.ActionType = ActionType{Owner: "AWS", Category: "Source", Provider: "CodeCommit", Version: "1"}
			ev.Result = ExecutionResult{ExternalID: "c0ffee-" + b.exec, Summary: "Fix the thing"}
		case stage == "BuildAndTest":
			ev.ActionType = ActionType{Owner: "AWS", Category: "Build", Provider: "CodeBuild", Version: "1"}
			ev.OutputArtifacts = []Artifact{{Name: ArtifactBuildOutput, Bucket: "artifacts", Key: b.exec + "/out.zip"}}
			if end == StateFailed {
				ev.Result = ExecutionResult{ExternalID: "build:" + b.exec, Summary: "Build terminated with state: FAILED", ErrorCode: "JobFailed"}
			}
		case end == StateFailed:
			ev.Result = ExecutionResult{Summary: "Deploy failed", ErrorCode: "JobFailed"}
		}
	})
	stageEnd := end
	if end == StateAbandoned {
		stageEnd = StateStopped
	}
	return b.add(LevelStage, stage, "", stageEnd, nil)
}

var stages = []struct{ stage, action string }{
	{"Source", "Source"}, {"CreateUpdatePipeline", "SelfUpdate"}, {"BuildAndTest", "Build"}, {"CreateUpdateLambda", "DeployFunction"},
}

// succeeded: every stage passes.
func succeeded(pipeline, exec string, start time.Time) []Event {
	b := newSeq(pipeline, exec, start).pipelineState(StateStarted)
	for _, s := range stages {
		b.stage(s.stage, s.action, StateSucceeded)
	}
	return b.pipelineState(StateSucceeded).events
}

// failedAt: stages pass until stage i fails.
func failedAt(pipeline, exec string, start time.Time, i int) []Event {
	b := newSeq(pipeline, exec, start).pipelineState(StateStarted)
	for j, s := range stages[:i+1] {
		end := StateSucceeded
		if j == i {
			end = StateFailed
		}
		b.stage(s.stage, s.action, end)
	}
	return b.pipelineState(StateFailed).events
}

// superseded: a newer execution overtook this one after Source.
func superseded(pipeline, exec string, start time.Time) []Event {
	b := newSeq(pipeline, exec, start).pipelineState(StateStarted)
	b.stage("Source", "Source", StateSucceeded)
	return b.pipelineState(StateSuperseded).events
}

// stopped: a person stopped it during the build.
func stopped(pipeline, exec string, start time.Time) []Event {
	b := newSeq(pipeline, exec, start).pipelineState(StateStarted)
	b.stage("Source", "Source", StateSucceeded)
	b.stage("CreateUpdatePipeline", "SelfUpdate", StateSucceeded)
	b.add(LevelStage, "BuildAndTest", "", StateStarted, nil)
	b.add(LevelAction, "BuildAndTest", "Build", StateStarted, nil)
	b.pipelineState(StateStopping)
	b.add(LevelStage, "BuildAndTest", "", StateStopping, nil)
	b.add(LevelAction, "BuildAndTest", "Build", StateAbandoned, nil)
	b.add(LevelStage, "BuildAndTest", "", StateStopped, nil)
	return b.pipelineState(StateStopped).events
}

// canceled: the self-update changed the pipeline, which cancels the execution.
func canceled(pipeline, exec string, start time.Time) []Event {
	b := newSeq(pipeline, exec, start).pipelineState(StateStarted)
	b.stage("Source", "Source", StateSucceeded)
	b.add(LevelStage, "CreateUpdatePipeline", "", StateStarted, nil)
	b.add(LevelAction, "CreateUpdatePipeline", "SelfUpdate", StateStarted, nil)
	b.add(LevelAction, "CreateUpdatePipeline", "SelfUpdate", StateSucceeded, nil)
	b.add(LevelStage, "CreateUpdatePipeline", "", StateSucceeded, nil)
	return b.pipelineState(StateCanceled).events
}

// retried: the build fails, a person retries the stage, it passes and the run succeeds.
func retried(pipeline, exec string, start time.Time) []Event {
	b := newSeq(pipeline, exec, start).pipelineState(StateStarted)
	b.stage("Source", "Source", StateSucceeded)
	b.stage("CreateUpdatePipeline", "SelfUpdate", StateSucceeded)
	b.stage("BuildAndTest", "Build", StateFailed)
	b.pipelineState(StateFailed)
	b.t = b.t.Add(10 * time.Minute)
	b.attempt = 2
	b.pipelineState(StateResumed)
	b.stage("BuildAndTest", "Build", StateSucceeded)
	b.stage("CreateUpdateLambda", "DeployFunction", StateSucceeded)
	return b.pipelineState(StateSucceeded).events
}

// emptyRepository: the run CodePipeline starts when it is created, on an empty repository.
func emptyRepository(pipeline, exec string, start time.Time) []Event {
	b := newSeq(pipeline, exec, start)
	b.add(LevelPipeline, "", "", StateStarted, func(ev *Event) {
		ev.Trigger = Trigger{Type: TriggerCreatePipeline, Detail: "arn:aws:sts::1:assumed-role/deployer/x"}
	})
	b.add(LevelStage, "Source", "", StateStarted, nil)
	b.add(LevelAction, "Source", "Source", StateStarted, func(ev *Event) {
		ev.ActionType = ActionType{Owner: "AWS", Category: "Source", Provider: "CodeCommit", Version: "1"}
	})
	b.add(LevelAction, "Source", "Source", StateFailed, func(ev *Event) {
		ev.ActionType = ActionType{Owner: "AWS", Category: "Source", Provider: "CodeCommit", Version: "1"}
		ev.Result = ExecutionResult{Summary: "The branch main does not exist in the repository my-lambda", ErrorCode: "ConfigurationError"}
	})
	b.add(LevelStage, "Source", "", StateFailed, nil)
	b.add(LevelPipeline, "", "", StateFailed, func(ev *Event) {
		ev.Trigger = Trigger{Type: TriggerCreatePipeline, Detail: "arn:aws:sts::1:assumed-role/deployer/x"}
	})
	return b.events
}

// sourceFailed: a run failing in Source for a reason other than an empty repository.
func sourceFailed(pipeline, exec string, start time.Time) []Event {
	events := emptyRepository(pipeline, exec, start)
	for i := range events {
		if events[i].Level == LevelAction && events[i].State == StateFailed {
			events[i].Result = ExecutionResult{Summary: "Access denied to the repository", ErrorCode: "PermissionError"}
		}
		if events[i].Level == LevelPipeline {
			events[i].Trigger = Trigger{Type: "StartPipelineExecution"}
		}
	}
	return events
}
