// Package config reads what the functions take from their environment (template.yaml sets it),
// naming every missing or invalid variable at once.
package config

import (
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

// Config is what the functions read from their environment (template.yaml sets it).
type Config struct {
	RunsTable      string        // RUNS_TABLE
	PipelineName   string        // PIPELINE_NAME
	RepositoryName string        // REPOSITORY_NAME
	TrackedBranch  string        // TRACKED_BRANCH, default main
	Retention      time.Duration // RETENTION_DAYS, default 90
	StaleAfter     time.Duration // STALE_AFTER_MINUTES, default 30 (reconciler)
	// LocalStore (LP_STORE=memory) keeps runs in memory, for scripts/invoke and demos with
	// no AWS account. Never set in the template.
	LocalStore bool
}

// LoadConfig reads the configuration and names every missing or invalid variable at once.
// RUNS_TABLE is always required (but with LP_STORE=memory); need lists the function's other
// required variables among PIPELINE_NAME and REPOSITORY_NAME.
func Load(getenv func(string) string, need ...string) (Config, error) {
	env := lambdaio.NewEnv(getenv)
	c := Config{LocalStore: env.Optional("LP_STORE", "") == "memory"}
	read := func(name, local string) string {
		if c.LocalStore {
			return env.Optional(name, local)
		}
		for _, n := range need {
			if n == name {
				return env.Required(name)
			}
		}
		return env.Optional(name, "")
	}
	if c.LocalStore {
		c.RunsTable = env.Optional("RUNS_TABLE", "")
	} else {
		c.RunsTable = env.Required("RUNS_TABLE")
	}
	c.PipelineName = read("PIPELINE_NAME", "my-lambda-pipeline")
	c.RepositoryName = read("REPOSITORY_NAME", "my-lambda")
	c.TrackedBranch = env.Optional("TRACKED_BRANCH", "main")
	c.Retention = time.Duration(env.Int("RETENTION_DAYS", 90, 1, 3653)) * 24 * time.Hour
	c.StaleAfter = time.Duration(env.Int("STALE_AFTER_MINUTES", 30, 1, 24*60)) * time.Minute
	return c, env.Err()
}
