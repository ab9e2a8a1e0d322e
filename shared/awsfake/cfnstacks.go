package awsfake

import (
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// CloudFormation operations of the stack lifecycle, which the fake answers besides
// DescribeStackEvents.
const (
	OpCreateChangeSet        = "CreateChangeSet"
	OpDescribeChangeSet      = "DescribeChangeSet"
	OpExecuteChangeSet       = "ExecuteChangeSet"
	OpDeleteChangeSet        = "DeleteChangeSet"
	OpDescribeStacks         = "DescribeStacks"
	OpDeleteStack            = "DeleteStack"
	OpContinueUpdateRollback = "ContinueUpdateRollback"
	OpGetTemplateSummary     = "GetTemplateSummary"
	OpGetTemplate            = "GetTemplate"
)

// Texts CloudFormation answers with.
const (
	// NoChangesReason and NoUpdatesReason are the two wordings of the StatusReason of a change
	// set that would change nothing (the AWS CLI's "aws cloudformation deploy" takes both as
	// "no changes": "deploy", https://docs.aws.amazon.com/cli/latest/reference/cloudformation/deploy/).
	NoChangesReason = "The submitted information didn't contain changes. Submit different information to create a change set."
	NoUpdatesReason = "No updates are to be performed."
	// ResourceCreationCancelled and ResourceUpdateCancelled are the cascade noise on the
	// resources CloudFormation stopped because another one failed.
	ResourceCreationCancelled = "Resource creation cancelled"
	ResourceUpdateCancelled   = "Resource update cancelled"
	// MaxTemplateBody is CloudFormation's limit on TemplateBody, in bytes.
	MaxTemplateBody = 51200
)

const stackType = "AWS::CloudFormation::Stack"

// The lifecycle of a stack in the fake.
//
// Operations start the way CloudFormation starts them (ExecuteChangeSet puts the stack in
// CREATE_IN_PROGRESS or UPDATE_IN_PROGRESS at once) and then unfold on the fake's clock
// (cfntime.go): each resource in dependency order, then the stack's end, through the states of
// the real sequences ("Stack status codes",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html):
//
//	create           REVIEW_IN_PROGRESS → CREATE_IN_PROGRESS → CREATE_COMPLETE
//	failed create    CREATE_IN_PROGRESS → ROLLBACK_IN_PROGRESS → ROLLBACK_COMPLETE | ROLLBACK_FAILED
//	update           UPDATE_IN_PROGRESS → UPDATE_COMPLETE_CLEANUP_IN_PROGRESS → UPDATE_COMPLETE
//	failed update    UPDATE_IN_PROGRESS → UPDATE_ROLLBACK_IN_PROGRESS →
//	                 UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS → UPDATE_ROLLBACK_COMPLETE
//	                 (or UPDATE_ROLLBACK_IN_PROGRESS → UPDATE_ROLLBACK_FAILED)
//	continue         UPDATE_ROLLBACK_FAILED → UPDATE_ROLLBACK_IN_PROGRESS → … → UPDATE_ROLLBACK_COMPLETE
//	delete           DELETE_IN_PROGRESS → DELETE_COMPLETE | DELETE_FAILED
//
// A change set likewise moves on with time: CREATE_PENDING → CREATE_IN_PROGRESS →
// CREATE_COMPLETE (ExecutionStatus AVAILABLE), or FAILED (UNAVAILABLE) with the "no changes"
// reason (SetNoChangesReason) when its template and parameters equal the stack's. Every state
// change adds the stack events CloudFormation would list, with the operation's
// ClientRequestToken. An update touches only the resources it creates, changes (their
// definition, or a parameter they read) or deletes.

// DeployFailure scripts how the next change set execution of a stack fails: Resource fails
// with Reason, the resources beside it are cancelled (cascade noise), and the stack rolls back.
// With RollbackResource set, the rollback fails too, at that resource (ROLLBACK_FAILED after a
// create, UPDATE_ROLLBACK_FAILED after an update).
type DeployFailure struct {
	Resource, Reason                 string
	RollbackResource, RollbackReason string
}

// ResourceFailure scripts a delete or a continued rollback that fails at Resource.
type ResourceFailure struct{ Resource, Reason string }

// StackState is what the fake holds about a stack, for assertions.
type StackState struct {
	StackID, Name string
	Status        string
	StatusReason  string
	Deleted       bool
	Template      string
	Parameters    map[string]string
	Capabilities  []string
	RoleARN       string
	Outputs       map[string]string
	Tags          map[string]string
	ChangeSets    []ChangeSetState // in creation order
}

// ChangeSetState is what the fake holds about a change set.
type ChangeSetState struct {
	Name, ID, Type            string
	Status, ExecutionStatus   string
	StatusReason              string
	ClientToken               string
	ExecuteClientRequestToken string
	Parameters                map[string]string // the values it resolved
	Capabilities              []string
	RoleARN                   string
}

// cfnLife holds the scripts of future failures (by stack name) and the fake's choices of
// wording.
type cfnLife struct {
	noChanges        string
	deployFailures   map[string][]DeployFailure
	deleteFailures   map[string][]ResourceFailure
	continueFailures map[string][]ResourceFailure
	changeSetFails   map[string][]string
	outputs          map[string]map[string]string
	protected        map[string]bool // stack names with termination protection
}

func newCFNLife() cfnLife {
	return cfnLife{
		noChanges:        NoChangesReason,
		deployFailures:   map[string][]DeployFailure{},
		deleteFailures:   map[string][]ResourceFailure{},
		continueFailures: map[string][]ResourceFailure{},
		changeSetFails:   map[string][]string{},
		outputs:          map[string]map[string]string{},
		protected:        map[string]bool{},
	}
}

// fakeResource is a resource of a template: its type, what it refers to and depends on
// (cfntime.go), and its definition (a changed definition is an update).
type fakeResource struct {
	id, typ string
	refs    map[string]bool // names it refers to (Ref, Fn::GetAtt, Fn::Sub, DependsOn)
	deps    []string        // the resources it waits for
	params  []string        // the parameters it reads
	def     string          // its definition, canonical YAML
}

type stackState struct {
	status, reason   string
	created, updated time.Time
	deletedAt        time.Time
	description      string
	template         string
	params           map[string]string
	capabilities     []string
	roleARN          string
	resources        []fakeResource
	outputs          map[string]string
	tags             map[string]string // set by the change sets that name tags
	changeSets       []*fakeChangeSet
	pending          []transition
	tokens           map[string]bool // ClientRequestTokens used on this stack
}

// transition is what happens to a stack at a time: its events, a new status (none when
// status is ""), and what reaching it changes.
type transition struct {
	at             time.Time
	status, reason string
	token          string
	events         []StackEvent
	apply          func()
}

type fakeChangeSet struct {
	id, name, typ              string
	status, execStatus, reason string
	clientToken, execToken     string
	template                   string
	params                     map[string]string
	capabilities               []string
	roleARN                    string
	tags                       map[string]string // nil: the change set names no tags (the stack keeps its own)
	created                    time.Time
	pending                    []csStep
}

type csStep struct {
	at                         time.Time
	status, execStatus, reason string
}

// FailNextDeploy makes the next change set execution of the stack (by name) fail as d says.
// Calls queue.
func (f *CloudFormation) FailNextDeploy(stack string, d DeployFailure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life.deployFailures[stack] = append(f.life.deployFailures[stack], d)
}

// FailNextDelete makes the next DeleteStack of the stack end in DELETE_FAILED at resource.
func (f *CloudFormation) FailNextDelete(stack, resource, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life.deleteFailures[stack] = append(f.life.deleteFailures[stack], ResourceFailure{resource, reason})
}

// FailNextContinue makes the next ContinueUpdateRollback of the stack end in
// UPDATE_ROLLBACK_FAILED again, at resource.
func (f *CloudFormation) FailNextContinue(stack, resource, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life.continueFailures[stack] = append(f.life.continueFailures[stack], ResourceFailure{resource, reason})
}

// FailNextChangeSet makes the next change set created for the stack end FAILED with reason
// (a template CloudFormation rejects only while creating the change set).
func (f *CloudFormation) FailNextChangeSet(stack, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life.changeSetFails[stack] = append(f.life.changeSetFails[stack], reason)
}

// ProtectFromDeletion turns on the stack's termination protection: DeleteStack of it is refused
// with CloudFormation's ValidationError until the stack is gone.
func (f *CloudFormation) ProtectFromDeletion(stack string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life.protected[stack] = true
}

// SetOutputs sets the values of the stack's outputs once a deploy completes. Without it an
// output declared by the template has the value "<stack>-<OutputKey>".
func (f *CloudFormation) SetOutputs(stack string, outputs map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life.outputs[stack] = maps.Clone(outputs)
}

// Stack returns what the fake holds about the stack (live by name, or any by stack id).
func (f *CloudFormation) Stack(stack string) (StackState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.catchUp()
	s := f.find(stack)
	if s == nil {
		return StackState{}, false
	}
	st := f.stateOf(s)
	out := StackState{StackID: s.id, Name: s.name, Status: st.status, StatusReason: st.reason, Deleted: s.deleted,
		Template: st.template, Parameters: maps.Clone(st.params), Capabilities: slices.Clone(st.capabilities),
		RoleARN: st.roleARN, Outputs: maps.Clone(st.outputs), Tags: maps.Clone(st.tags)}
	for _, cs := range st.changeSets {
		out.ChangeSets = append(out.ChangeSets, ChangeSetState{Name: cs.name, ID: cs.id, Type: cs.typ, Status: cs.status,
			ExecutionStatus: cs.execStatus, StatusReason: cs.reason, ClientToken: cs.clientToken,
			ExecuteClientRequestToken: cs.execToken, Parameters: maps.Clone(cs.params),
			Capabilities: slices.Clone(cs.capabilities), RoleARN: cs.roleARN})
	}
	return out, true
}

// Events returns the stack's events, oldest first.
func (f *CloudFormation) Events(stack string) []StackEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.catchUp()
	if s := f.find(stack); s != nil {
		return slices.Clone(s.events)
	}
	return nil
}

