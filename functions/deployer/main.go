// Command deployer deploys CloudFormation stacks through change sets, for CodePipeline's Lambda
// Invoke jobs and for the PipelineStack custom resource, and converges the account's declared
// projects to their pipeline stacks on a schedule. See docs/deployer.md and docs/projects.md.
package main

import (
	"log/slog"
	"os"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func main() {
	log := lambdaio.NewLogger()
	h, err := build(os.Getenv, log)
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

// build wires the router and the converger over AWS clients, or dry runs under
// LP_STORE=memory (scripts/invoke).
func build(getenv func(string) string, log *slog.Logger) (*handler, error) {
	if getenv("LP_STORE") == "memory" {
		return &handler{Router: deploy.NewDryRunRouter(infrastructure.PipelineTemplate, infrastructure.Templates(), log), log: log}, nil
	}
	cfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	stacks := cloudformation.NewFromConfig(cfg)
	h := &handler{log: log, Router: deploy.NewRouter(deploy.Config{Stacks: stacks, Jobs: codepipeline.NewFromConfig(cfg), Region: cfg.Region,
		BaseEndpoint: cfg.BaseEndpoint, PipelineTemplate: infrastructure.PipelineTemplate, Log: log})}
	if getenv("CONTROL_PLANE") == "" {
		// A deployer without the control plane's settings (an older template): jobs only.
		log.Warn("CONTROL_PLANE is not set: projects are not converged")
		return h, nil
	}
	env := lambdaio.NewEnv(getenv)
	settings := deploy.ProjectSettings{
		ControlPlane:           env.Required("CONTROL_PLANE"),
		ArtifactsBucket:        env.Required("ARTIFACTS_BUCKET"),
		DeployerFunctionName:   env.Required("AWS_LAMBDA_FUNCTION_NAME"),
		PipelineStackRoleARN:   env.Required("PIPELINE_STACK_ROLE_ARN"),
		AppStackRoleARN:        env.Required("APP_STACK_ROLE_ARN"),
		PermissionsBoundaryARN: env.Required("PERMISSIONS_BOUNDARY_ARN"),
		RetentionDays:          env.Int("RETENTION_DAYS", 90, 1, 3653),
	}
	table := env.Required("RUNS_TABLE")
	if err := env.Err(); err != nil {
		return nil, err
	}
	param, err := pipeline.ParseProjects(getenv("PROJECTS"))
	if err != nil {
		return nil, err
	}
	h.converger = &projects.Converger{
		Store:        runstore.NewProjects(dynamodb.NewFromConfig(cfg), table),
		Stacks:       &deploy.ProjectStacks{Stacks: stacks, Region: cfg.Region, Template: infrastructure.PipelineTemplate, Settings: settings},
		Repositories: repositories{api: codecommit.NewFromConfig(cfg), controlPlane: settings.ControlPlane},
		Clock:        pipeline.SystemClock{},
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
