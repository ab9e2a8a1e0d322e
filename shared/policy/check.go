package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The rules, as they appear in a Violation.
const (
	RuleResourceType  = "resource-type"       // a resource type outside the allow-list
	RuleTransform     = "transform"           // a macro (Transform, Fn::Transform): the template deployed is not the one checked
	RuleBoundary      = "boundary"            // a role without the permissions boundary
	RuleTrust         = "trust"               // a role trusting more than the allowed service principals
	RuleActionStar    = "action-star"         // Action "*" (every action of every service)
	RuleIAMWildcard   = "iam-wildcard"        // iam:* or another IAM action wildcard
	RuleNotAction     = "not-action"          // NotAction in an Allow: everything but a list
	RuleNotResource   = "not-resource"        // NotResource in an Allow: everything but a list
	RuleResourceStar  = "resource-star-write" // Resource "*" with a write action outside the allow-list
	RuleManagedPolicy = "managed-policy"      // ManagedPolicyArns: policies whose content the gate cannot see
	RuleNotLiteral    = "not-literal"         // an Action or a principal the gate cannot read (an intrinsic function)
)

// Config says what the gate allows. The zero value allows nothing; DefaultConfig is what a
// Lambda application needs.
type Config struct {
	// AllowedPrincipals are the service principals a role may trust (lambda.amazonaws.com …).
	AllowedPrincipals []string
	// AllowedResourceTypes are resource types, exact ("AWS::IAM::Role") or a whole service
	// ("AWS::Lambda::*").
	AllowedResourceTypes []string
	// StarWriteActions are the write actions an Allow may grant on Resource "*": those that
	// have no resource-level permissions at all, so "*" names nothing wider.
	StarWriteActions []string
	// BoundaryParameters are the template parameters a role's PermissionsBoundary may Ref
	// (the deployer sets their value to the boundary's ARN; IAM refuses any other value).
	BoundaryParameters []string
	// BoundaryARNs are the literal ARNs a role's PermissionsBoundary may name.
	BoundaryARNs []string
}

// DefaultPrincipals are the service principals a project's roles may trust by default: its
// functions (lambda.yml) and its build (pipeline.yml). The pipeline's own role trusts
// CodePipeline, which DefaultConfig adds for pipeline.yml.
var DefaultPrincipals = []string{"lambda.amazonaws.com", "codebuild.amazonaws.com"}

// DefaultConfig is the gate for a project's two stacks: the resource types of a Lambda
// application and of its pipeline, roles trusted by Lambda, CodeBuild and CodePipeline, the
// boundary passed as the PermissionsBoundaryArn parameter.
func DefaultConfig() Config {
	return Config{
		AllowedPrincipals: append(slices.Clone(DefaultPrincipals), "codepipeline.amazonaws.com"),
		AllowedResourceTypes: []string{
			"AWS::Lambda::*", "AWS::IAM::Role", "AWS::Logs::*", "AWS::DynamoDB::*", "AWS::S3::*",
			"AWS::SQS::*", "AWS::SNS::*", "AWS::Events::*", "AWS::Scheduler::*",
			"AWS::ApiGateway::*", "AWS::ApiGatewayV2::*", "AWS::StepFunctions::*", "AWS::CloudWatch::*",
			// What pipeline.yml needs.
			"AWS::CodePipeline::Pipeline", "AWS::CodeBuild::Project",
		},
		StarWriteActions: []string{
			// X-Ray and CloudWatch metrics have no resource-level permissions.
			"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData",
			// A function in a VPC: Lambda's documented execution-role permissions.
			"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
			"ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
			// Task tokens and job ids are the capability, there is no resource.
			"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat",
			"codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult",
		},
		BoundaryParameters: []string{"PermissionsBoundaryArn"},
	}
}

// Violation is one refusal: which resource, which statement of its policies (empty when the
// rule is about the resource itself), which rule, and why.
type Violation struct {
	Resource  string `json:"resource"`
	Statement string `json:"statement,omitempty"`
	Rule      string `json:"rule"`
	Message   string `json:"message"`
}

func (v Violation) String() string {
	where := v.Resource
	if where == "" {
		where = "(template)"
	}
	if v.Statement != "" {
		where += " " + v.Statement
	}
	return fmt.Sprintf("%s: %s: %s", where, v.Rule, v.Message)
}

