package main

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/policy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// The runs table keeps the approvals of deploys that widen IAM.
var _ deploy.ApprovalStore = (*runstore.Dynamo)(nil)

// gateConfig is the policy gate's part of the environment: what the rules allow (the
// control plane's choice; a push cannot change it) and how long a widening waits.
type gateConfig struct {
	policy policy.Config
	expiry time.Duration
}

// loadGate reads GATE_PRINCIPALS and GATE_RESOURCE_TYPES (comma-separated; unset: the
// defaults of policy.DefaultConfig) and APPROVAL_EXPIRY_HOURS (default 20, at most 23: the
// action may run 24 hours in all).
func loadGate(env *lambdaio.Env) gateConfig {
	cfg := policy.DefaultConfig()
	if v := env.Optional("GATE_PRINCIPALS", ""); v != "" {
		cfg.AllowedPrincipals = splitList(v)
	}
	if v := env.Optional("GATE_RESOURCE_TYPES", ""); v != "" {
		cfg.AllowedResourceTypes = splitList(v)
	}
	hours := env.Int("APPROVAL_EXPIRY_HOURS", int(deploy.DefaultApprovalExpiry/time.Hour), 1, int(deploy.MaxApprovalExpiry/time.Hour))
	return gateConfig{policy: cfg, expiry: time.Duration(hours) * time.Hour}
}

// build wires the router over AWS clients and the runs table (approvals), and the converger of
// the account's projects, or dry runs under LP_STORE=memory (scripts/invoke).
func build(getenv func(string) string, log *slog.Logger) (*handler, error) {
	if getenv("LP_STORE") == "memory" {
		return &handler{Router: deploy.NewDryRunRouter(infrastructure.PipelineTemplate, infrastructure.Templates(), log), log: log}, nil
	}
	env := lambdaio.NewEnv(getenv)
	table := env.Required("RUNS_TABLE")
	gate := loadGate(env)
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	clock := pipeline.SystemClock{}
	stacks := cloudformation.NewFromConfig(cfg)
	db := dynamodb.NewFromConfig(cfg)
	h := &handler{log: log, Router: deploy.NewRouter(deploy.Config{Stacks: stacks, Jobs: codepipeline.NewFromConfig(cfg), Region: cfg.Region,
		BaseEndpoint: cfg.BaseEndpoint, PipelineTemplate: infrastructure.PipelineTemplate, Log: log,
		Gate: &deploy.Gate{Policy: gate.policy, Stacks: stacks, Clock: clock, Expiry: gate.expiry,
			Approvals: runstore.NewDynamo(db, table, clock)},
	})}
	if getenv("CONTROL_PLANE") == "" {
		// A deployer without the control plane's settings (an older template): jobs only.
		log.Warn("CONTROL_PLANE is not set: projects are not converged")
		return h, nil
	}
	settings := deploy.ProjectSettings{
		ControlPlane:           env.Required("CONTROL_PLANE"),
		ArtifactsBucket:        env.Required("ARTIFACTS_BUCKET"),
		DeployerFunctionName:   env.Required("AWS_LAMBDA_FUNCTION_NAME"),
		PipelineStackRoleARN:   env.Required("PIPELINE_STACK_ROLE_ARN"),
		AppStackRoleARN:        env.Required("APP_STACK_ROLE_ARN"),
		PermissionsBoundaryARN: env.Required("PERMISSIONS_BOUNDARY_ARN"),
		RetentionDays:          env.Int("RETENTION_DAYS", 90, 1, 3653),
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	param, err := pipeline.ParseProjects(getenv("PROJECTS"))
	if err != nil {
		return nil, err
	}
	h.converger = &projects.Converger{
		Store:        runstore.NewProjects(db, table),
		Stacks:       &deploy.ProjectStacks{Stacks: stacks, Region: cfg.Region, Template: infrastructure.PipelineTemplate, Settings: settings},
		Repositories: repositories{api: codecommit.NewFromConfig(cfg), controlPlane: settings.ControlPlane},
		Clock:        clock,
		Log:          log,
		Parameter:    param,
		// A change of any control-plane value a stack gets redeploys every project. The
		// template's hash is not among them: an existing stack keeps the template the
		// pipeline updated itself to (only a new stack is created from this one).
		SpecExtra: []string{settings.ArtifactsBucket, settings.DeployerFunctionName, settings.PipelineStackRoleARN,
			settings.AppStackRoleARN, settings.PermissionsBoundaryARN, strconv.Itoa(settings.RetentionDays)},
	}
	return h, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
