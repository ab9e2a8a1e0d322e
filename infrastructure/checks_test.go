package infrastructure

// The template checks. Each takes a parsed template and returns what is wrong with it, one
// sentence per problem, naming the resource and the path inside it; nil means it passes.
// templates_test.go runs them on the real templates, mutation_test.go proves each one fails
// on a template broken on purpose.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

// resourceStarActions are the only actions an Allow statement may grant on Resource "*",
// each with the reason it cannot name its resource.
var resourceStarActions = map[string]string{
	"xray:PutTraceSegments":             "X-Ray trace upload has no resource-level permissions",
	"xray:PutTelemetryRecords":          "X-Ray trace upload has no resource-level permissions",
	"codepipeline:PutJobSuccessResult":  "job results have no resource-level permissions; the job id is the capability",
	"codepipeline:PutJobFailureResult":  "job results have no resource-level permissions; the job id is the capability",
	"codepipeline:GetJobDetails":        "job details have no resource-level permissions; the deployer reads where a job runs to scope it to its project",
	"cloudformation:GetTemplateSummary": "called with a template body, not a stack: there is no resource to name",
	"logs:DescribeLogGroups":            "a list call without resource-level permissions, which CloudFormation's log group handler makes",
	"cloudformation:DescribeStacks":     "without a stack name it lists the account's stacks (the converger finds its projects' by their tags): no resource to name",
}

// knownAttributes are the Fn::GetAtt attributes of the resource types these templates use
// (from the CloudFormation resource reference). Other types are not checked.
var knownAttributes = map[string][]string{
	"AWS::CodeCommit::Repository": {"Arn", "CloneUrlHttp", "CloneUrlSsh", "KmsKeyId", "Name"},
	"AWS::S3::Bucket":             {"Arn", "DomainName", "DualStackDomainName", "RegionalDomainName", "WebsiteURL"},
	"AWS::DynamoDB::Table":        {"Arn", "StreamArn"},
	"AWS::SNS::Topic":             {"TopicArn", "TopicName"},
	"AWS::SQS::Queue":             {"Arn", "QueueName", "QueueUrl"},
	"AWS::IAM::Role":              {"Arn", "RoleId"},
	"AWS::IAM::ManagedPolicy":     {"PolicyArn"},
	"AWS::Logs::LogGroup":         {"Arn"},
	"AWS::Serverless::Function":   {"Arn"},
	"AWS::Lambda::Function":       {"Arn", "SnapStartResponse", "SnapStartResponse.ApplyOn", "SnapStartResponse.OptimizationStatus"},
	"AWS::Lambda::Version":        {"FunctionArn", "Version"},
	"AWS::Lambda::Alias":          {"AliasArn"},
	"AWS::Events::Rule":           {"Arn"},
	"AWS::CodeBuild::Project":     {"Arn"},
	"AWS::CodePipeline::Pipeline": {"Version"},
	"AWS::CloudWatch::Alarm":      {"Arn"},
}

var otherIntrinsics = map[string]bool{
	"Fn::Base64": true, "Fn::GetAZs": true, "Fn::ImportValue": true, "Fn::Join": true,
	"Fn::Select": true, "Fn::Split": true, "Fn::Equals": true, "Fn::Not": true, "Fn::And": true,
	"Fn::Or": true, "Fn::Cidr": true, "Fn::Transform": true, "Fn::Length": true, "Fn::ToJsonString": true,
}