// queryOps are the operations the fake answers. Each runs with the form of the request.
func (f *CloudFormation) queryOps() map[string]func(url.Values) (any, *Error) {
	return map[string]func(url.Values) (any, *Error){
		OpDescribeStackEvents:    f.describeStackEvents,
		OpCreateChangeSet:        f.createChangeSet,
		OpDescribeChangeSet:      f.describeChangeSet,
		OpExecuteChangeSet:       f.executeChangeSet,
		OpDeleteChangeSet:        f.deleteChangeSet,
		OpDescribeStacks:         f.describeStacks,
		OpDeleteStack:            f.deleteStack,
		OpContinueUpdateRollback: f.continueUpdateRollback,
		OpGetTemplateSummary:     f.getTemplateSummary,
		OpGetTemplate:            f.getTemplate,
	}
}

// stateOf returns the lifecycle state of s, making one for a scripted stack: its status is
// that of its latest stack-level event (CREATE_COMPLETE when it has none). The caller holds
// f.mu.
func (f *CloudFormation) stateOf(s *fakeStack) *stackState {
	if s.state != nil {
		return s.state
	}
	st := &stackState{status: "CREATE_COMPLETE", tokens: map[string]bool{}, params: map[string]string{}}
	for _, ev := range s.events {
		if st.created.IsZero() || ev.Timestamp.Before(st.created) {
			st.created = ev.Timestamp
		}
		if ev.ResourceType == stackType && ev.LogicalResourceID == s.name {
			st.status, st.reason = ev.Status, ev.Reason
		}
	}
	if st.created.IsZero() {
		st.created = f.now()
	}
	if s.deleted {
		st.status = "DELETE_COMPLETE"
	}
	s.state = st
	return st
}

// liveStack finds a stack that is not deleted, by name or stack id. The caller holds f.mu.
func (f *CloudFormation) liveStack(name string) *fakeStack {
	s := f.find(name)
	if s == nil || s.deleted {
		return nil
	}
	return s
}

// emit appends events to s, stamping each with at and the token. The caller holds f.mu.
func (f *CloudFormation) emit(s *fakeStack, token string, at time.Time, events ...StackEvent) {
	for _, ev := range events {
		ev.Timestamp = at
		ev.ClientRequestToken = token
		s.events = append(s.events, ev)
	}
}

// reach moves s into t: status, events, effects. The caller holds f.mu.
func (f *CloudFormation) reach(s *fakeStack, t transition) {
	st := f.stateOf(s)
	if t.status != "" {
		st.status, st.reason = t.status, t.reason
		st.updated = t.at
	}
	f.emit(s, t.token, t.at, t.events...)
	if t.apply != nil {
		t.apply()
	}
}

// start schedules an operation's transitions and applies those due now. The caller holds f.mu.
func (f *CloudFormation) start(s *fakeStack, p *plan) {
	st := f.stateOf(s)
	st.pending = p.ordered()
	f.catchUp()
}