// Check returns every rule the template breaks, by resource in logical-ID order; none means
// it may be deployed. It reads the template as written: both branches of every Fn::If count,
// and a parameter counts with its default value where the rules need a value.
func Check(t *Template, cfg Config) []Violation {
	c := checker{t: t, cfg: cfg}
	if tr, ok := t.Root["Transform"]; ok {
		c.add("", "", RuleTransform, "the template declares Transform %s: CloudFormation expands it after the gate has looked, so the gate cannot vouch for what is deployed", compact(tr))
	}
	resources := t.Section("Resources")
	for _, id := range sortedKeys(resources) {
		r, ok := resources[id].(map[string]any)
		if !ok {
			c.add(id, "", RuleResourceType, "not a resource (want a mapping with a Type)")
			continue
		}
		typ, _ := r["Type"].(string)
		if !c.typeAllowed(typ) {
			c.add(id, "", RuleResourceType, "type %q is outside the allow-list (%s)", typ, strings.Join(cfg.AllowedResourceTypes, ", "))
		}
		if path := findTransform(r, ""); path != "" {
			c.add(id, path, RuleTransform, "Fn::Transform runs a macro after the gate has looked")
		}
		if typ == "AWS::IAM::Role" {
			props, _ := r["Properties"].(map[string]any)
			c.role(id, props)
		}
	}
	return c.out
}

type checker struct {
	t   *Template
	cfg Config
	out []Violation
}