// checkReferences: every Ref, Fn::GetAtt, Fn::Sub variable, condition and DependsOn names
// something the template declares (or a pseudo-parameter); GetAtt attributes exist for
// their resource type; every parameter is used.
func checkReferences(t *tmpl) []string {
	var problems []string
	report := func(path, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", t.name, path, fmt.Sprintf(format, args...)))
	}
	params, resources := t.section("Parameters"), t.section("Resources")
	conditions, mappings := t.section("Conditions"), t.section("Mappings")
	used := map[string]bool{}

	checkRef := func(name, path string) {
		used[name] = true
		_, isParam := params[name]
		_, isResource := resources[name]
		if !pseudoParameters[name] && !isParam && !isResource {
			report(path, "Ref to %q, which is neither a parameter, a resource nor a pseudo-parameter", name)
		}
	}
	checkGetAtt := func(res, attr, path string) {
		r, ok := resources[res].(map[string]any)
		if !ok {
			if _, isParam := params[res]; isParam {
				report(path, "Fn::GetAtt on parameter %q (only resources have attributes)", res)
			} else {
				report(path, "Fn::GetAtt %s.%s: no resource %q", res, attr, res)
			}
			return
		}
		typ, _ := r["Type"].(string)
		if attrs, ok := knownAttributes[typ]; ok && !slices.Contains(attrs, attr) {
			report(path, "Fn::GetAtt %s.%s: %s has no attribute %q (it has %s)", res, attr, typ, attr, strings.Join(attrs, ", "))
		}
	}
	checkCondition := func(c any, path string) {
		name, ok := c.(string)
		if !ok {
			report(path, "condition name must be a string, got %v", c)
			return
		}
		if _, ok := conditions[name]; !ok {
			report(path, "condition %q is not declared", name)
		}
	}

	var walk func(v any, path string)
	walk = func(v any, path string) {
		if name, arg, ok := intrinsic(v); ok {
			switch name {
			case "Ref":
				s, ok := arg.(string)
				if !ok {
					report(path, "Ref needs a name, got %v", arg)
					return
				}
				checkRef(s, path)
			case "Fn::GetAtt":
				res, attr, ok := getAttArgs(arg)
				if !ok {
					report(path, "Fn::GetAtt needs Resource.Attribute, got %v", arg)
					return
				}
				checkGetAtt(res, attr, path)
			case "Fn::Sub":
				var s string
				vars := map[string]any{}
				switch a := arg.(type) {
				case string:
					s = a
				case []any:
					if len(a) == 2 {
						s, _ = a[0].(string)
						vars, _ = a[1].(map[string]any)
					}
				}
				if s == "" {
					report(path, "Fn::Sub needs a string or [string, variables]")
					return
				}
				for _, name := range subVariables(s) {
					if _, ok := vars[name]; ok {
						continue
					}
					if res, attr, ok := strings.Cut(name, "."); ok {
						checkGetAtt(res, attr, path)
					} else {
						checkRef(name, path)
					}
				}
				for k, val := range vars {
					walk(val, path+".${"+k+"}")
				}
			case "Fn::If":
				a, ok := arg.([]any)
				if !ok || len(a) != 3 {
					report(path, "Fn::If needs [condition, then, else]")
					return
				}
				checkCondition(a[0], path)
				walk(a[1], path+"[then]")
				walk(a[2], path+"[else]")
			case "Condition":
				checkCondition(arg, path)
			case "Fn::FindInMap":
				if a, ok := arg.([]any); ok && len(a) == 3 {
					if m, ok := a[0].(string); ok {
						if _, ok := mappings[m]; !ok {
							report(path, "Fn::FindInMap: no mapping %q", m)
						}
					}
				}
				walk(arg, path)
			default:
				if !otherIntrinsics[name] {
					report(path, "unknown intrinsic function %q", name)
				}
				walk(arg, path)
			}
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				if (k == "Ref" || strings.HasPrefix(k, "Fn::")) && len(x) > 1 {
					report(path, "%s shares its map with other keys; an intrinsic function must stand alone", k)
				}
				walk(x[k], path+"."+k)
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}

	for _, id := range sortedKeys(resources) {
		r, ok := resources[id].(map[string]any)
		if !ok {
			report(id, "not a resource")
			continue
		}
		if _, ok := r["Type"].(string); !ok {
			report(id, "no Type")
		}
		walk(r["Properties"], id+".Properties")
		if c, ok := r["Condition"]; ok {
			checkCondition(c, id+".Condition")
		}
		var deps []any
		switch d := r["DependsOn"].(type) {
		case string:
			deps = []any{d}
		case []any:
			deps = d
		}
		for _, d := range deps {
			if s, _ := d.(string); resources[s] == nil {
				report(id+".DependsOn", "no resource %v", d)
			}
		}
	}
	for _, section := range []string{"Outputs", "Conditions", "Globals"} {
		for _, k := range sortedKeys(t.section(section)) {
			walk(t.section(section)[k], section+"."+k)
			if c, ok := at(t.section(section)[k], "Condition").(string); ok && section == "Outputs" {
				checkCondition(c, section+"."+k+".Condition")
			}
		}
	}
	// The console's parameter groups name parameters as plain strings.
	groups, _ := at(t.root, "Metadata", "AWS::CloudFormation::Interface", "ParameterGroups").([]any)
	for i, g := range groups {
		names, _ := at(g, "Parameters").([]any)
		for _, n := range names {
			if s, _ := n.(string); params[s] == nil {
				report(fmt.Sprintf("Metadata.ParameterGroups[%d]", i), "no parameter %v", n)
			}
		}
	}
	for _, p := range sortedKeys(params) {
		if !used[p] {
			report("Parameters."+p, "declared but never used")
		}
	}
	return problems
}

// A function of template.yaml: where its Makefile target builds from, and what it must have.
type functionSpec struct {
	dir string // functions/<dir>
}

// requiredEnvironment are the variables the control-plane functions read.
var requiredEnvironment = []string{
	"RUNS_TABLE", "PROJECTS", "TOPIC_ARN",
	"SLACK_WEBHOOK_PARAMETER", "RETENTION_DAYS", "LINK_EXPIRY_HOURS", "STALE_AFTER_MINUTES", "ACCOUNT_ID",
}

// checkFunctions: each AWS::Serverless::Function (with Globals applied) is a Go function for
// provided.al2023 on arm64, built by the Makefile target `build-<LogicalId>` found in its
// CodeUri, from functions/<dir>; it has its own role (no SAM policy templates, which bring
// AWS-managed policies with Resource "*"), JSON logs in a log group with retention, tracing,
// an SQS on-failure destination and the environment the code reads.
func checkFunctions(t *tmpl, templateDir string, specs map[string]functionSpec) []string {
	var problems []string
	report := func(id, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", t.name, id, fmt.Sprintf(format, args...)))
	}
	globals, _ := at(t.root, "Globals", "Function").(map[string]any)
	seen := map[string]bool{}
	for _, id := range t.resourcesOfType("AWS::Serverless::Function") {
		seen[id] = true
		_, props := t.resource(id)
		fn := mergeGlobals(globals, props)
		spec, ok := specs[id]
		if !ok {
			report(id, "a function this check does not know: add it to the function table in templates_test.go")
			continue
		}
		for prop, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "Tracing": "Active"} {
			if fn[prop] != want {
				report(id, "%s is %v, want %v", prop, fn[prop], want)
			}
		}
		if a, _ := fn["Architectures"].([]any); len(a) != 1 || a[0] != "arm64" {
			report(id, "Architectures is %v, want [arm64]", fn["Architectures"])
		}
		if at(fn, "LoggingConfig", "LogFormat") != "JSON" {
			report(id, "LoggingConfig.LogFormat is not JSON")
		}
		if lg, ok := at(fn, "LoggingConfig", "LogGroup", "Ref").(string); !ok {
			report(id, "LoggingConfig.LogGroup must Ref a log group of this template")
		} else if typ, lgProps := t.resource(lg); typ != "AWS::Logs::LogGroup" || lgProps["RetentionInDays"] == nil {
			report(id, "log group %s is not an AWS::Logs::LogGroup with RetentionInDays", lg)
		}
		if _, ok := fn["Role"]; !ok {
			report(id, "no Role: SAM would create one with AWS-managed policies that grant Resource \"*\"")
		}
		if _, ok := fn["Policies"]; ok {
			report(id, "Policies (SAM policy templates) are not used: give the function a role of this template")
		}
		if _, ok := fn["Events"]; ok {
			report(id, "Events: declare the trigger as an AWS::Events::Rule, so its pattern, retry policy and dead-letter queue are checked")
		}
		if at(fn, "EventInvokeConfig", "DestinationConfig", "OnFailure", "Type") != "SQS" {
			report(id, "EventInvokeConfig has no SQS on-failure destination (async events would be lost after the retries)")
		}
		vars, _ := at(fn, "Environment", "Variables").(map[string]any)
		for _, v := range requiredEnvironment {
			if _, ok := vars[v]; !ok {
				report(id, "environment variable %s is not set", v)
			}
		}
		if at(fn, "Metadata") != nil {
			report(id, "Metadata belongs to the resource, not its Properties")
		}
		meta, _ := at(t.section("Resources")[id], "Metadata").(map[string]any)
		if meta["BuildMethod"] != "makefile" {
			report(id, "Metadata.BuildMethod is %v, want makefile", meta["BuildMethod"])
		}

		codeURI, ok := fn["CodeUri"].(string)
		if !ok {
			report(id, "CodeUri must be a local directory, got %v", fn["CodeUri"])
			continue
		}
		codeDir := filepath.Join(templateDir, codeURI)
		if st, err := os.Stat(codeDir); err != nil || !st.IsDir() {
			report(id, "CodeUri %q is not a directory", codeURI)
			continue
		}
		if _, err := os.Stat(filepath.Join(templateDir, "functions", spec.dir, "main.go")); err != nil {
			report(id, "functions/%s/main.go does not exist", spec.dir)
		}
		if err := checkMakeTarget(codeDir, id, spec.dir); err != nil {
			report(id, "%v", err)
		}
	}
	for _, id := range sortedKeys(specs) {
		if !seen[id] {
			report(id, "expected an AWS::Serverless::Function with this logical ID")
		}
	}
	return problems
}