func stackEvent(s *fakeStack, status, reason string) StackEvent {
	return StackEvent{LogicalResourceID: s.name, ResourceType: stackType, Status: status, Reason: reason}
}

// busy reports whether an operation is under way on a stack in status (REVIEW_IN_PROGRESS is
// a stack waiting for its first change set, not an operation).
func busy(status string) bool {
	return strings.HasSuffix(status, "_IN_PROGRESS") && status != "REVIEW_IN_PROGRESS"
}

// updatable are the states a stack can be updated from.
var updatable = []string{"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}

var (
	changeSetNamePattern = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]{0,127}$`)
	cfnStackNamePattern  = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]{0,127}$`)
	requestTokenPattern  = regexp.MustCompile(`^[a-zA-Z0-9][-a-zA-Z0-9]{0,127}$`)
)

func cfnValidation(format string, args ...any) *Error {
	return clientError("ValidationError", format, args...)
}

// formList reads an awsQuery list: Name.member.1, Name.member.2, …
func formList(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[name+".member."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// formTags reads Tags.member.N.Key / .Value; nil when the request names no tags.
func formTags(form url.Values) map[string]string {
	var out map[string]string
	for i := 1; ; i++ {
		p := "Tags.member." + strconv.Itoa(i) + "."
		key, ok := form[p+"Key"]
		if !ok {
			return out
		}
		if out == nil {
			out = map[string]string{}
		}
		out[key[0]] = form.Get(p + "Value")
	}
}

type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type paramIn struct {
	key, value  string
	usePrevious bool
}

func formParameters(form url.Values) []paramIn {
	var out []paramIn
	for i := 1; ; i++ {
		p := "Parameters.member." + strconv.Itoa(i) + "."
		key, ok := form[p+"ParameterKey"]
		if !ok {
			return out
		}
		out = append(out, paramIn{key: key[0], value: form.Get(p + "ParameterValue"), usePrevious: form.Get(p+"UsePreviousValue") == "true"})
	}
}

// fakeTemplate is what the fake reads from a template: enough to validate parameters and
// capabilities and to name the resources in events.
type fakeTemplate struct {
	description string
	params      []templateParam
	resources   []fakeResource
	outputs     []string
}

type templateParam struct {
	name, typ, def, description string
	hasDefault, noEcho          bool
}

var errNoResources = errors.New("no resources")

// parseTemplate reads a JSON or YAML template (short-form intrinsics such as !Ref included).
func parseTemplate(body string) (fakeTemplate, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(body), &doc); err != nil {
		return fakeTemplate{}, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fakeTemplate{}, errors.New("not a template object")
	}
	var t fakeTemplate
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		switch key {
		case "Description":
			t.description = val.Value
		case "Parameters":
			for j := 0; j+1 < len(val.Content); j += 2 {
				p := templateParam{name: val.Content[j].Value}
				props := val.Content[j+1]
				for k := 0; k+1 < len(props.Content); k += 2 {
					v := props.Content[k+1]
					switch props.Content[k].Value {
					case "Type":
						p.typ = v.Value
					case "Default":
						p.hasDefault, p.def = true, scalarOrList(v)
					case "NoEcho":
						p.noEcho = v.Value == "true"
					case "Description":
						p.description = v.Value
					}
				}
				t.params = append(t.params, p)
			}
		case "Resources":
			for j := 0; j+1 < len(val.Content); j += 2 {
				r := fakeResource{id: val.Content[j].Value, refs: map[string]bool{}}
				props := val.Content[j+1]
				for k := 0; k+1 < len(props.Content); k += 2 {
					switch v := props.Content[k+1]; props.Content[k].Value {
					case "Type":
						r.typ = v.Value
					case "DependsOn":
						if v.Kind == yaml.SequenceNode {
							for _, d := range v.Content {
								r.refs[d.Value] = true
							}
						} else {
							r.refs[v.Value] = true
						}
					default:
						references(v, r.refs)
					}
				}
				def, _ := yaml.Marshal(props)
				r.def = string(def)
				t.resources = append(t.resources, r)
			}
		case "Outputs":
			for j := 0; j+1 < len(val.Content); j += 2 {
				t.outputs = append(t.outputs, val.Content[j].Value)
			}
		}
	}
	if len(t.resources) == 0 {
		return fakeTemplate{}, errNoResources
	}
	order, err := resolveDependencies(t.resources, t.params)
	if err != nil {
		return fakeTemplate{}, err
	}
	t.resources = order
	return t, nil
}

func scalarOrList(n *yaml.Node) string {
	if n.Kind != yaml.SequenceNode {
		return n.Value
	}
	var parts []string
	for _, c := range n.Content {
		parts = append(parts, c.Value)
	}
	return strings.Join(parts, ",")
}

func (t fakeTemplate) needsIAM() bool {
	for _, r := range t.resources {
		if strings.HasPrefix(r.typ, "AWS::IAM::") {
			return true
		}
	}
	return false
}

func (t fakeTemplate) param(name string) (templateParam, bool) {
	for _, p := range t.params {
		if p.name == name {
			return p, true
		}
	}
	return templateParam{}, false
}

// templateBody reads TemplateBody with CloudFormation's checks.
func templateBody(form url.Values) (string, fakeTemplate, *Error) {
	body := form.Get("TemplateBody")
	if form.Get("TemplateURL") != "" {
		return "", fakeTemplate{}, cfnValidation("the fake reads TemplateBody only, not TemplateURL")
	}
	if body == "" {
		return "", fakeTemplate{}, cfnValidation("Either Template URL or Template Body must be specified.")
	}
	if len(body) > MaxTemplateBody {
		return "", fakeTemplate{}, cfnValidation("1 validation error detected: Value '%.40s…' at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to %d", body, MaxTemplateBody)
	}
	t, err := parseTemplate(body)
	switch {
	case errors.Is(err, errNoResources):
		return "", fakeTemplate{}, cfnValidation("Template format error: At least one Resources member must be defined.")
	case errors.As(err, new(dependencyError)):
		return "", fakeTemplate{}, cfnValidation("%v", err)
	case err != nil:
		return "", fakeTemplate{}, cfnValidation("Template format error: %v", err)
	}
	return body, t, nil
}

// --- operations --------------------------------------------------------------------------

type xmlCreateChangeSetResult struct {
	XMLName xml.Name `xml:"CreateChangeSetResult"`
	ID      string   `xml:"Id"`
	StackID string   `xml:"StackId"`
}

