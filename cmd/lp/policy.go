package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lambda-pipeline/lambda-pipeline/shared/policy"
)

// policyResult is `lp policy check --json`: ok, the templates checked, and every violation.
type policyResult struct {
	OK         bool              `json:"ok"`
	Templates  []string          `json:"templates"`
	Violations []policyViolation `json:"violations"`
}

type policyViolation struct {
	File string `json:"file"`
	policy.Violation
}

// RuleParse is the rule of a template that cannot be read or parsed: refused like a
// violation, since the gate cannot vouch for it.
const ruleParse = "parse"

// policyCmd runs `lp policy check [--json] [--principals P,...] [--resource-types T,...]
// [--boundary ARN] TEMPLATE...`: the deployer's policy gate on local files. It prints one line
// per violation (FILE: RESOURCE [STATEMENT]: RULE: MESSAGE) and fails, or a short OK line.
func policyCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{"usage: lp policy check [--json] [--principals P,...] [--resource-types T,...] [--boundary ARN] TEMPLATE..."}
	}
	cfg := policy.DefaultConfig()
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	principals := fs.String("principals", strings.Join(cfg.AllowedPrincipals, ","), "service principals a role may trust, comma-separated")
	types := fs.String("resource-types", strings.Join(cfg.AllowedResourceTypes, ","), `allowed resource types, comma-separated ("AWS::Lambda::*" for a whole service)`)
	boundary := fs.String("boundary", "", "also accept this literal ARN as a role's PermissionsBoundary")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	files := fs.Args()
	if len(files) == 0 {
		return usageError{"no templates given: lp policy check [--json] TEMPLATE..."}
	}
	cfg.AllowedPrincipals = splitList(*principals)
	cfg.AllowedResourceTypes = splitList(*types)
	if *boundary != "" {
		cfg.BoundaryARNs = append(cfg.BoundaryARNs, *boundary)
	}

	res := policyResult{OK: true, Templates: files, Violations: []policyViolation{}}
	for _, f := range files {
		for _, v := range checkFile(f, cfg) {
			res.Violations = append(res.Violations, policyViolation{File: f, Violation: v})
		}
	}
	res.OK = len(res.Violations) == 0

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		for _, v := range res.Violations {
			fmt.Fprintf(stdout, "%s: %s\n", v.File, v.Violation)
		}
		if res.OK {
			fmt.Fprintf(stdout, "OK: %d template(s) pass the policy gate: %s\n", len(files), strings.Join(files, ", "))
		}
	}
	if !res.OK {
		return fmt.Errorf("%d violation(s) in %d template(s)", len(res.Violations), len(files))
	}
	return nil
}

func checkFile(path string, cfg policy.Config) []policy.Violation {
	data, err := os.ReadFile(path)
	if err != nil {
		return []policy.Violation{{Rule: ruleParse, Message: err.Error()}}
	}
	t, err := policy.Parse(data)
	if err != nil {
		msg := err.Error()
		if !errors.Is(err, policy.ErrNotTemplate) {
			msg = "not a template: " + msg
		}
		return []policy.Violation{{Rule: ruleParse, Message: msg}}
	}
	return policy.Check(t, cfg)
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