// checkMakeTarget asks make what `make build-<id>` would run (a dry run, nothing is built)
// and checks that it builds ./functions/<dir> for arm64 into $(ARTIFACTS_DIR)/bootstrap.
func checkMakeTarget(dir, id, fnDir string) error {
	makefile := filepath.Join(dir, "Makefile")
	if _, err := os.Stat(makefile); err != nil {
		return fmt.Errorf("no Makefile in CodeUri %s (BuildMethod makefile needs one)", dir)
	}
	const artifacts = "/sam-artifacts-dir"
	target := "build-" + id
	if _, err := exec.LookPath("make"); err != nil {
		// Without make, at least find the target's name.
		b, err := os.ReadFile(makefile)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), target+":") && !strings.Contains(string(b), ","+id+",") {
			return fmt.Errorf("Makefile has no target %s", target)
		}
		return nil
	}
	cmd := exec.Command("make", "--no-print-directory", "-n", "-C", dir, target, "ARTIFACTS_DIR="+artifacts)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("Makefile: `make -n %s` fails: %s", target, strings.TrimSpace(string(out)))
	}
	recipe := string(out)
	for _, want := range []string{"./functions/" + fnDir, artifacts + "/bootstrap", "GOARCH=arm64", "lambda.norpc"} {
		if !strings.Contains(recipe, want) {
			return fmt.Errorf("Makefile target %s does not mention %q; it runs: %s", target, want, strings.TrimSpace(recipe))
		}
	}
	return nil
}