func (f *CloudFormation) createChangeSet(form url.Values) (any, *Error) {
	name, stackName := form.Get("ChangeSetName"), form.Get("StackName")
	typ := form.Get("ChangeSetType")
	if typ == "" {
		typ = "UPDATE"
	}
	if !changeSetNamePattern.MatchString(name) {
		return nil, cfnValidation("1 validation error detected: Value '%s' at 'changeSetName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*", name)
	}
	if !cfnStackNamePattern.MatchString(stackName) {
		return nil, cfnValidation("1 validation error detected: Value '%s' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*", stackName)
	}
	if tok := form.Get("ClientToken"); tok != "" && len(tok) > 128 {
		return nil, cfnValidation("1 validation error detected: Value at 'clientToken' failed to satisfy constraint: Member must have length less than or equal to 128")
	}
	if typ != "CREATE" && typ != "UPDATE" {
		return nil, cfnValidation("the fake supports ChangeSetType CREATE and UPDATE, not %s", typ)
	}
	usePrevious := form.Get("UsePreviousTemplate") == "true"
	var body string
	var tpl fakeTemplate
	if !usePrevious {
		var apiErr *Error
		if body, tpl, apiErr = templateBody(form); apiErr != nil {
			return nil, apiErr
		}
	} else if form.Get("TemplateBody") != "" || form.Get("TemplateURL") != "" {
		return nil, cfnValidation("Specify exactly one of TemplateBody, TemplateURL or UsePreviousTemplate.")
	}
	caps := formList(form, "Capabilities")
	params := formParameters(form)
	tags := formTags(form)

	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.liveStack(stackName)
	var st *stackState
	if s != nil {
		st = f.stateOf(s)
	}
	if usePrevious {
		if typ == "CREATE" || s == nil || st.template == "" {
			return nil, cfnValidation("UsePreviousTemplate can only be used for an existing stack with a template.")
		}
		body = st.template
		tpl, _ = parseTemplate(body)
	}
	switch {
	case typ == "CREATE" && s != nil && st.status != "REVIEW_IN_PROGRESS":
		return nil, cfnValidation("Stack [%s] already exists and cannot be created again with the changeSet [%s].", stackName, name)
	case typ == "UPDATE" && s == nil:
		return nil, cfnValidation("Stack [%s] does not exist", stackName)
	case typ == "UPDATE" && !slices.Contains(updatable, st.status):
		return nil, cfnValidation("Stack:%s is in %s state and can not be updated.", s.id, st.status)
	}
	if s != nil {
		for _, cs := range st.changeSets {
			if cs.name != name {
				continue
			}
			// The same ClientToken is a retry of the same request ("CreateChangeSet",
			// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html).
			if cs.clientToken != "" && cs.clientToken == form.Get("ClientToken") {
				return xmlResult(OpCreateChangeSet, xmlCreateChangeSetResult{ID: cs.id, StackID: s.id}), nil
			}
			return nil, clientError("AlreadyExistsException", "ChangeSet %s already exists", name)
		}
	}
	if tpl.needsIAM() && !slices.Contains(caps, "CAPABILITY_IAM") && !slices.Contains(caps, "CAPABILITY_NAMED_IAM") {
		return nil, clientError("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_IAM]")
	}
	resolved := map[string]string{}
	for _, p := range params {
		if _, ok := tpl.param(p.key); !ok {
			return nil, cfnValidation("Parameters: [%s] do not exist in the template", p.key)
		}
		if p.usePrevious {
			prev, ok := "", false
			if typ == "UPDATE" {
				prev, ok = st.params[p.key]
			}
			if !ok {
				if typ == "CREATE" {
					return nil, cfnValidation("Invalid input for parameter key %s. Cannot specify usePreviousValue as true for a parameter key in a new stack", p.key)
				}
				return nil, cfnValidation("Invalid input for parameter key %s. Cannot specify usePreviousValue as true for non-existing parameter key", p.key)
			}
			resolved[p.key] = prev
			continue
		}
		resolved[p.key] = p.value
	}
	var missing []string
	for _, p := range tpl.params {
		if _, ok := resolved[p.name]; ok {
			continue
		}
		if p.hasDefault {
			resolved[p.name] = p.def
			continue
		}
		missing = append(missing, p.name)
	}
	if len(missing) > 0 {
		return nil, cfnValidation("Parameters: [%s] must have values", strings.Join(missing, ", "))
	}

	if s == nil {
		// CREATE on a new stack: a stack with an id and no template, waiting for review.
		s = f.create(stackName)
		st = &stackState{status: "REVIEW_IN_PROGRESS", created: f.now(), tokens: map[string]bool{}, params: map[string]string{}}
		s.state = st
		f.emit(s, "", f.now(), stackEvent(s, "REVIEW_IN_PROGRESS", "User Initiated"))
	}
	f.seq++
	cs := &fakeChangeSet{
		id:   fmt.Sprintf("arn:aws:cloudformation:%s:%s:changeSet/%s/c5e7c000-0000-4000-8000-%012d", Region, fakeAccountID, name, f.seq),
		name: name, typ: typ, status: "CREATE_PENDING", execStatus: "UNAVAILABLE", clientToken: form.Get("ClientToken"),
		template: body, params: resolved, capabilities: caps, roleARN: form.Get("RoleARN"), tags: tags, created: f.now(),
	}
	final := csStep{at: cs.created.Add(changeSetCreation), status: "CREATE_COMPLETE", execStatus: "AVAILABLE"}
	if q := f.life.changeSetFails[stackName]; len(q) > 0 {
		final.status, final.execStatus, final.reason = "FAILED", "UNAVAILABLE", q[0]
		f.life.changeSetFails[stackName] = q[1:]
	} else if typ == "UPDATE" && body == st.template && maps.Equal(resolved, st.params) && (tags == nil || maps.Equal(tags, st.tags)) {
		final.status, final.execStatus, final.reason = "FAILED", "UNAVAILABLE", f.life.noChanges
	}
	cs.pending = []csStep{{at: cs.created.Add(time.Second), status: "CREATE_IN_PROGRESS", execStatus: "UNAVAILABLE"}, final}
	st.changeSets = append(st.changeSets, cs)
	return xmlResult(OpCreateChangeSet, xmlCreateChangeSetResult{ID: cs.id, StackID: s.id}), nil
}