func (c *checker) add(resource, statement, rule, format string, args ...any) {
	c.out = append(c.out, Violation{Resource: resource, Statement: statement, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) typeAllowed(typ string) bool {
	if typ == "" {
		return false
	}
	for _, a := range c.cfg.AllowedResourceTypes {
		if a == typ {
			return true
		}
		if prefix, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(typ, prefix) {
			return true
		}
	}
	return false
}

func (c *checker) role(id string, props map[string]any) {
	c.boundary(id, props["PermissionsBoundary"])
	c.trust(id, props["AssumeRolePolicyDocument"])
	for i, p := range branches(props["Policies"]) {
		for _, p := range branches(p) {
			name, _ := at(p, "PolicyName").(string)
			where := fmt.Sprintf("Policies[%d]", i)
			if name != "" {
				where = fmt.Sprintf("Policies[%d] (%s)", i, name)
			}
			c.permissions(id, where, at(p, "PolicyDocument"))
		}
	}
	if arns := branches(props["ManagedPolicyArns"]); len(arns) > 0 {
		var names []string
		for _, a := range arns {
			names = append(names, compact(a))
		}
		c.add(id, "ManagedPolicyArns", RuleManagedPolicy, "attaches %s: give the role inline policies, which the gate can read", strings.Join(names, ", "))
	}
}

func (c *checker) boundary(id string, b any) {
	if b == nil {
		c.add(id, "PermissionsBoundary", RuleBoundary, "the role has no permissions boundary: set PermissionsBoundary to %s", c.boundaryHint())
		return
	}
	if name, arg, ok := intrinsic(b); ok && name == "Ref" {
		if p, _ := arg.(string); slices.Contains(c.cfg.BoundaryParameters, p) {
			return
		}
	}
	if s, ok := b.(string); ok && slices.Contains(c.cfg.BoundaryARNs, s) {
		return
	}
	c.add(id, "PermissionsBoundary", RuleBoundary, "the boundary is %s, not %s", compact(b), c.boundaryHint())
}

func (c *checker) boundaryHint() string {
	var opts []string
	for _, p := range c.cfg.BoundaryParameters {
		opts = append(opts, "!Ref "+p)
	}
	opts = append(opts, c.cfg.BoundaryARNs...)
	if len(opts) == 0 {
		return "the project's boundary"
	}
	return strings.Join(opts, " or ")
}

func (c *checker) trust(id string, doc any) {
	const where = "AssumeRolePolicyDocument"
	if doc == nil {
		c.add(id, where, RuleTrust, "no trust policy")
		return
	}
	for i, st := range statementsOf(doc) {
		sw := statementName(where, i, st)
		if st["Effect"] != "Allow" {
			continue
		}
		if np, ok := st["NotPrincipal"]; ok {
			c.add(id, sw, RuleTrust, "NotPrincipal %s in an Allow trusts everyone else", compact(np))
			continue
		}
		p := st["Principal"]
		pm, ok := p.(map[string]any)
		if !ok {
			c.add(id, sw, RuleTrust, "principal %s: a role may trust only %s", compact(p), strings.Join(c.cfg.AllowedPrincipals, ", "))
			continue
		}
		for _, kind := range sortedKeys(pm) {
			if kind != "Service" {
				c.add(id, sw, RuleTrust, "principal %s %s: a role may trust only the services %s", kind, compact(pm[kind]), strings.Join(c.cfg.AllowedPrincipals, ", "))
				continue
			}
			for _, s := range branches(pm[kind]) {
				name, ok := s.(string)
				switch {
				case !ok:
					c.add(id, sw, RuleNotLiteral, "service principal %s is not a literal the gate can read", compact(s))
				case !slices.Contains(c.cfg.AllowedPrincipals, name):
					c.add(id, sw, RuleTrust, "service principal %q is not allowed (allowed: %s)", name, strings.Join(c.cfg.AllowedPrincipals, ", "))
				}
			}
		}
	}
}

// permissions checks the Allow statements of an identity policy.
func (c *checker) permissions(id, where string, doc any) {
	for i, st := range statementsOf(doc) {
		sw := statementName(where+".PolicyDocument", i, st)
		if st["Effect"] != "Allow" {
			continue // a Deny only takes rights away
		}
		if na, ok := st["NotAction"]; ok {
			c.add(id, sw, RuleNotAction, "NotAction %s in an Allow grants every other action", compact(na))
		}
		if nr, ok := st["NotResource"]; ok {
			c.add(id, sw, RuleNotResource, "NotResource %s in an Allow grants every other resource", compact(nr))
		}
		var actions []string
		for _, a := range branches(st["Action"]) {
			s, ok := a.(string)
			if !ok {
				c.add(id, sw, RuleNotLiteral, "Action %s is not a literal the gate can read", compact(a))
				continue
			}
			actions = append(actions, s)
			service, _, _ := strings.Cut(s, ":")
			switch {
			case s == "*" || service == "*" || strings.Trim(service, "*?") == "":
				c.add(id, sw, RuleActionStar, "Action %q grants every action of every service", s)
			case strings.EqualFold(service, "iam") && strings.ContainsAny(s, "*?"):
				c.add(id, sw, RuleIAMWildcard, "Action %q grants IAM actions by wildcard", s)
			}
		}
		if !c.anyStarResource(st["Resource"]) {
			continue
		}
		var writes []string
		for _, a := range actions {
			if !isRead(a) && !c.starWriteAllowed(a) {
				writes = append(writes, a)
			}
		}
		if len(writes) > 0 {
			c.add(id, sw, RuleResourceStar, "Resource \"*\" with write actions %s: name the resources (only %s may use \"*\")", strings.Join(writes, ", "), strings.Join(c.cfg.StarWriteActions, ", "))
		}
	}
}

func (c *checker) starWriteAllowed(action string) bool {
	for _, a := range c.cfg.StarWriteActions {
		if strings.EqualFold(a, action) {
			return true
		}
	}
	return false
}

// anyStarResource: "*", an ARN whose resource part is "*" ("arn:aws:s3:::*"), or a parameter
// whose default is one of those.
func (c *checker) anyStarResource(r any) bool {
	for _, v := range branches(r) {
		if name, arg, ok := intrinsic(v); ok && name == "Ref" {
			p, _ := arg.(string)
			v = at(c.t.Section("Parameters"), p, "Default")
		}
		s, ok := v.(string)
		if !ok {
			continue
		}
		if s == "*" {
			return true
		}
		if parts := strings.SplitN(s, ":", 6); len(parts) == 6 && parts[0] == "arn" && strings.Trim(parts[5], "*") == "" {
			return true
		}
	}
	return false
}

// readVerbs start the names of the actions that only read. An action pattern counts as a
// read when its literal part (before any wildcard) starts with one of them: "s3:Get*" reads,
// "s3:*" and "s3:G*" may write.
var readVerbs = []string{"get", "list", "describe", "batchget", "head", "lookup", "search", "query", "scan"}

func isRead(action string) bool {
	_, name, ok := strings.Cut(action, ":")
	if !ok {
		return false
	}
	literal := strings.ToLower(name)
	if i := strings.IndexAny(literal, "*?"); i >= 0 {
		literal = literal[:i]
	}
	for _, v := range readVerbs {
		if strings.HasPrefix(literal, v) {
			return true
		}
	}
	return false
}

// statementsOf returns a policy's statements (a list or a single statement), taking both
// branches of every Fn::If.
func statementsOf(doc any) []map[string]any {
	var out []map[string]any
	for _, s := range branches(at(doc, "Statement")) {
		if m, ok := s.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func statementName(where string, i int, st map[string]any) string {
	s := fmt.Sprintf("%s.Statement[%d]", where, i)
	if sid, ok := st["Sid"].(string); ok && sid != "" {
		s += " (" + sid + ")"
	}
	return s
}

// branches flattens a value that may be a list, a single item, or Fn::If choices between
// them, into the items that could be deployed. AWS::NoValue is no item.
func branches(v any) []any {
	if v == nil {
		return nil
	}
	if name, arg, ok := intrinsic(v); ok {
		switch name {
		case "Fn::If":
			if a, isList := arg.([]any); isList && len(a) == 3 {
				return append(branches(a[1]), branches(a[2])...)
			}
		case "Ref":
			if arg == "AWS::NoValue" {
				return nil
			}
		}
		return []any{v}
	}
	if l, ok := v.([]any); ok {
		var out []any
		for _, e := range l {
			out = append(out, branches(e)...)
		}
		return out
	}
	return []any{v}
}

// findTransform returns the path of the first Fn::Transform inside v, or "".
func findTransform(v any, path string) string {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			p := path + "." + k
			if k == "Fn::Transform" {
				return strings.TrimPrefix(p, ".")
			}
			if f := findTransform(x[k], p); f != "" {
				return f
			}
		}
	case []any:
		for i, e := range x {
			if f := findTransform(e, fmt.Sprintf("%s[%d]", path, i)); f != "" {
				return f
			}
		}
	}
	return ""
}

// compact renders a value of the template for a message: a string as is, anything else as
// JSON.
func compact(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