// mergeGlobals applies SAM's Globals to a function's properties: maps merge, everything else
// the function sets wins.
func mergeGlobals(globals, props map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range globals {
		out[k] = v
	}
	for k, v := range props {
		g, gok := out[k].(map[string]any)
		p, pok := v.(map[string]any)
		if gok && pok {
			out[k] = mergeGlobals(g, p)
			continue
		}
		out[k] = v
	}
	return out
}

// ruleExpectation says which sample events (names in events/) a rule must match, and which
// it must not.
type ruleExpectation struct {
	match, noMatch []string
}

// checkEventRules: every AWS::Events::Rule with an EventPattern has expectations; evaluated
// with the sample parameters, its pattern compiles, matches each event it must and none it
// must not; each rule targets a function of the template with a retry policy and, for event
// patterns, a dead-letter queue.
func checkEventRules(t *tmpl, env *sampleEnv, expect map[string]ruleExpectation, events map[string]map[string]any) []string {
	var problems []string
	report := func(id, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", t.name, id, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	for _, id := range t.resourcesOfType("AWS::Events::Rule") {
		_, props := t.resource(id)
		targets, _ := props["Targets"].([]any)
		if len(targets) == 0 {
			report(id, "no Targets")
		}
		for i, tg := range targets {
			arn, _ := at(tg, "Arn", "Fn::GetAtt").([]any)
			if len(arn) != 2 || arn[1] != "Arn" {
				report(id, "Targets[%d].Arn should be !GetAtt <Function>.Arn", i)
			} else if typ, _ := t.resource(fmt.Sprint(arn[0])); typ != "AWS::Serverless::Function" && typ != "AWS::Lambda::Function" {
				report(id, "Targets[%d] is not a function of this template", i)
			}
			if at(tg, "RetryPolicy") == nil {
				report(id, "Targets[%d] has no RetryPolicy", i)
			}
			if props["EventPattern"] != nil && at(tg, "DeadLetterConfig", "Arn") == nil {
				report(id, "Targets[%d] has no DeadLetterConfig: an event EventBridge cannot deliver would be lost", i)
			}
		}
		raw, ok := props["EventPattern"]
		if !ok {
			continue // a schedule
		}
		seen[id] = true
		exp, ok := expect[id]
		if !ok {
			report(id, "no sample events say what this rule must match: add it to the expectations in templates_test.go")
			continue
		}
		resolved, err := env.eval(raw)
		if err != nil {
			report(id, "EventPattern: %v", err)
			continue
		}
		pattern, err := NewEventPattern(resolved)
		if err != nil {
			report(id, "%v", err)
			continue
		}
		for _, name := range exp.match {
			ev, ok := events[name]
			if !ok {
				report(id, "no sample event %s", name)
				continue
			}
			if miss := pattern.Mismatch(ev); miss != "" {
				got, _ := json.Marshal(lookupPath(ev, miss))
				report(id, "does not match %s: the pattern's %s wants %s, the event has %s", name, miss, patternAt(resolved, miss), got)
			}
		}
		for _, name := range exp.noMatch {
			ev, ok := events[name]
			if !ok {
				report(id, "no sample event %s", name)
				continue
			}
			if pattern.MatchValue(ev) {
				report(id, "matches %s, which it must not", name)
			}
		}
	}
	for _, id := range sortedKeys(expect) {
		if !seen[id] {
			report(id, "expectations for a rule with an EventPattern that the template does not have")
		}
	}
	return problems
}