// findChangeSet finds a change set by ARN, or by name on StackName, with CloudFormation's
// errors. The caller holds f.mu.
func (f *CloudFormation) findChangeSet(form url.Values) (*fakeStack, *fakeChangeSet, *Error) {
	name, stackName := form.Get("ChangeSetName"), form.Get("StackName")
	if strings.HasPrefix(name, "arn:") {
		for _, s := range f.stacks {
			if s.state == nil || s.deleted {
				continue
			}
			for _, cs := range s.state.changeSets {
				if cs.id == name {
					return s, cs, nil
				}
			}
		}
		return nil, nil, clientError("ChangeSetNotFound", "ChangeSet [%s] does not exist", name)
	}
	if stackName == "" {
		return nil, nil, cfnValidation("StackName must be specified if ChangeSetName is not specified as an ARN.")
	}
	s := f.liveStack(stackName)
	if s == nil {
		return nil, nil, cfnValidation("Stack [%s] does not exist", stackName)
	}
	for _, cs := range f.stateOf(s).changeSets {
		if cs.name == name {
			return s, cs, nil
		}
	}
	return nil, nil, clientError("ChangeSetNotFound", "ChangeSet [%s] does not exist", name)
}

type xmlParameter struct {
	ParameterKey   string `xml:"ParameterKey"`
	ParameterValue string `xml:"ParameterValue"`
}

func xmlParameters(m map[string]string) []xmlParameter {
	var out []xmlParameter
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, xmlParameter{k, m[k]})
	}
	return out
}

type xmlDescribeChangeSetResult struct {
	XMLName         xml.Name       `xml:"DescribeChangeSetResult"`
	ChangeSetName   string         `xml:"ChangeSetName"`
	ChangeSetID     string         `xml:"ChangeSetId"`
	StackID         string         `xml:"StackId"`
	StackName       string         `xml:"StackName"`
	Parameters      []xmlParameter `xml:"Parameters>member"`
	CreationTime    string         `xml:"CreationTime"`
	ExecutionStatus string         `xml:"ExecutionStatus"`
	Status          string         `xml:"Status"`
	StatusReason    string         `xml:"StatusReason,omitempty"`
	Capabilities    []string       `xml:"Capabilities>member"`
	RoleARN         string         `xml:"RoleARN,omitempty"`
}

func (f *CloudFormation) describeChangeSet(form url.Values) (any, *Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, cs, apiErr := f.findChangeSet(form)
	if apiErr != nil {
		return nil, apiErr
	}
	res := xmlResult(OpDescribeChangeSet, xmlDescribeChangeSetResult{ChangeSetName: cs.name, ChangeSetID: cs.id, StackID: s.id,
		StackName: s.name, Parameters: xmlParameters(cs.params), CreationTime: wireTime(cs.created), ExecutionStatus: cs.execStatus,
		Status: cs.status, StatusReason: cs.reason, Capabilities: cs.capabilities, RoleARN: cs.roleARN})
	return res, nil
}

type xmlExecuteChangeSetResult struct {
	XMLName xml.Name `xml:"ExecuteChangeSetResult"`
}

// useToken records a ClientRequestToken on the stack. A token used before on the stack is
// refused with TokenAlreadyExistsException (the modeled error; what CloudFormation does with
// a repeated token is not documented in "ExecuteChangeSet",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html).
// The caller holds f.mu.
func useToken(st *stackState, token string) *Error {
	if token == "" {
		return nil
	}
	if !requestTokenPattern.MatchString(token) {
		return cfnValidation("1 validation error detected: Value '%s' at 'clientRequestToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9][-a-zA-Z0-9]*", token)
	}
	if st.tokens[token] {
		return clientError("TokenAlreadyExistsException", "A client request token already exists.")
	}
	st.tokens[token] = true
	return nil
}

func (f *CloudFormation) executeChangeSet(form url.Values) (any, *Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, cs, apiErr := f.findChangeSet(form)
	if apiErr != nil {
		return nil, apiErr
	}
	st := f.stateOf(s)
	if cs.status != "CREATE_COMPLETE" || cs.execStatus != "AVAILABLE" {
		return nil, clientError("InvalidChangeSetStatus", "ChangeSet [%s] cannot be executed in its current status of [%s] and execution status of [%s]", cs.id, cs.status, cs.execStatus)
	}
	if busy(st.status) {
		return nil, clientError("InvalidChangeSetStatus", "Stack:%s is in %s state and can not be updated.", s.id, st.status)
	}
	token := form.Get("ClientRequestToken")
	if apiErr := useToken(st, token); apiErr != nil {
		return nil, apiErr
	}
	cs.execStatus, cs.execToken = "EXECUTE_IN_PROGRESS", token
	// Stack tags apply with the execution; a change set that names none leaves them
	// ("UpdateStack": "If you don't specify this parameter, CloudFormation doesn't modify the
	// stack's tags", https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStack.html).
	if cs.tags != nil {
		st.tags = maps.Clone(cs.tags)
	}
	// "Executing a change set deletes all other change sets associated with the stack."
	st.changeSets = []*fakeChangeSet{cs}
	f.startExecution(s, st, cs, token)
	return xmlResult(OpExecuteChangeSet, xmlExecuteChangeSetResult{}), nil
}

