package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/reconcile"
)

// accountReconciler runs the reconciler over every declared project's pipeline and every
// pipeline of another account or region whose runs the table holds (the per-account control
// plane), or over PIPELINE_NAME alone when it is set (a per-project deployment, local runs).
type accountReconciler struct {
	*reconcile.Reconciler
	parameter []pipeline.Project
	projects  interface {
		ListProjects(ctx context.Context) ([]pipeline.ProjectDeclaration, error)
	}
	// foreign lists the pipelines of other accounts and regions (runstore.Dynamo), whose
	// decisions the reconciler takes again without asking CodePipeline; nil: none.
	foreign interface {
		ForeignPipelines(ctx context.Context) ([]string, error)
	}
}

// Handle reconciles each project's pipeline in turn; one pipeline's failure does not stop
// the others, and the failures are returned joined (the next tick tries again).
func (a *accountReconciler) Handle(ctx context.Context, raw json.RawMessage) (reconcile.ReconcileResponse, error) {
	if a.PipelineName != "" || a.projects == nil {
		return a.Reconciler.Handle(ctx, raw)
	}
	items, err := a.projects.ListProjects(ctx)
	if err != nil {
		return reconcile.ReconcileResponse{}, fmt.Errorf("list projects: %w", err)
	}
	var names []string
	for _, p := range pipeline.Desired(a.parameter, items) {
		names = append(names, pipeline.PipelineOf(p.Name))
	}
	var errs []error
	if a.foreign != nil {
		// After the home's, so that a failed listing costs only the foreign pipelines.
		foreign, err := a.foreign.ForeignPipelines(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		names = append(names, foreign...)
	}
	total := reconcile.ReconcileResponse{}
	total.Outcome = "done"
	for i, name := range names {
		one := *a.Reconciler
		one.PipelineName = name
		if i > 0 {
			// The notification claims and the approval requests are the table's, not a
			// pipeline's: hand them back, and sweep them, once.
			one.Requeue, one.SweepApprovals = nil, nil
		}
		resp, err := one.Handle(ctx, raw)
		total.Checked += resp.Checked
		total.Settled += resp.Settled
		total.Missing += resp.Missing
		total.Redriven += resp.Redriven
		total.Requeued += resp.Requeued
		total.ApprovalsQueued += resp.ApprovalsQueued
		total.Foreign += resp.Foreign
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}