func lookupPath(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func patternAt(pattern any, path string) string {
	b, _ := json.Marshal(lookupPath(pattern, path))
	return string(b)
}

// policyDocument is one IAM policy found in a template, and what kind it is.
type policyDocument struct {
	where    string
	doc      any
	trust    bool // an AssumeRolePolicyDocument
	resource bool // a resource policy (bucket, queue, topic): has a Principal
	boundary bool // a permissions boundary: caps roles, grants nothing (checkBoundary)
}

// boundaryPolicies are the managed policies of a template that its IAM statements require as
// iam:PermissionsBoundary: permissions boundaries, which grant nothing by themselves.
func boundaryPolicies(t *tmpl) map[string]bool {
	out := map[string]bool{}
	var refs func(v any)
	refs = func(v any) {
		if name, arg, ok := intrinsic(v); ok && name == "Ref" {
			if typ, _ := t.resource(fmt.Sprint(arg)); typ == "AWS::IAM::ManagedPolicy" {
				out[fmt.Sprint(arg)] = true
			}
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				refs(e)
			}
		case []any:
			for _, e := range x {
				refs(e)
			}
		}
	}
	for _, id := range t.resourceIDs() {
		typ, props := t.resource(id)
		if typ != "AWS::IAM::Role" {
			continue
		}
		pols, _ := props["Policies"].([]any)
		for _, p := range pols {
			for _, st := range statements(at(p, "PolicyDocument")) {
				conds, _ := at(st, "Condition").(map[string]any)
				for _, c := range conds {
					if v := at(c, "iam:PermissionsBoundary"); v != nil {
						refs(v)
					}
				}
			}
		}
	}
	return out
}