// startExecution schedules the execution of cs on its clock: the stack's first event now, the
// resources in dependency order, and the end (a rollback, when a DeployFailure is scripted).
// The caller holds f.mu.
func (f *CloudFormation) startExecution(s *fakeStack, st *stackState, cs *fakeChangeSet, token string) {
	tpl, _ := parseTemplate(cs.template) // parsed when the change set was created
	var failure *DeployFailure
	if q := f.life.deployFailures[s.name]; len(q) > 0 {
		failure = &q[0]
		f.life.deployFailures[s.name] = q[1:]
	}
	create := cs.typ == "CREATE"
	commit := func() {
		st.template, st.params, st.capabilities, st.roleARN = cs.template, maps.Clone(cs.params), slices.Clone(cs.capabilities), cs.roleARN
		st.resources, st.description = tpl.resources, tpl.description
		st.outputs = map[string]string{}
		for _, k := range tpl.outputs {
			st.outputs[k] = s.name + "-" + k
			if v, ok := f.life.outputs[s.name][k]; ok {
				st.outputs[k] = v
			}
		}
		cs.execStatus = "EXECUTE_COMPLETE"
	}
	failed := func() { cs.execStatus = "EXECUTE_FAILED" }

	// What changes: every resource of a new stack; else the new resources (CREATE), and the
	// ones whose definition or parameters changed (UPDATE).
	old := map[string]fakeResource{}
	for _, r := range st.resources {
		old[r.id] = r
	}
	order := slices.Clone(tpl.resources)
	verb := map[string]string{}
	todo := map[string]time.Duration{}
	for _, r := range order {
		prev, existed := old[r.id]
		switch {
		case create || !existed:
			verb[r.id], todo[r.id] = "CREATE", createDuration(r)
		case prev.def != r.def || slices.ContainsFunc(r.params, func(p string) bool { return st.params[p] != cs.params[p] }):
			verb[r.id], todo[r.id] = "UPDATE", updateDuration(r)
		}
	}
	if failure != nil {
		// The scripted failure happens at its resource, which the execution touches (a
		// resource the template lacks stands for a wait condition with no dependencies).
		if _, ok := verb[failure.Resource]; !ok {
			if !slices.ContainsFunc(order, func(r fakeResource) bool { return r.id == failure.Resource }) {
				order = append([]fakeResource{{id: failure.Resource, typ: "AWS::CloudFormation::WaitCondition"}}, order...)
				verb[failure.Resource], todo[failure.Resource] = "CREATE", resourceCreate
			} else {
				verb[failure.Resource], todo[failure.Resource] = "UPDATE", resourceUpdate
			}
		}
	}

	p := &plan{s: s, token: token}
	t0 := f.now()
	first := "UPDATE_IN_PROGRESS"
	if create {
		first = "CREATE_IN_PROGRESS"
	}
	p.stack(t0, first, "User Initiated", nil)
	spans := schedule(t0.Add(stackStep), order, todo)
	stop := time.Time{} // when the failure happens; zero without one
	if failure != nil {
		stop = spans[failure.Resource].end
	}
	last := t0
	var touched, cancelled []string // resources started (in order), and those cut short
	for _, r := range order {
		sp, ok := spans[r.id]
		if !ok || (!stop.IsZero() && r.id != failure.Resource && !sp.start.Before(stop)) {
			continue // unchanged, or never started: the failure came first
		}
		touched = append(touched, r.id)
		v := verb[r.id]
		if v == "CREATE" {
			p.creating(sp.start, r)
			p.resource(sp.start.Add(initiated), r, "CREATE_IN_PROGRESS", ResourceCreationInitiated)
		} else {
			p.resource(sp.start, r, "UPDATE_IN_PROGRESS", "")
		}
		switch {
		case failure != nil && r.id == failure.Resource:
			p.resource(sp.end, r, v+"_FAILED", failure.Reason)
		case !stop.IsZero() && sp.end.After(stop):
			cancel := ResourceCreationCancelled
			if v == "UPDATE" {
				cancel = ResourceUpdateCancelled
			}
			p.resource(stop.Add(stackStep), r, v+"_FAILED", cancel)
			cancelled = append(cancelled, r.id)
		default:
			p.resource(sp.end, r, v+"_COMPLETE", "")
		}
		if sp.end.After(last) {
			last = sp.end
		}
	}
	resource := func(id string) fakeResource {
		for _, r := range order {
			if r.id == id {
				return r
			}
		}
		return old[id]
	}

	if failure == nil {
		end := last.Add(stackStep)
		if create {
			p.stack(end, "CREATE_COMPLETE", "", commit)
			f.start(s, p)
			return
		}
		p.stack(end, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "", nil)
		removed := map[string]bool{}
		for _, r := range st.resources {
			if !slices.ContainsFunc(tpl.resources, func(x fakeResource) bool { return x.id == r.id }) {
				removed[r.id] = true
			}
		}
		end = p.scheduleDeletes(end.Add(stackStep), st.resources, removed, nil)
		p.stack(end.Add(stackStep), "UPDATE_COMPLETE", "", commit)
		f.start(s, p)
		return
	}

	rollbackAt := stop.Add(2 * stackStep)
	if create {
		reason := fmt.Sprintf("The following resource(s) failed to create: [%s]. Rollback requested by user.",
			strings.Join(append([]string{failure.Resource}, cancelled...), ", "))
		p.stack(rollbackAt, "ROLLBACK_IN_PROGRESS", reason, nil)
		attempted := map[string]bool{}
		for _, id := range touched {
			attempted[id] = true
		}
		var stuck *ResourceFailure
		if failure.RollbackResource != "" {
			stuck = &ResourceFailure{failure.RollbackResource, failure.RollbackReason}
			if !attempted[stuck.Resource] {
				// Scripted: the resource that cannot be deleted is taken as created.
				attempted[stuck.Resource] = true
				if !slices.ContainsFunc(order, func(r fakeResource) bool { return r.id == stuck.Resource }) {
					order = append(order, fakeResource{id: stuck.Resource, typ: "AWS::CloudFormation::WaitCondition"})
				}
			}
		}
		end := p.scheduleDeletes(rollbackAt.Add(stackStep), order, attempted, stuck).Add(stackStep)
		if stuck != nil {
			p.stack(end, "ROLLBACK_FAILED", fmt.Sprintf("The following resource(s) failed to delete: [%s]. ", stuck.Resource), failed)
		} else {
			p.stack(end, "ROLLBACK_COMPLETE", "", func() {
				failed()
				st.template, st.params = cs.template, maps.Clone(cs.params)
			})
		}
		f.start(s, p)
		return
	}

	p.stack(rollbackAt, "UPDATE_ROLLBACK_IN_PROGRESS", fmt.Sprintf("The following resource(s) failed to update: [%s].", failure.Resource), nil)
	// The rollback puts the updated resources back, in dependency order; the ones this
	// update created go in the cleanup.
	t := rollbackAt.Add(stackStep)
	created := map[string]bool{}
	rolled := []string{}
	for _, id := range touched {
		if verb[id] == "CREATE" {
			created[id] = true
		} else {
			rolled = append(rolled, id)
		}
	}
	if r := failure.RollbackResource; r != "" && !slices.Contains(rolled, r) {
		rolled = append(rolled, r) // scripted: the resource whose rollback fails is rolled back
	}
	for _, id := range rolled {
		r := resource(id)
		if r.typ == "" {
			r.typ = "AWS::CloudFormation::WaitCondition"
		}
		p.resource(t, r, "UPDATE_IN_PROGRESS", "")
		t = t.Add(resourceUpdate)
		if id == failure.RollbackResource {
			reason := fmt.Sprintf("The following resource(s) failed to update: [%s].", id)
			p.resource(t, r, "UPDATE_FAILED", failure.RollbackReason)
			p.stack(t.Add(stackStep), "UPDATE_ROLLBACK_FAILED", reason, failed)
			f.start(s, p)
			return
		}
		p.resource(t, r, "UPDATE_COMPLETE", "")
	}
	f.rollbackCleanup(p, t.Add(stackStep), order, created, failed)
	f.start(s, p)
}

