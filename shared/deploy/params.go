package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// UserParameters is the JSON object that a deploy action of the pipeline hands to the deployer in
// the CodePipeline job (data.actionConfiguration.configuration.UserParameters). The two deploy
// actions of infrastructure/pipeline.yml write it like this:
//
//	{"stackName": "my-lambda-app",
//	 "templatePath": "SourceArtifact::infrastructure/lambda.yml",
//	 "capabilities": ["CAPABILITY_IAM"],
//	 "roleArn": "arn:aws:iam::123456789012:role/my-lambda-control-plane-AppStackRole-1A2B3C",
//	 "parameterOverrides": {
//	   "ArtifactsBucket": {"artifact": "BuildOutput", "attr": "bucket"},
//	   "ArtifactKey":     {"artifact": "BuildOutput", "attr": "key"}}}
//
// Keys are matched exactly (case included); an unknown key is an error, so a typo fails the
// action with a ConfigurationError instead of being ignored.
type UserParameters struct {
	// StackName is the stack to create or update (required).
	StackName string `json:"stackName"`
	// TemplatePath is "ArtifactName::path/inside/the/zip" (required): the template is read
	// from that input artifact of the job.
	TemplatePath string `json:"templatePath"`
	// Capabilities are acknowledged on the change set; each is one of CAPABILITY_IAM,
	// CAPABILITY_NAMED_IAM and CAPABILITY_AUTO_EXPAND.
	Capabilities []string `json:"capabilities,omitempty"`
	// RoleARN is the CloudFormation service role the change set runs with (CreateChangeSet
	// RoleARN). Empty means the deployer's own credentials, which on purpose cannot create the
	// stacks' resources: the templates always set it.
	RoleARN string `json:"roleArn,omitempty"`
	// ParameterOverrides sets template parameters. For each parameter the new template
	// declares, the deployer passes, in this order of preference:
	//  1. the override given here;
	//  2. nothing, when the template gives the parameter a Default (CloudFormation uses it);
	//  3. UsePreviousValue, when the stack already has the parameter;
	//  4. else the deploy fails as misconfigured, naming the parameter.
	// So the pipeline stack, whose parameters have no defaults, keeps the values the control
	// plane gave it when it updates itself, and a default edited in infrastructure/lambda.yml
	// takes effect on the next deploy.
	ParameterOverrides map[string]ParameterOverride `json:"parameterOverrides,omitempty"`
	// Pipeline and Execution name the pipeline execution the deploy belongs to (Execution is
	// "#{codepipeline.PipelineExecutionId}", which CodePipeline resolves): a deploy that widens
	// IAM waits for `lp approve EXECUTION`, keyed by them. Without them such a deploy fails.
	Pipeline  string `json:"pipeline,omitempty"`
	Execution string `json:"execution,omitempty"`
}

// ParameterOverride is one value of UserParameters.ParameterOverrides: either a literal string
// (JSON string) or the S3 location of one of the job's input artifacts (JSON object
// {"artifact": "BuildOutput", "attr": "bucket"|"key"}), the deployer's equivalent of
// CloudFormation's Fn::GetArtifactAtt.
type ParameterOverride struct {
	Literal string
	// From is set when the value comes from an input artifact; Literal is then empty.
	From *ArtifactAttribute
}

// ArtifactAttribute names an input artifact of the job and which part of its S3 location to use.
type ArtifactAttribute struct {
	Artifact string `json:"artifact"`
	Attr     string `json:"attr"`
}

// Values of ArtifactAttribute.Attr.
const (
	AttrBucket = "bucket" // the artifact's S3 bucket name
	AttrKey    = "key"    // the artifact's S3 object key (the ZIP)
)

// Capabilities that a deploy may acknowledge (CloudFormation's full set).
var paramsCapabilities = map[string]bool{
	"CAPABILITY_IAM":         true,
	"CAPABILITY_NAMED_IAM":   true,
	"CAPABILITY_AUTO_EXPAND": true,
}