func policyDocuments(t *tmpl) (docs []policyDocument, problems []string) {
	boundaries := boundaryPolicies(t)
	for _, id := range t.resourceIDs() {
		typ, props := t.resource(id)
		switch typ {
		case "AWS::IAM::Role":
			docs = append(docs, policyDocument{where: id + ".AssumeRolePolicyDocument", doc: props["AssumeRolePolicyDocument"], trust: true})
			pols, _ := props["Policies"].([]any)
			for i, p := range pols {
				docs = append(docs, policyDocument{where: fmt.Sprintf("%s.Policies[%d]", id, i), doc: at(p, "PolicyDocument")})
			}
			arns, _ := props["ManagedPolicyArns"].([]any)
			for i, a := range arns {
				ref, _ := at(a, "Ref").(string)
				if rt, _ := t.resource(ref); rt != "AWS::IAM::ManagedPolicy" {
					problems = append(problems, fmt.Sprintf("%s: %s.ManagedPolicyArns[%d]: %v is not a managed policy of this template, so it cannot be checked", t.name, id, i, a))
				}
			}
		case "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy":
			docs = append(docs, policyDocument{where: id + ".PolicyDocument", doc: props["PolicyDocument"], boundary: boundaries[id]})
		case "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy":
			docs = append(docs, policyDocument{where: id + ".PolicyDocument", doc: props["PolicyDocument"], resource: true})
		case "AWS::Serverless::Function":
			if props["Policies"] != nil {
				problems = append(problems, fmt.Sprintf("%s: %s.Policies: use a role of this template instead", t.name, id))
			}
		}
	}
	return docs, problems
}

// statements returns a policy's statements, taking both branches of Fn::If.
func statements(doc any) []any {
	var out []any
	var add func(v any)
	add = func(v any) {
		if name, arg, ok := intrinsic(v); ok {
			if a, isList := arg.([]any); name == "Fn::If" && isList && len(a) == 3 {
				add(a[1])
				add(a[2])
			}
			return // AWS::NoValue, or an intrinsic that cannot be a statement
		}
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				add(e)
			}
		case map[string]any:
			out = append(out, x)
		}
	}
	add(at(doc, "Statement"))
	return out
}

func stringList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// checkIAM: no Allow grants Action "*" or "service:*", NotAction or NotResource; Resource "*"
// only for the actions of resourceStarActions; iam:PassRole only on named roles and only to
// a named service; no resource policy allows Principal "*"; roles trust services only; managed
// policies are the template's own.
func checkIAM(t *tmpl) []string {
	docs, problems := policyDocuments(t)
	report := func(where, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", t.name, where, fmt.Sprintf(format, args...)))
	}
	for _, d := range docs {
		if d.doc == nil {
			report(d.where, "missing")
			continue
		}
		stmts := statements(d.doc)
		if len(stmts) == 0 {
			report(d.where, "no statements")
		}
		for i, s := range stmts {
			st := s.(map[string]any)
			where := fmt.Sprintf("%s.Statement[%d]", d.where, i)
			if sid, ok := st["Sid"].(string); ok {
				where += " (" + sid + ")"
			}
			if st["Effect"] != "Allow" {
				continue // a Deny can only take rights away
			}
			if d.boundary {
				continue // a cap, not a grant: checkBoundary
			}
			if d.trust {
				svc := at(st, "Principal", "Service")
				if svc == nil || at(st, "Principal", "AWS") != nil || st["Principal"] == "*" {
					report(where, "a role must trust a service principal only, got %v", st["Principal"])
				}
				continue
			}
			if d.resource {
				p := st["Principal"]
				if p == "*" || at(p, "AWS") == "*" {
					report(where, "allows Principal \"*\"")
				}
			}
			if _, ok := st["NotAction"]; ok {
				report(where, "NotAction in an Allow grants everything else")
			}
			if _, ok := st["NotResource"]; ok {
				report(where, "NotResource in an Allow grants everything else")
			}
			var actions []string
			for _, a := range stringList(st["Action"]) {
				s, ok := a.(string)
				if !ok {
					report(where, "Action %v is not a literal", a)
					continue
				}
				actions = append(actions, s)
				if s == "*" || strings.HasSuffix(s, ":*") {
					report(where, "Action %q grants a whole service", s)
				}
			}
			star := false
			for _, r := range stringList(st["Resource"]) {
				if r == "*" {
					star = true
				}
			}
			if star {
				var bad []string
				for _, a := range actions {
					if _, ok := resourceStarActions[a]; !ok {
						bad = append(bad, a)
					}
				}
				if len(bad) > 0 {
					report(where, "Resource \"*\" for %s: name the resources (only %s may use \"*\")", strings.Join(bad, ", "), strings.Join(sortedKeys(resourceStarActions), ", "))
				}
			}
			for _, a := range actions {
				if !actionCovers(a, "iam:PassRole") {
					continue
				}
				if star {
					report(where, "iam:PassRole on Resource \"*\": name the roles")
				}
				for _, r := range stringList(st["Resource"]) {
					if !namesRole(r) {
						report(where, "iam:PassRole on %v, which is not a role of this template or a role ARN", r)
					}
				}
				if at(st, "Condition", "StringEquals", "iam:PassedToService") == nil {
					report(where, "iam:PassRole without an iam:PassedToService condition")
				}
			}
		}
	}
	return problems
}