// rollbackCleanup ends a successful update rollback: the resources the update created are
// deleted, and the stack is UPDATE_ROLLBACK_COMPLETE. The caller holds f.mu.
func (f *CloudFormation) rollbackCleanup(p *plan, t time.Time, order []fakeResource, created map[string]bool, apply func()) {
	p.stack(t, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "", nil)
	end := p.scheduleDeletes(t.Add(stackStep), order, created, nil)
	p.stack(end.Add(stackStep), "UPDATE_ROLLBACK_COMPLETE", "", apply)
}

type xmlContinueUpdateRollbackResult struct {
	XMLName xml.Name `xml:"ContinueUpdateRollbackResult"`
}

func (f *CloudFormation) continueUpdateRollback(form url.Values) (any, *Error) {
	name := form.Get("StackName")
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.liveStack(name)
	if s == nil {
		return nil, cfnValidation("Stack [%s] does not exist", name)
	}
	st := f.stateOf(s)
	if st.status != "UPDATE_ROLLBACK_FAILED" {
		return nil, cfnValidation("Stack [%s] is in %s state and can not continue rollback. ContinueUpdateRollback can only be called on a stack in UPDATE_ROLLBACK_FAILED state.", s.id, st.status)
	}
	token := form.Get("ClientRequestToken")
	if apiErr := useToken(st, token); apiErr != nil {
		return nil, apiErr
	}
	p := &plan{s: s, token: token}
	t := f.now()
	p.stack(t, "UPDATE_ROLLBACK_IN_PROGRESS", "User Initiated", nil)
	if q := f.life.continueFailures[s.name]; len(q) > 0 {
		fail := q[0]
		f.life.continueFailures[s.name] = q[1:]
		r := fakeResource{id: fail.Resource, typ: "AWS::CloudFormation::WaitCondition"}
		for _, x := range st.resources {
			if x.id == r.id {
				r = x
			}
		}
		p.resource(t.Add(stackStep), r, "UPDATE_IN_PROGRESS", "")
		t = t.Add(stackStep + resourceUpdate)
		p.resource(t, r, "UPDATE_FAILED", fail.Reason)
		p.stack(t.Add(stackStep), "UPDATE_ROLLBACK_FAILED", fmt.Sprintf("The following resource(s) failed to update: [%s].", r.id), nil)
	} else {
		f.rollbackCleanup(p, t.Add(stackStep), st.resources, nil, nil)
	}
	f.start(s, p)
	return xmlResult(OpContinueUpdateRollback, xmlContinueUpdateRollbackResult{}), nil
}

