package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/reconcile"
)

// accountReconciler runs the reconciler over every declared project's pipeline (the
// per-account control plane), or over PIPELINE_NAME alone when it is set (a per-project
// deployment, local runs).
type accountReconciler struct {
	*reconcile.Reconciler
	parameter []pipeline.Project
	projects  interface {
		ListProjects(ctx context.Context) ([]pipeline.ProjectDeclaration, error)
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
	total := reconcile.ReconcileResponse{}
	total.Outcome = "done"
	var errs []error
	for i, p := range pipeline.Desired(a.parameter, items) {
		one := *a.Reconciler
		one.PipelineName = pipeline.PipelineOf(p.Name)
		if i > 0 {
			// The notification claims are the table's, not a pipeline's: hand them back once.
			one.Requeue = nil
		}
		resp, err := one.Handle(ctx, raw)
		total.Checked += resp.Checked
		total.Settled += resp.Settled
		total.Missing += resp.Missing
		total.Redriven += resp.Redriven
		total.Requeued += resp.Requeued
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}