// actionCovers reports whether an action pattern such as "iam:Pass*" grants action.
func actionCovers(pattern, action string) bool {
	re := "^(?i)" + strings.ReplaceAll(strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*"), `\?`, ".") + "$"
	ok, _ := regexp.MatchString(re, action)
	return ok
}

// namesRole: a GetAtt of a role's Arn, or an ARN (literal or Fn::Sub) of roles.
func namesRole(r any) bool {
	if res, attr, ok := getAttArgs(at(r, "Fn::GetAtt")); ok {
		return attr == "Arn" && res != ""
	}
	s, ok := r.(string)
	if sub, isSub := at(r, "Fn::Sub").(string); isSub {
		s, ok = sub, true
	}
	return ok && regexp.MustCompile(`^arn:(aws|\$\{AWS::Partition\}):iam::([0-9]{12}|\$\{AWS::AccountId\}):role/.+`).MatchString(s) && !strings.HasSuffix(s, "role/*")
}

// checkBuckets: every bucket is encrypted, blocks public access entirely, is versioned, has an
// expiring lifecycle rule and a policy that refuses plain HTTP on the bucket and its objects.
func checkBuckets(t *tmpl) []string {
	var problems []string
	report := func(id, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", t.name, id, fmt.Sprintf(format, args...)))
	}
	for _, id := range t.resourcesOfType("AWS::S3::Bucket") {
		_, props := t.resource(id)
		rules, _ := at(props, "BucketEncryption", "ServerSideEncryptionConfiguration").([]any)
		if len(rules) == 0 {
			report(id, "no BucketEncryption")
		}
		for i, r := range rules {
			alg := at(r, "ServerSideEncryptionByDefault", "SSEAlgorithm")
			if alg != "AES256" && alg != "aws:kms" && alg != "aws:kms:dsse" {
				report(id, "encryption rule %d has SSEAlgorithm %v", i, alg)
			}
		}
		for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
			if at(props, "PublicAccessBlockConfiguration", k) != true {
				report(id, "PublicAccessBlockConfiguration.%s is not true", k)
			}
		}
		if at(props, "VersioningConfiguration", "Status") != "Enabled" {
			report(id, "versioning is not enabled")
		}
		expires := false
		lc, _ := at(props, "LifecycleConfiguration", "Rules").([]any)
		for _, r := range lc {
			if at(r, "Status") == "Enabled" && at(r, "ExpirationInDays") != nil {
				expires = true
			}
		}
		if !expires {
			report(id, "no enabled lifecycle rule with ExpirationInDays")
		}
		if !hasTLSOnlyPolicy(t, id) {
			report(id, "no bucket policy denying s3:* on the bucket and its objects when aws:SecureTransport is false")
		}
	}
	return problems
}

