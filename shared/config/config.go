// Package config reads what the functions take from their environment (template.yaml sets it),
// naming every missing or invalid variable at once.
package config

import (
	"cmp"
	"regexp"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Config is what the functions read from their environment (template.yaml sets it).
type Config struct {
	RunsTable      string        // RUNS_TABLE
	PipelineName   string        // PIPELINE_NAME
	RepositoryName string        // REPOSITORY_NAME
	TrackedBranch  string        // TRACKED_BRANCH, default main
	Retention      time.Duration // RETENTION_DAYS, default 90
	StaleAfter     time.Duration // STALE_AFTER_MINUTES, default 30 (reconciler)
	// Home is the control plane's account (ACCOUNT_ID, which template.yaml sets from
	// AWS::AccountId) and region (AWS_REGION, which Lambda sets): events and pushes of other
	// accounts or regions are told apart by it (pipeline.Home). Without ACCOUNT_ID (local
	// runs) it is the zero Home, which takes every event for its own.
	Home pipeline.Home
	// LocalStore (LP_STORE=memory) keeps runs in memory, for scripts/invoke and demos with
	// no AWS account. Never set in the template.
	LocalStore bool
}

// LoadConfig reads the configuration and names every missing or invalid variable at once.
// RUNS_TABLE is always required (but with LP_STORE=memory); need lists the function's other
// required variables among PIPELINE_NAME, REPOSITORY_NAME and ACCOUNT_ID.
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
	if account := read("ACCOUNT_ID", ""); account != "" {
		if !accountID.MatchString(account) {
			env.Invalid("ACCOUNT_ID", account, "an AWS account id, 12 digits")
		}
		c.Home = pipeline.Home{Account: account, Region: cmp.Or(env.Optional("AWS_REGION", ""), env.Optional("AWS_DEFAULT_REGION", ""))}
	}
	return c, env.Err()
}

var accountID = regexp.MustCompile(`^[0-9]{12}$`)
