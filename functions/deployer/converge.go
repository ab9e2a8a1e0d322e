package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	cctypes "github.com/aws/aws-sdk-go-v2/service/codecommit/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
)

// handler is the deployer's entry point: the convergence of the account's projects (the
// ConvergeSchedule rule every few minutes, or {"action":"converge"} from an operator), else
// the router (CodePipeline jobs, custom resource requests).
type handler struct {
	*deploy.Router
	converger *projects.Converger // nil in local runs
	log       *slog.Logger
}

// isConverge reports whether the payload asks for a convergence pass: an EventBridge
// scheduled event, or {"action":"converge"} (aws lambda invoke, docs/projects.md).
func isConverge(raw json.RawMessage) bool {
	var probe struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
		Action     string `json:"action"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return false
	}
	return (probe.Source == "aws.events" && probe.DetailType == "Scheduled Event") || probe.Action == "converge"
}

// Handle routes one payload. A convergence pass returns an error only when it could not
// observe (the declarations or the stacks could not be listed): the schedule's next tick
// tries again anyway, so the error only makes the failure visible (the function's Errors
// metric); a project that fails is its own status, not the pass's error.
func (h *handler) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	if !isConverge(raw) {
		return h.Router.Handle(ctx, raw)
	}
	if h.converger == nil {
		return lambdaio.Response{Outcome: lambdaio.OutcomeSkipped, Reason: "local run: convergence needs the runs table and CloudFormation"}, nil
	}
	rep, err := h.converger.Run(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "convergence pass could not observe", "error", err.Error())
		return lambdaio.Response{}, err
	}
	counts := map[string]int{}
	for _, p := range rep.Projects {
		counts[string(p.Status.State)]++
	}
	h.log.InfoContext(ctx, "convergence pass", "projects", len(rep.Projects), "started", rep.Started, "deferred", rep.Deferred,
		"errors", rep.Errors, "ready", counts["ready"], "converging", counts["converging"], "failed", counts["failed"], "removing", counts["removing"])
	return lambdaio.Response{Outcome: lambdaio.OutcomeDone, Status: "converged",
		Reason: fmt.Sprintf("%d projects: %d ready, %d converging, %d failed, %d removing; %d started, %d deferred, %d errors",
			len(rep.Projects), counts["ready"], counts["converging"], counts["failed"], counts["removing"], rep.Started, rep.Deferred, rep.Errors)}, nil
}

// repositories makes each project's CodeCommit repository exist, adopting one that does (a
// repository kept from a removed project, or from a per-project control plane: migration).
// It never deletes one.
type repositories struct {
	api interface {
		CreateRepository(ctx context.Context, in *codecommit.CreateRepositoryInput, optFns ...func(*codecommit.Options)) (*codecommit.CreateRepositoryOutput, error)
		GetRepository(ctx context.Context, in *codecommit.GetRepositoryInput, optFns ...func(*codecommit.Options)) (*codecommit.GetRepositoryOutput, error)
	}
	controlPlane string
}

func (r repositories) Ensure(ctx context.Context, name string) (string, error) {
	got, err := r.api.GetRepository(ctx, &codecommit.GetRepositoryInput{RepositoryName: aws.String(name)})
	if err == nil {
		return aws.ToString(got.RepositoryMetadata.CloneUrlHttp), nil
	}
	var missing *cctypes.RepositoryDoesNotExistException
	if !errors.As(err, &missing) {
		return "", fmt.Errorf("get repository %s: %w", name, err)
	}
	made, err := r.api.CreateRepository(ctx, &codecommit.CreateRepositoryInput{RepositoryName: aws.String(name),
		RepositoryDescription: aws.String(fmt.Sprintf("Source of %s; a push to its tracked branch runs %s-pipeline.", name, name)),
		Tags:                  map[string]string{deploy.TagProject: name, deploy.TagControlPlane: r.controlPlane}})
	var exists *cctypes.RepositoryNameExistsException
	if errors.As(err, &exists) {
		// Created meanwhile (a concurrent pass): read it.
		got, gerr := r.api.GetRepository(ctx, &codecommit.GetRepositoryInput{RepositoryName: aws.String(name)})
		if gerr != nil {
			return "", fmt.Errorf("get repository %s: %w", name, gerr)
		}
		return aws.ToString(got.RepositoryMetadata.CloneUrlHttp), nil
	}
	if err != nil {
		return "", fmt.Errorf("create repository %s: %w", name, err)
	}
	return strings.TrimSpace(aws.ToString(made.RepositoryMetadata.CloneUrlHttp)), nil
}
