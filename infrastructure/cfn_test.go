package infrastructure

// A small CloudFormation/SAM template model for the checks in checks_test.go.
//
// Why not goformation alone: goformation resolves intrinsic functions while it parses (a Ref
// becomes the parameter's default or nil, a GetAtt becomes nil), so the very things these
// checks inspect (which name a Ref points at, which ARN an IAM statement names) are gone by
// the time its typed structs exist; and its AWS::Serverless types lag behind SAM (no
// LoggingConfig, no EventBridgeRule RetryPolicy or DeadLetterConfig). So templates are read
// here with yaml.v3, turning the short-form tags (!Ref, !Sub, !GetAtt …) into their long
// forms and keeping them. goformation is still used, in schema_test.go, for what it is good
// at: strict property names and types of every AWS:: resource, from the CloudFormation
// resource specification.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lambda-pipeline/lambda-pipeline/shared/policy"
)

// tmpl is a template decoded to plain values (map[string]any, []any, string, int, float64,
// bool, nil) with every intrinsic function in long form: {"Ref": "X"}, {"Fn::GetAtt": ["A",
// "B"]}, {"Fn::Sub": "…"}, {"Condition": "C"}.
type tmpl struct {
	name string // file name, for messages
	root map[string]any
}

func loadTemplate(path string) (*tmpl, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseTemplate(filepath.Base(path), data)
}

// parseTemplate reads a template as the deployer's policy gate reads it (shared/policy), so
// the template checks and the gate see the same values.
func parseTemplate(name string, data []byte) (*tmpl, error) {
	t, err := policy.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &tmpl{name: name, root: t.Root}, nil
}

func (t *tmpl) section(name string) map[string]any {
	m, _ := t.root[name].(map[string]any)
	return m
}

// resourceIDs returns the logical IDs of the resources, sorted.
func (t *tmpl) resourceIDs() []string { return sortedKeys(t.section("Resources")) }

func (t *tmpl) resource(id string) (typ string, props map[string]any) {
	r, _ := t.section("Resources")[id].(map[string]any)
	typ, _ = r["Type"].(string)
	props, _ = r["Properties"].(map[string]any)
	return typ, props
}

