package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Tags on every project stack the control plane creates: the converger lists its stacks by
// them, and deletes only a stack that carries both (never one it did not create or adopt).
const (
	TagProject      = "lambda-pipeline:project"
	TagControlPlane = "lambda-pipeline:control-plane"
)

// ProjectSettings are the control plane's values that every project's pipeline stack gets
// (infrastructure/pipeline.yml's parameters besides ProjectName and TrackedBranch).
type ProjectSettings struct {
	// ControlPlane names the control plane (its stack's name), the value of TagControlPlane.
	ControlPlane           string
	ArtifactsBucket        string
	DeployerFunctionName   string
	PipelineStackRoleARN   string
	AppStackRoleARN        string
	PermissionsBoundaryARN string
	RetentionDays          int
}

// Parameters are the pipeline stack's parameters for project p.
func (s ProjectSettings) Parameters(p pipeline.Project) map[string]string {
	return map[string]string{
		"ProjectName":            p.Name,
		"TrackedBranch":          p.Branch,
		"ArtifactsBucket":        s.ArtifactsBucket,
		"DeployerFunctionName":   s.DeployerFunctionName,
		"PipelineStackRoleArn":   s.PipelineStackRoleARN,
		"AppStackRoleArn":        s.AppStackRoleARN,
		"RetentionDays":          strconv.Itoa(s.RetentionDays),
		"PermissionsBoundaryArn": s.PermissionsBoundaryARN,
	}
}

// ProjectStacks steps the projects' pipeline stacks (<project>-pipeline) through the Engine,
// as the control plane's converger asks (shared/projects.Stacks): a deploy creates the stack
// from Template, or updates an existing one's parameters and tags keeping its template (the
// pipeline keeps its own template current from the repository, SelfUpdate); a removal deletes
// it. The deploy role is Settings.PipelineStackRoleARN.
type ProjectStacks struct {
	Stacks   StacksAPI
	Region   string
	Template []byte
	Settings ProjectSettings
}

// List returns the stacks tagged as this control plane's projects (DescribeStacks, every
// page: the caller's role needs cloudformation:DescribeStacks on "*").
func (ps *ProjectStacks) List(ctx context.Context) ([]pipeline.ProjectStack, error) {
	var out []pipeline.ProjectStack
	var token *string
	for {
		res, err := ps.Stacks.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{NextToken: token})
		if err != nil {
			return nil, fmt.Errorf("list stacks: %w", err)
		}
		for _, s := range res.Stacks {
			tags := map[string]string{}
			for _, t := range s.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			project := tags[TagProject]
			if project == "" || tags[TagControlPlane] != ps.Settings.ControlPlane ||
				aws.ToString(s.StackName) != pipeline.PipelineStackOf(project) {
				continue
			}
			out = append(out, pipeline.ProjectStack{Project: project, StackName: aws.ToString(s.StackName), StackStatus: string(s.StackStatus)})
		}
		if token = res.NextToken; token == nil {
			return out, nil
		}
	}
}

// Step takes one step of a project's deploy or removal.
func (ps *ProjectStacks) Step(ctx context.Context, s pipeline.ProjectStep) (pipeline.ProjectStepResult, error) {
	var progress Progress
	if s.Progress != "" {
		if err := json.Unmarshal([]byte(s.Progress), &progress); err != nil {
			// A progress nobody can read: start the step over (every step observes anyway).
			progress = Progress{}
		}
	}
	stack := pipeline.PipelineStackOf(s.Project.Name)
	engine := &Engine{Stacks: taggedStacks{StacksAPI: ps.Stacks, tags: ps.tags(s.Project.Name)}, Region: ps.Region}
	var out Outcome
	var err error
	if s.Delete {
		out, err = engine.StepDelete(ctx, DeleteRequest{StackName: stack, RoleARN: ps.Settings.PipelineStackRoleARN, Token: s.Token, Progress: progress})
	} else {
		// An existing stack keeps its template: only the parameters (and the tags) change.
		// KeepTemplate applies to updates only; a missing stack (or one a failed create left)
		// is created from Template.
		out, err = engine.Step(ctx, Request{StackName: stack, TemplateBody: string(ps.Template), Parameters: ps.Settings.Parameters(s.Project),
			Capabilities: pipelineCapabilities, RoleARN: ps.Settings.PipelineStackRoleARN, Token: s.Token, Progress: progress, KeepTemplate: true})
	}
	if err != nil {
		return pipeline.ProjectStepResult{}, err
	}
	res := pipeline.ProjectStepResult{Done: out.Status == StatusDone, Failed: out.Status == StatusFailed, Reason: out.Reason, StackStatus: out.StackStatus}
	if !out.Done() && out.Progress != (Progress{}) {
		b, _ := json.Marshal(out.Progress)
		res.Progress = string(b)
	}
	return res, nil
}

func (ps *ProjectStacks) tags(project string) []cftypes.Tag {
	return []cftypes.Tag{
		{Key: aws.String(TagControlPlane), Value: aws.String(ps.Settings.ControlPlane)},
		{Key: aws.String(TagProject), Value: aws.String(project)},
	}
}

// taggedStacks adds the project's tags to every change set the engine creates: an adopted
// stack (created before the control plane managed projects) gets them on its first update.
type taggedStacks struct {
	StacksAPI
	tags []cftypes.Tag
}

func (t taggedStacks) CreateChangeSet(ctx context.Context, in *cloudformation.CreateChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.CreateChangeSetOutput, error) {
	cp := *in
	cp.Tags = t.tags
	return t.StacksAPI.CreateChangeSet(ctx, &cp, optFns...)
}