func hasTLSOnlyPolicy(t *tmpl, bucket string) bool {
	for _, id := range t.resourcesOfType("AWS::S3::BucketPolicy") {
		_, props := t.resource(id)
		if at(props, "Bucket", "Ref") != bucket {
			continue
		}
		for _, s := range statements(props["PolicyDocument"]) {
			st := s.(map[string]any)
			if st["Effect"] != "Deny" || st["Principal"] != "*" || !slices.Contains(stringList(st["Action"]), any("s3:*")) {
				continue
			}
			if v := at(st, "Condition", "Bool", "aws:SecureTransport"); v != false && v != "false" {
				continue
			}
			var onBucket, onObjects bool
			for _, r := range stringList(st["Resource"]) {
				if res, attr, ok := getAttArgs(at(r, "Fn::GetAtt")); ok && res == bucket && attr == "Arn" {
					onBucket = true
				}
				if at(r, "Fn::Sub") == "${"+bucket+".Arn}/*" {
					onObjects = true
				}
			}
			if onBucket && onObjects {
				return true
			}
		}
	}
	return false
}

// checkLogGroups: every log group expires its events.
func checkLogGroups(t *tmpl) []string {
	var problems []string
	for _, id := range t.resourcesOfType("AWS::Logs::LogGroup") {
		if _, props := t.resource(id); props["RetentionInDays"] == nil {
			problems = append(problems, fmt.Sprintf("%s: %s: no RetentionInDays (logs would be kept forever)", t.name, id))
		}
	}
	return problems
}

// sampleExecutionID stands for what CodePipeline puts for #{codepipeline.PipelineExecutionId}.
const sampleExecutionID = "3a2b1c0d-1111-4000-8000-000000000001"

// invokeAction is a Lambda Invoke action of a pipeline, with its UserParameters parsed.
type invokeAction struct {
	stage, name string
	inputs      []string
	params      deploy.UserParameters
}

// checkInvokeActions: every Lambda Invoke action's UserParameters, evaluated with the sample
// parameters, parse as the deployer parses them; the template it names exists in the
// repository and comes from an input artifact of the action, as do its artifact overrides.
func checkInvokeActions(t *tmpl, env *sampleEnv, repoRoot string) ([]invokeAction, []string) {
	var problems []string
	var actions []invokeAction
	for _, id := range t.resourcesOfType("AWS::CodePipeline::Pipeline") {
		_, props := t.resource(id)
		stages, _ := props["Stages"].([]any)
		for _, s := range stages {
			stage, _ := at(s, "Name").(string)
			acts, _ := at(s, "Actions").([]any)
			for _, a := range acts {
				if at(a, "ActionTypeId", "Provider") != "Lambda" {
					continue
				}
				name, _ := at(a, "Name").(string)
				where := fmt.Sprintf("%s: %s.%s.%s", t.name, id, stage, name)
				var inputs []string
				for _, in := range stringList(at(a, "InputArtifacts")) {
					if n, ok := at(in, "Name").(string); ok {
						inputs = append(inputs, n)
					}
				}
				raw, err := env.evalString(at(a, "Configuration", "UserParameters"))
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: UserParameters: %v", where, err))
					continue
				}
				// CodePipeline resolves its variables before invoking the deployer; its
				// 1000-character limit applies to the configuration as written.
				if len(raw) > deploy.MaxUserParameters {
					problems = append(problems, fmt.Sprintf("%s: UserParameters of %d characters, CodePipeline allows %d", where, len(raw), deploy.MaxUserParameters))
				}
				raw = strings.ReplaceAll(raw, "#{codepipeline.PipelineExecutionId}", sampleExecutionID)
				p, err := deploy.ParseUserParameters(raw)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v (evaluated: %s)", where, err, raw))
					continue
				}
				artifact, file := p.Template()
				if !slices.Contains(inputs, artifact) {
					problems = append(problems, fmt.Sprintf("%s: templatePath reads artifact %s, which is not an input of the action (%v)", where, artifact, inputs))
				}
				if _, err := os.Stat(filepath.Join(repoRoot, file)); err != nil {
					problems = append(problems, fmt.Sprintf("%s: templatePath %s does not exist in the repository", where, file))
				}
				for _, k := range sortedKeys(p.ParameterOverrides) {
					if from := p.ParameterOverrides[k].From; from != nil && !slices.Contains(inputs, from.Artifact) {
						problems = append(problems, fmt.Sprintf("%s: parameter %s reads artifact %s, which is not an input of the action (%v)", where, k, from.Artifact, inputs))
					}
				}
				actions = append(actions, invokeAction{stage: stage, name: name, inputs: inputs, params: p})
			}
		}
	}
	return actions, problems
}