// resourcesOfType returns the logical IDs of the resources of one type, sorted.
func (t *tmpl) resourcesOfType(typ string) []string {
	var ids []string
	for _, id := range t.resourceIDs() {
		if rt, _ := t.resource(id); rt == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

// clone returns a deep copy, for tests that break a template on purpose.
func (t *tmpl) clone() *tmpl {
	return &tmpl{name: t.name, root: deepCopy(t.root).(map[string]any)}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// at follows a path of map keys and list indexes ("Resources", "Bucket", "Properties", 0 …).
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// set replaces the value at a path that exists (tests use it to break templates).
func set(root any, value any, path ...any) {
	parent := at(root, path[:len(path)-1]...)
	switch k := path[len(path)-1].(type) {
	case string:
		parent.(map[string]any)[k] = value
	case int:
		parent.([]any)[k] = value
	}
}

// intrinsic reports whether v is a one-key map holding an intrinsic function, and which.
func intrinsic(v any) (name string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		_, isName := a.(string)
		if k == "Ref" || (k == "Condition" && isName) || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

// getAttArgs splits the argument of Fn::GetAtt ("A.B" or ["A", "B"]).
func getAttArgs(arg any) (res, attr string, ok bool) {
	switch a := arg.(type) {
	case string:
		res, attr, ok = strings.Cut(a, ".")
		return res, attr, ok
	case []any:
		if len(a) == 2 {
			res, ok1 := a[0].(string)
			attr, ok2 := a[1].(string)
			return res, attr, ok1 && ok2
		}
	}
	return "", "", false
}

// subVariables returns the ${…} names of a Fn::Sub string, without the ${!Literal} escapes.
func subVariables(s string) []string {
	var names []string
	for _, m := range subVarRE.FindAllStringSubmatch(s, -1) {
		if !strings.HasPrefix(m[1], "!") {
			names = append(names, m[1])
		}
	}
	return names
}

var subVarRE = regexp.MustCompile(`\$\{([^}]*)\}`)

var pseudoParameters = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true,
	"AWS::Partition": true, "AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true,
	"AWS::URLSuffix": true,
}

// ---------------------------------------------------------------------------------------------
// Evaluating a template with sample values: what a rule's pattern or an action's
// UserParameters become once deployed.

type sampleEnv struct {
	t       *tmpl
	params  map[string]any
	stack   string
	region  string
	account string
}

// noValue is what AWS::NoValue evaluates to; eval drops it from maps and lists.
var noValue = &struct{ noValue bool }{}

// newSampleEnv takes parameter defaults, then the given values.
func newSampleEnv(t *tmpl, stack string, params map[string]any) *sampleEnv {
	e := &sampleEnv{t: t, params: map[string]any{}, stack: stack, region: "eu-west-1", account: "123456789012"}
	for name, p := range t.section("Parameters") {
		if d, ok := p.(map[string]any)["Default"]; ok {
			e.params[name] = d
		}
	}
	for k, v := range params {
		e.params[k] = v
	}
	return e
}

func (e *sampleEnv) eval(v any) (any, error) {
	if name, arg, ok := intrinsic(v); ok {
		return e.intrinsic(name, arg)
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			r, err := e.eval(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, val := range x {
			r, err := e.eval(val)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

func (e *sampleEnv) evalString(v any) (string, error) {
	r, err := e.eval(v)
	if err != nil {
		return "", err
	}
	switch s := r.(type) {
	case string:
		return s, nil
	case int, float64, bool:
		return fmt.Sprint(s), nil
	}
	return "", fmt.Errorf("want a string, got %T", r)
}

func (e *sampleEnv) intrinsic(name string, arg any) (any, error) {
	switch name {
	case "Ref":
		s, _ := arg.(string)
		return e.ref(s)
	case "Fn::GetAtt":
		res, attr, ok := getAttArgs(arg)
		if !ok {
			return nil, fmt.Errorf("Fn::GetAtt: bad argument %v", arg)
		}
		return e.getAtt(res, attr)
	case "Fn::Sub":
		return e.sub(arg)
	case "Fn::Join":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Join: want [delimiter, list]")
		}
		list, err := e.eval(a[1])
		if err != nil {
			return nil, err
		}
		var parts []string
		for _, p := range list.([]any) {
			s, err := e.evalString(p)
			if err != nil {
				return nil, err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, fmt.Sprint(a[0])), nil
	case "Fn::If":
		a, _ := arg.([]any)
		if len(a) != 3 {
			return nil, fmt.Errorf("Fn::If: want [condition, then, else]")
		}
		c, _ := a[0].(string)
		ok, err := e.condition(c)
		if err != nil {
			return nil, err
		}
		if ok {
			return e.eval(a[1])
		}
		return e.eval(a[2])
	case "Condition":
		c, _ := arg.(string)
		return e.condition(c)
	case "Fn::Equals":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Equals: want two values")
		}
		x, err := e.evalString(a[0])
		if err != nil {
			return nil, err
		}
		y, err := e.evalString(a[1])
		return x == y, err
	case "Fn::Not", "Fn::And", "Fn::Or":
		a, _ := arg.([]any)
		var vals []bool
		for _, c := range a {
			r, err := e.eval(c)
			if err != nil {
				return nil, err
			}
			b, ok := r.(bool)
			if !ok {
				return nil, fmt.Errorf("%s: want conditions", name)
			}
			vals = append(vals, b)
		}
		switch name {
		case "Fn::Not":
			if len(vals) != 1 {
				return nil, fmt.Errorf("Fn::Not: want one condition")
			}
			return !vals[0], nil
		case "Fn::And":
			for _, b := range vals {
				if !b {
					return false, nil
				}
			}
			return true, nil
		default:
			for _, b := range vals {
				if b {
					return true, nil
				}
			}
			return false, nil
		}
	case "Fn::Select":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Select: want [index, list]")
		}
		i, err := e.evalString(a[0])
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(i)
		if err != nil {
			return nil, err
		}
		list, err := e.eval(a[1])
		if err != nil {
			return nil, err
		}
		l, ok := list.([]any)
		if !ok || n < 0 || n >= len(l) {
			return nil, fmt.Errorf("Fn::Select: index %d out of range", n)
		}
		return l[n], nil
	case "Fn::Split":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Split: want [delimiter, string]")
		}
		s, err := e.evalString(a[1])
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(s, fmt.Sprint(a[0])) {
			out = append(out, p)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: not evaluated by these tests", name)
}

func (e *sampleEnv) ref(name string) (any, error) {
	switch name {
	case "AWS::AccountId":
		return e.account, nil
	case "AWS::Region":
		return e.region, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::StackName":
		return e.stack, nil
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/0f1e2d3c-4b5a-11ef-9c8d-0a1b2c3d4e5f", e.region, e.account, e.stack), nil
	case "AWS::NoValue":
		return noValue, nil
	}
	if _, ok := e.t.section("Parameters")[name]; ok {
		v, ok := e.params[name]
		if !ok {
			return nil, fmt.Errorf("parameter %s has no default and no sample value", name)
		}
		return v, nil
	}
	if _, ok := e.t.section("Resources")[name]; ok {
		return e.physical(name, "")
	}
	return nil, fmt.Errorf("Ref %s: no such parameter or resource", name)
}

func (e *sampleEnv) getAtt(res, attr string) (any, error) {
	if _, ok := e.t.section("Resources")[res]; !ok {
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: no such resource", res, attr)
	}
	return e.physical(res, attr)
}

func (e *sampleEnv) sub(arg any) (any, error) {
	var s string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		s = a
	case []any:
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Sub: want a string or [string, variables]")
		}
		s, _ = a[0].(string)
		m, _ := a[1].(map[string]any)
		for k, v := range m {
			vars[k] = v
		}
	default:
		return nil, fmt.Errorf("Fn::Sub: bad argument")
	}
	var firstErr error
	out := subVarRE.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var v any = map[string]any{"Ref": name}
		if val, ok := vars[name]; ok {
			v = val
		} else if res, attr, ok := strings.Cut(name, "."); ok {
			v = map[string]any{"Fn::GetAtt": []any{res, attr}}
		}
		r, err := e.evalString(v)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return r
	})
	return out, firstErr
}

func (e *sampleEnv) condition(name string) (bool, error) {
	c, ok := e.t.section("Conditions")[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	r, err := e.eval(c)
	if err != nil {
		return false, err
	}
	b, ok := r.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s is not a boolean", name)
	}
	return b, nil
}

// physical returns what a resource's Ref (attr "") or attribute would be once deployed: its
// explicit name when the template sets one, else a name like CloudFormation generates.
func (e *sampleEnv) physical(id, attr string) (any, error) {
	typ, props := e.t.resource(id)
	name := e.stack + "-" + id + "-1A2B3C4D5E6F"
	if prop, ok := nameProperty[typ]; ok {
		if v, ok := props[prop]; ok {
			s, err := e.evalString(v)
			if err != nil {
				return nil, err
			}
			name = s
		}
	}
	if typ == "AWS::S3::Bucket" {
		name = strings.ToLower(name)
	}
	r, a := e.region, e.account
	switch attr {
	case "":
		switch typ {
		case "AWS::SNS::Topic":
			return fmt.Sprintf("arn:aws:sns:%s:%s:%s", r, a, name), nil
		case "AWS::SQS::Queue":
			return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", r, a, name), nil
		case "AWS::IAM::ManagedPolicy":
			return fmt.Sprintf("arn:aws:iam::%s:policy%s%s", a, e.iamPath(props), name), nil
		}
		return name, nil
	case "Arn":
		switch typ {
		case "AWS::CodeCommit::Repository":
			return fmt.Sprintf("arn:aws:codecommit:%s:%s:%s", r, a, name), nil
		case "AWS::Serverless::Function", "AWS::Lambda::Function":
			return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", r, a, name), nil
		case "AWS::IAM::Role":
			return fmt.Sprintf("arn:aws:iam::%s:role%s%s", a, e.iamPath(props), name), nil
		case "AWS::S3::Bucket":
			return "arn:aws:s3:::" + name, nil
		case "AWS::DynamoDB::Table":
			return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", r, a, name), nil
		case "AWS::SQS::Queue":
			return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", r, a, name), nil
		case "AWS::Logs::LogGroup":
			return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", r, a, name), nil
		case "AWS::Events::Rule":
			return fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", r, a, name), nil
		case "AWS::CodeBuild::Project":
			return fmt.Sprintf("arn:aws:codebuild:%s:%s:project/%s", r, a, name), nil
		}
	case "Name", "QueueName", "TopicName":
		return name, nil
	case "CloneUrlHttp":
		return fmt.Sprintf("https://git-codecommit.%s.amazonaws.com/v1/repos/%s", r, name), nil
	case "CloneUrlSsh":
		return fmt.Sprintf("ssh://git-codecommit.%s.amazonaws.com/v1/repos/%s", r, name), nil
	}
	return id + "." + attr, nil
}

// iamPath is a role's or policy's Path ("/" when it has none).
func (e *sampleEnv) iamPath(props map[string]any) string {
	if p, ok := props["Path"]; ok {
		if s, err := e.evalString(p); err == nil {
			return s
		}
	}
	return "/"
}

// The property that names a resource, for the types whose templates here name them.
var nameProperty = map[string]string{
	"AWS::CodeCommit::Repository": "RepositoryName",
	"AWS::Serverless::Function":   "FunctionName",
	"AWS::Lambda::Function":       "FunctionName",
	"AWS::Logs::LogGroup":         "LogGroupName",
	"AWS::CodeBuild::Project":     "Name",
	"AWS::CodePipeline::Pipeline": "Name",
	"AWS::S3::Bucket":             "BucketName",
	"AWS::DynamoDB::Table":        "TableName",
	"AWS::SQS::Queue":             "QueueName",
	"AWS::SNS::Topic":             "TopicName",
	"AWS::Events::Rule":           "Name",
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