func (f *CloudFormation) deleteStack(form url.Values) (any, *Error) {
	name := form.Get("StackName")
	if name == "" {
		return nil, cfnValidation("1 validation error detected: Value null at 'stackName' failed to satisfy constraint: Member must not be null")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.liveStack(name)
	if s == nil {
		// Deleting a stack that does not exist succeeds and does nothing.
		return xmlResult(OpDeleteStack, nil), nil
	}
	st := f.stateOf(s)
	if st.status == "DELETE_IN_PROGRESS" {
		return xmlResult(OpDeleteStack, nil), nil
	}
	if busy(st.status) {
		return nil, cfnValidation("Stack [%s] cannot be deleted while in status %s", name, st.status)
	}
	if f.life.protected[s.name] {
		return nil, cfnValidation("Stack [%s] cannot be deleted while TerminationProtection is enabled", name)
	}
	token := form.Get("ClientRequestToken")
	if apiErr := useToken(st, token); apiErr != nil {
		return nil, apiErr
	}
	p := &plan{s: s, token: token}
	t := f.now()
	p.stack(t, "DELETE_IN_PROGRESS", "User Initiated", nil)
	todo := map[string]bool{}
	for _, r := range st.resources {
		todo[r.id] = true
	}
	var fail *ResourceFailure
	order := st.resources
	if q := f.life.deleteFailures[s.name]; len(q) > 0 {
		fail = &q[0]
		f.life.deleteFailures[s.name] = q[1:]
		if !todo[fail.Resource] {
			order = append(slices.Clone(order), fakeResource{id: fail.Resource, typ: "AWS::CloudFormation::WaitCondition"})
			todo[fail.Resource] = true
		}
	}
	end := p.scheduleDeletes(t.Add(stackStep), order, todo, fail).Add(stackStep)
	if fail != nil {
		p.stack(end, "DELETE_FAILED", fmt.Sprintf("The following resource(s) failed to delete: [%s]. ", fail.Resource), nil)
	} else {
		p.stack(end, "DELETE_COMPLETE", "", func() {
			s.deleted = true
			st.deletedAt = end
			st.changeSets = nil
			if f.live[s.name] == s.id {
				delete(f.live, s.name)
			}
		})
	}
	f.start(s, p)
	return xmlResult(OpDeleteStack, nil), nil
}

type xmlDeleteChangeSetResult struct {
	XMLName xml.Name `xml:"DeleteChangeSetResult"`
}

func (f *CloudFormation) deleteChangeSet(form url.Values) (any, *Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, cs, apiErr := f.findChangeSet(form)
	if apiErr != nil {
		return nil, apiErr
	}
	switch cs.status {
	case "CREATE_PENDING", "CREATE_IN_PROGRESS":
		return nil, clientError("InvalidChangeSetStatus", "Cannot delete ChangeSet in status %s", cs.status)
	}
	if cs.execStatus == "EXECUTE_IN_PROGRESS" {
		return nil, clientError("InvalidChangeSetStatus", "Cannot delete ChangeSet in execution status %s", cs.execStatus)
	}
	st := f.stateOf(s)
	st.changeSets = slices.DeleteFunc(st.changeSets, func(c *fakeChangeSet) bool { return c == cs })
	return xmlResult(OpDeleteChangeSet, xmlDeleteChangeSetResult{}), nil
}

type xmlOutput struct {
	OutputKey   string `xml:"OutputKey"`
	OutputValue string `xml:"OutputValue"`
}

type xmlStack struct {
	StackID           string         `xml:"StackId"`
	StackName         string         `xml:"StackName"`
	Description       string         `xml:"Description,omitempty"`
	Parameters        []xmlParameter `xml:"Parameters>member"`
	CreationTime      string         `xml:"CreationTime"`
	LastUpdatedTime   string         `xml:"LastUpdatedTime,omitempty"`
	DeletionTime      string         `xml:"DeletionTime,omitempty"`
	StackStatus       string         `xml:"StackStatus"`
	StackStatusReason string         `xml:"StackStatusReason,omitempty"`
	Capabilities      []string       `xml:"Capabilities>member"`
	Outputs           []xmlOutput    `xml:"Outputs>member"`
	RoleARN           string         `xml:"RoleARN,omitempty"`
	Tags              []xmlTag       `xml:"Tags>member"`
}

type xmlDescribeStacksResult struct {
	XMLName xml.Name   `xml:"DescribeStacksResult"`
	Stacks  []xmlStack `xml:"Stacks>member"`
}

func (f *CloudFormation) wireStack(s *fakeStack) xmlStack {
	st := f.stateOf(s)
	out := xmlStack{StackID: s.id, StackName: s.name, Description: st.description, Parameters: xmlParameters(st.params),
		CreationTime: wireTime(st.created), StackStatus: st.status, StackStatusReason: st.reason,
		Capabilities: st.capabilities, RoleARN: st.roleARN}
	if !st.updated.IsZero() {
		out.LastUpdatedTime = wireTime(st.updated)
	}
	if s.deleted && !st.deletedAt.IsZero() {
		out.DeletionTime = wireTime(st.deletedAt)
	}
	for _, k := range slices.Sorted(maps.Keys(st.outputs)) {
		out.Outputs = append(out.Outputs, xmlOutput{k, st.outputs[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(st.tags)) {
		out.Tags = append(out.Tags, xmlTag{k, st.tags[k]})
	}
	return out
}

// describeStacks answers one stack (by name: live stacks only; by stack id: deleted ones
// too, as DELETE_COMPLETE), or every live stack.
func (f *CloudFormation) describeStacks(form url.Values) (any, *Error) {
	name := form.Get("StackName")
	f.mu.Lock()
	defer f.mu.Unlock()
	res := xmlDescribeStacksResult{}
	if name == "" {
		for _, n := range slices.Sorted(maps.Keys(f.live)) {
			res.Stacks = append(res.Stacks, f.wireStack(f.stacks[f.live[n]]))
		}
		return xmlResult(OpDescribeStacks, res), nil
	}
	s := f.liveStack(name)
	if s == nil {
		if byID, ok := f.stacks[name]; ok {
			s = byID
		}
	}
	if s == nil {
		return nil, cfnValidation("Stack with id %s does not exist", name)
	}
	res.Stacks = []xmlStack{f.wireStack(s)}
	return xmlResult(OpDescribeStacks, res), nil
}

type xmlParameterDeclaration struct {
	ParameterKey  string  `xml:"ParameterKey"`
	DefaultValue  *string `xml:"DefaultValue"`
	ParameterType string  `xml:"ParameterType,omitempty"`
	NoEcho        bool    `xml:"NoEcho"`
	Description   string  `xml:"Description,omitempty"`
}

type xmlGetTemplateSummaryResult struct {
	XMLName       xml.Name                  `xml:"GetTemplateSummaryResult"`
	Parameters    []xmlParameterDeclaration `xml:"Parameters>member"`
	Description   string                    `xml:"Description,omitempty"`
	Capabilities  []string                  `xml:"Capabilities>member"`
	ResourceTypes []string                  `xml:"ResourceTypes>member"`
}

func (f *CloudFormation) getTemplateSummary(form url.Values) (any, *Error) {
	var tpl fakeTemplate
	if name := form.Get("StackName"); name != "" {
		// The template of a live stack.
		f.mu.Lock()
		s := f.liveStack(name)
		body := ""
		if s != nil {
			body = f.stateOf(s).template
		}
		f.mu.Unlock()
		if body == "" {
			return nil, cfnValidation("Stack with id %s does not exist", name)
		}
		tpl, _ = parseTemplate(body)
	} else {
		var apiErr *Error
		if _, tpl, apiErr = templateBody(form); apiErr != nil {
			return nil, apiErr
		}
	}
	res := xmlGetTemplateSummaryResult{Description: tpl.description}
	for _, p := range tpl.params {
		d := xmlParameterDeclaration{ParameterKey: p.name, ParameterType: p.typ, NoEcho: p.noEcho, Description: p.description}
		if p.hasDefault {
			d.DefaultValue = &p.def
		}
		res.Parameters = append(res.Parameters, d)
	}
	if tpl.needsIAM() {
		res.Capabilities = []string{"CAPABILITY_IAM"}
	}
	for _, r := range tpl.resources {
		if !slices.Contains(res.ResourceTypes, r.typ) {
			res.ResourceTypes = append(res.ResourceTypes, r.typ)
		}
	}
	return xmlResult(OpGetTemplateSummary, res), nil
}

type xmlGetTemplateResult struct {
	XMLName         xml.Name `xml:"GetTemplateResult"`
	TemplateBody    string   `xml:"TemplateBody"`
	StagesAvailable []string `xml:"StagesAvailable>member"`
}

// getTemplate answers the template of a stack (by name: live stacks only; by stack id:
// deleted ones too), as written ("Original"): the template of its last completed operation,
// which is also what a failed update rolled back to. A stack that only has an unexecuted
// CREATE change set has none.
func (f *CloudFormation) getTemplate(form url.Values) (any, *Error) {
	name := form.Get("StackName")
	if stage := form.Get("TemplateStage"); stage != "" && stage != "Original" {
		return nil, cfnValidation("the fake answers TemplateStage Original only, not %s", stage)
	}
	if form.Get("ChangeSetName") != "" {
		return nil, cfnValidation("the fake answers the template of a stack, not of a change set")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.liveStack(name)
	if s == nil {
		s = f.stacks[name]
	}
	if s == nil {
		return nil, cfnValidation("Stack with id %s does not exist", name)
	}
	return xmlResult(OpGetTemplate, xmlGetTemplateResult{TemplateBody: f.stateOf(s).template, StagesAvailable: []string{"Original", "Processed"}}), nil
}

// xmlResponse is an awsQuery answer: <OpResponse><OpResult>…</OpResult><ResponseMetadata>.
type xmlResponse struct {
	XMLName   xml.Name
	XMLNS     string `xml:"xmlns,attr"`
	Result    any
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func xmlResult(op string, result any) xmlResponse {
	return xmlResponse{XMLName: xml.Name{Local: op + "Response"}, XMLNS: cfnXMLNS, Result: result, RequestID: requestID()}
}

func wireTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
