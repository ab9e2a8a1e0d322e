package main

import (
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/policy"
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

// build wires the router over AWS clients and the runs table (approvals), or dry runs under
// LP_STORE=memory (scripts/invoke).
func build(getenv func(string) string, log *slog.Logger) (*deploy.Router, error) {
	if getenv("LP_STORE") == "memory" {
		return deploy.NewDryRunRouter(infrastructure.PipelineTemplate, infrastructure.Templates(), log), nil
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
	return deploy.NewRouter(deploy.Config{Stacks: stacks, Jobs: codepipeline.NewFromConfig(cfg), Region: cfg.Region,
		BaseEndpoint: cfg.BaseEndpoint, PipelineTemplate: infrastructure.PipelineTemplate, Log: log,
		Gate: &deploy.Gate{Policy: gate.policy, Stacks: stacks, Clock: clock, Expiry: gate.expiry,
			Approvals: runstore.NewDynamo(dynamodb.NewFromConfig(cfg), table, clock)},
	}), nil
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