var (
	// CloudFormation stack names: 1–128 characters, a letter first.
	paramsStackNameRE = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]*$`)
	// CodePipeline artifact names.
	paramsArtifactNameRE = regexp.MustCompile(`^[a-zA-Z0-9_\-]{1,100}$`)
	// CloudFormation parameter (logical) names.
	paramsParameterNameRE = regexp.MustCompile(`^[a-zA-Z0-9]{1,255}$`)
	// CodePipeline pipeline names, and execution ids (UUIDs).
	paramsPipelineNameRE = regexp.MustCompile(`^[A-Za-z0-9.@\-_]{1,100}$`)
	paramsExecutionIDRE  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	paramsRoleARNRE      = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
)

const (
	paramsMaxStackName = 128
	// CodePipeline's limit on one action configuration value, UserParameters included.
	MaxUserParameters = 1000
	// CloudFormation's limit on one parameter value.
	paramsMaxParameterValue = 4096
)

// ParseUserParameters decodes and validates the UserParameters string of a deploy job. Every
// error means the action is misconfigured (report it as a ConfigurationError; retrying cannot
// help) and names the offending field.
func ParseUserParameters(s string) (UserParameters, error) {
	var p UserParameters
	if strings.TrimSpace(s) == "" {
		return p, errors.New("user parameters: empty; want a JSON object with stackName and templatePath")
	}
	if len(s) > MaxUserParameters {
		return p, fmt.Errorf("user parameters: %d characters, CodePipeline allows %d", len(s), MaxUserParameters)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &fields); err != nil {
		return p, fmt.Errorf("user parameters: not a JSON object: %w", err)
	}
	if err := paramsExactKeys("user parameters", fields, "stackName", "templatePath", "capabilities", "roleArn", "parameterOverrides", "pipeline", "execution"); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return UserParameters{}, fmt.Errorf("user parameters: %w", err)
	}
	// Absent and empty mean the same; keep one form so values compare equal.
	if len(p.Capabilities) == 0 {
		p.Capabilities = nil
	}
	if len(p.ParameterOverrides) == 0 {
		p.ParameterOverrides = nil
	}
	if err := p.Validate(); err != nil {
		return UserParameters{}, err
	}
	return p, nil
}

// Validate reports the first field that breaks the contract of UserParameters.
func (p UserParameters) Validate() error {
	if err := ValidateStackName(p.StackName); err != nil {
		return fmt.Errorf("user parameters: stackName: %w", err)
	}
	if _, _, err := SplitTemplatePath(p.TemplatePath); err != nil {
		return fmt.Errorf("user parameters: templatePath: %w", err)
	}
	seen := map[string]bool{}
	for _, c := range p.Capabilities {
		if !paramsCapabilities[c] {
			return fmt.Errorf("user parameters: capabilities: %q is not one of CAPABILITY_IAM, CAPABILITY_NAMED_IAM, CAPABILITY_AUTO_EXPAND", c)
		}
		if seen[c] {
			return fmt.Errorf("user parameters: capabilities: %q listed twice", c)
		}
		seen[c] = true
	}
	if p.Pipeline != "" && !paramsPipelineNameRE.MatchString(p.Pipeline) {
		return fmt.Errorf("user parameters: pipeline: %q is not a CodePipeline pipeline name", p.Pipeline)
	}
	if p.Execution != "" && !paramsExecutionIDRE.MatchString(p.Execution) {
		return fmt.Errorf("user parameters: execution: %q is not a pipeline execution id (want \"#{codepipeline.PipelineExecutionId}\")", p.Execution)
	}
	if (p.Pipeline == "") != (p.Execution == "") {
		return errors.New("user parameters: pipeline and execution go together: give both or neither")
	}
	if p.RoleARN != "" && !paramsRoleARNRE.MatchString(p.RoleARN) {
		return fmt.Errorf("user parameters: roleArn: %q is not an IAM role ARN", p.RoleARN)
	}
	for _, name := range paramsSortedKeys(p.ParameterOverrides) {
		if !paramsParameterNameRE.MatchString(name) {
			return fmt.Errorf("user parameters: parameterOverrides: %q is not a CloudFormation parameter name", name)
		}
		if err := p.ParameterOverrides[name].validate(); err != nil {
			return fmt.Errorf("user parameters: parameterOverrides.%s: %w", name, err)
		}
	}
	return nil
}

// Template returns the artifact name and the path inside it of TemplatePath. It assumes a
// validated value; for an invalid one it returns empty strings.
func (p UserParameters) Template() (artifact, file string) {
	artifact, file, _ = SplitTemplatePath(p.TemplatePath)
	return artifact, file
}

// ResolveOverrides turns ParameterOverrides into literal values. location returns the S3
// bucket and key of the job's input artifact with the given name, and false when the job has
// no such input artifact (a configuration error, reported with the artifact's name).
func (p UserParameters) ResolveOverrides(location func(artifact string) (bucket, key string, ok bool)) (map[string]string, error) {
	out := make(map[string]string, len(p.ParameterOverrides))
	for _, name := range paramsSortedKeys(p.ParameterOverrides) {
		v := p.ParameterOverrides[name]
		if v.From == nil {
			out[name] = v.Literal
			continue
		}
		bucket, key, ok := location(v.From.Artifact)
		if !ok {
			return nil, fmt.Errorf("parameter %s: input artifact %q is not an input of this action", name, v.From.Artifact)
		}
		switch v.From.Attr {
		case AttrBucket:
			out[name] = bucket
		case AttrKey:
			out[name] = key
		default:
			return nil, fmt.Errorf("parameter %s: unknown artifact attribute %q", name, v.From.Attr)
		}
	}
	return out, nil
}

// ValidateStackName checks CloudFormation's rule for stack names: 1–128 characters, letters,
// digits and hyphens, starting with a letter.
func ValidateStackName(name string) error {
	switch {
	case name == "":
		return errors.New("required")
	case len(name) > paramsMaxStackName:
		return fmt.Errorf("%d characters, at most %d", len(name), paramsMaxStackName)
	case !paramsStackNameRE.MatchString(name):
		return fmt.Errorf("%q must start with a letter and hold only letters, digits and hyphens", name)
	}
	return nil
}

// SplitTemplatePath splits "ArtifactName::path/in/zip" into its two parts. The path is relative
// to the root of the artifact's ZIP, uses forward slashes and may not leave it.
func SplitTemplatePath(s string) (artifact, file string, err error) {
	artifact, file, found := strings.Cut(s, "::")
	switch {
	case s == "":
		return "", "", errors.New("required, as ArtifactName::path/to/template.yml")
	case !found:
		return "", "", fmt.Errorf("%q: want ArtifactName::path/to/template.yml", s)
	case !paramsArtifactNameRE.MatchString(artifact):
		return "", "", fmt.Errorf("%q: artifact name %q is not a CodePipeline artifact name", s, artifact)
	case file == "" || strings.HasPrefix(file, "/") || strings.Contains(file, `\`) ||
		path.Clean(file) != file || file == ".." || strings.HasPrefix(file, "../"):
		return "", "", fmt.Errorf("%q: path %q must be a clean relative path inside the artifact", s, file)
	}
	return artifact, file, nil
}

// UnmarshalJSON accepts a JSON string (a literal) or an {"artifact", "attr"} object.
func (v *ParameterOverride) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		*v = ParameterOverride{}
		return json.Unmarshal(b, &v.Literal)
	case len(b) > 0 && b[0] == '{':
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(b, &fields); err != nil {
			return err
		}
		if err := paramsExactKeys("artifact reference", fields, "artifact", "attr"); err != nil {
			return err
		}
		var a ArtifactAttribute
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		*v = ParameterOverride{From: &a}
		return nil
	default:
		return fmt.Errorf("want a string or {\"artifact\": ..., \"attr\": \"bucket\"|\"key\"}, got %s", b)
	}
}

// MarshalJSON writes the form that UnmarshalJSON reads.
func (v ParameterOverride) MarshalJSON() ([]byte, error) {
	if v.From != nil {
		return json.Marshal(v.From)
	}
	return json.Marshal(v.Literal)
}

func (v ParameterOverride) validate() error {
	if v.From == nil {
		if len(v.Literal) > paramsMaxParameterValue {
			return fmt.Errorf("literal of %d bytes, CloudFormation allows %d", len(v.Literal), paramsMaxParameterValue)
		}
		return nil
	}
	if !paramsArtifactNameRE.MatchString(v.From.Artifact) {
		return fmt.Errorf("artifact %q is not a CodePipeline artifact name", v.From.Artifact)
	}
	if v.From.Attr != AttrBucket && v.From.Attr != AttrKey {
		return fmt.Errorf("attr %q: want %q or %q", v.From.Attr, AttrBucket, AttrKey)
	}
	return nil
}

// PipelineStackProperties are the ResourceProperties of the control plane's Custom::PipelineStack
// resource (template.yaml), which the deployer answers by creating, updating or deleting the
// pipeline stack from the template embedded in it (infrastructure.PipelineTemplate).
//
// The properties are flat: StackName and RoleARN steer the deploy, ServiceToken and
// ServiceTimeout belong to CloudFormation, and every other property is a parameter of
// infrastructure/pipeline.yml, passed as is (CloudFormation hands custom resources every
// scalar as a string).
type PipelineStackProperties struct {
	StackName  string
	RoleARN    string
	Parameters map[string]string
}

// Reserved keys of the PipelineStack resource's properties; all others are stack parameters.
const (
	PropServiceToken   = "ServiceToken"
	PropServiceTimeout = "ServiceTimeout"
	PropStackName      = "StackName"
	PropRoleARN        = "RoleARN"
)

// ParsePipelineStackProperties validates the ResourceProperties of a Custom::PipelineStack
// request. Every error is the template's fault: answer FAILED with it as the reason.
func ParsePipelineStackProperties(props map[string]any) (PipelineStackProperties, error) {
	out := PipelineStackProperties{Parameters: map[string]string{}}
	for _, k := range paramsSortedKeys(props) {
		v := props[k]
		switch k {
		case PropServiceToken, PropServiceTimeout:
			continue
		}
		s, ok := v.(string)
		if !ok {
			return PipelineStackProperties{}, fmt.Errorf("pipeline stack property %s: want a string, got %T", k, v)
		}
		switch k {
		case PropStackName:
			out.StackName = s
		case PropRoleARN:
			out.RoleARN = s
		default:
			if !paramsParameterNameRE.MatchString(k) {
				return PipelineStackProperties{}, fmt.Errorf("pipeline stack property %q is not a CloudFormation parameter name", k)
			}
			if len(s) > paramsMaxParameterValue {
				return PipelineStackProperties{}, fmt.Errorf("pipeline stack property %s: %d bytes, CloudFormation allows %d", k, len(s), paramsMaxParameterValue)
			}
			out.Parameters[k] = s
		}
	}
	if err := ValidateStackName(out.StackName); err != nil {
		return PipelineStackProperties{}, fmt.Errorf("pipeline stack property StackName: %w", err)
	}
	if !paramsRoleARNRE.MatchString(out.RoleARN) {
		return PipelineStackProperties{}, fmt.Errorf("pipeline stack property RoleARN: %q is not an IAM role ARN", out.RoleARN)
	}
	return out, nil
}

// paramsExactKeys rejects keys outside the allowed set. encoding/json alone would accept them in any
// letter case, or ignore them.
func paramsExactKeys(what string, fields map[string]json.RawMessage, allowed ...string) error {
	for _, k := range paramsSortedKeys(fields) {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("%s: unknown key %q (known: %s)", what, k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func paramsSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
