package awsfake

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Time and order in the CloudFormation fake.
//
// Operations unfold on a clock, not on calls: an operation schedules its whole sequence of
// stack events when it starts, each at its time, and every request first brings the stacks up
// to the clock's present. The clock is the fake's own (Advance moves it) or the test's
// (UseClock), so a test that polls on a simulated clock sees CloudFormation move while it
// waits, and a test that does not advance the clock sees nothing move.
//
// Resources follow the event sequences of the CloudFormation User Guide ("Monitor stack
// progress", https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/monitor-stack-progress.html;
// "Stack status codes",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html):
// a created resource's first event is CREATE_IN_PROGRESS without a physical id, the next one
// CREATE_IN_PROGRESS with the physical id and the reason "Resource creation Initiated", then
// CREATE_COMPLETE. A resource starts once the resources it depends on (DependsOn, Ref,
// Fn::GetAtt, Fn::Sub) are complete ("DependsOn attribute",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html);
// deletion goes the other way.

// Simulated durations of the fake's operations.
const (
	changeSetCreation = 10 * time.Second // CREATE_PENDING → CREATE_COMPLETE / FAILED
	resourceCreate    = 10 * time.Second
	roleCreate        = 15 * time.Second // IAM is slower
	resourceUpdate    = 8 * time.Second
	roleUpdate        = 12 * time.Second
	resourceDelete    = 5 * time.Second
	initiated         = time.Second // from the first CREATE_IN_PROGRESS to "Resource creation Initiated"
	stackStep         = time.Second // between the last resource event and the stack's own
)

// ResourceCreationInitiated is the reason of a created resource's second CREATE_IN_PROGRESS
// event, the first that carries its physical id.
const ResourceCreationInitiated = "Resource creation Initiated"

// UseClock makes the fake read the time from now (a test's simulated clock) instead of its own
// clock. Operations started before keep their scheduled times.
func (f *CloudFormation) UseClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = now
}

// Advance moves the fake's own clock on by d (it has no effect with UseClock).
func (f *CloudFormation) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.manual = f.manual.Add(d)
}

// SetClock sets the fake's own clock to t.
func (f *CloudFormation) SetClock(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.manual = t
}

// SetNoChangesReason sets the StatusReason of a change set that changes nothing. CloudFormation
// words it in two ways (NoChangesReason, NoUpdatesReason); the fake uses NoChangesReason unless
// told otherwise.
func (f *CloudFormation) SetNoChangesReason(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life.noChanges = reason
}

// now is the fake's present. The caller holds f.mu.
func (f *CloudFormation) now() time.Time {
	if f.clock != nil {
		return f.clock().UTC()
	}
	return f.manual
}

// catchUp applies every scheduled step that is due: the stacks' transitions and the change
// sets' statuses. The caller holds f.mu.
func (f *CloudFormation) catchUp() {
	now := f.now()
	for _, id := range slices.Sorted(maps.Keys(f.stacks)) {
		s := f.stacks[id]
		if s.state == nil {
			continue
		}
		st := s.state
		for len(st.pending) > 0 && !st.pending[0].at.After(now) {
			t := st.pending[0]
			st.pending = st.pending[1:]
			f.reach(s, t)
		}
		for _, cs := range st.changeSets {
			for len(cs.pending) > 0 && !cs.pending[0].at.After(now) {
				step := cs.pending[0]
				cs.pending = cs.pending[1:]
				cs.status, cs.execStatus, cs.reason = step.status, step.execStatus, step.reason
			}
		}
	}
}

// plan collects the transitions of one operation; ordered sorts them by time, keeping the
// order they were added in for equal times.
type plan struct {
	s     *fakeStack
	token string
	steps []transition
}

// resource adds an event of a resource that exists (it has a physical id) at t.
func (p *plan) resource(t time.Time, r fakeResource, status, reason string) {
	p.steps = append(p.steps, transition{at: t, token: p.token, events: []StackEvent{
		{LogicalResourceID: r.id, PhysicalResourceID: physicalID(p.s, r), ResourceType: r.typ, Status: status, Reason: reason}}})
}

// creating adds the first event of a resource being created, which has no physical id yet.
func (p *plan) creating(t time.Time, r fakeResource) {
	p.steps = append(p.steps, transition{at: t, token: p.token, events: []StackEvent{
		{LogicalResourceID: r.id, ResourceType: r.typ, Status: "CREATE_IN_PROGRESS"}}})
}

// stack adds the stack's move to status at t, with its event, and what reaching it does.
func (p *plan) stack(t time.Time, status, reason string, apply func()) {
	p.steps = append(p.steps, transition{at: t, token: p.token, status: status, reason: reason,
		events: []StackEvent{stackEvent(p.s, status, reason)}, apply: apply})
}

func (p *plan) ordered() []transition {
	slices.SortStableFunc(p.steps, func(a, b transition) int { return a.at.Compare(b.at) })
	return p.steps
}

func physicalID(s *fakeStack, r fakeResource) string { return s.name + "-" + r.id + "-FAKE1A2B3C" }

func createDuration(r fakeResource) time.Duration {
	if strings.HasPrefix(r.typ, "AWS::IAM::") {
		return roleCreate
	}
	return resourceCreate
}

func updateDuration(r fakeResource) time.Duration {
	if strings.HasPrefix(r.typ, "AWS::IAM::") {
		return roleUpdate
	}
	return resourceUpdate
}

// span is when a resource's operation starts and ends.
type span struct{ start, end time.Time }

// schedule starts each resource of todo (in dependency order) once the resources of todo it
// depends on have ended, from t0 on, and returns the spans.
func schedule(t0 time.Time, order []fakeResource, todo map[string]time.Duration) map[string]span {
	spans := map[string]span{}
	for _, r := range order {
		d, ok := todo[r.id]
		if !ok {
			continue
		}
		start := t0
		for _, dep := range r.deps {
			if sp, ok := spans[dep]; ok && sp.end.After(start) {
				start = sp.end
			}
		}
		spans[r.id] = span{start, start.Add(d)}
	}
	return spans
}

// scheduleDeletes deletes the resources of todo in reverse dependency order from t0 on: a
// resource waits for the resources of todo that depend on it. A resource in fail fails to
// delete (DELETE_FAILED, with fail's reason), and the resources it depends on are kept. It
// returns when the last event happens.
func (p *plan) scheduleDeletes(t0 time.Time, order []fakeResource, todo map[string]bool, fail *ResourceFailure) time.Time {
	ends := map[string]time.Time{}
	kept := map[string]bool{}
	last := t0
	for i := len(order) - 1; i >= 0; i-- {
		r := order[i]
		if !todo[r.id] {
			continue
		}
		start := t0
		blocked := false
		for _, other := range order {
			if !todo[other.id] || !slices.Contains(other.deps, r.id) {
				continue
			}
			if kept[other.id] {
				blocked = true
			}
			if end, ok := ends[other.id]; ok && end.After(start) {
				start = end
			}
		}
		if blocked {
			kept[r.id] = true
			continue
		}
		end := start.Add(resourceDelete)
		p.resource(start, r, "DELETE_IN_PROGRESS", "")
		if fail != nil && fail.Resource == r.id {
			p.resource(end, r, "DELETE_FAILED", fail.Reason)
			kept[r.id] = true
		} else {
			p.resource(end, r, "DELETE_COMPLETE", "")
		}
		ends[r.id] = end
		if end.After(last) {
			last = end
		}
	}
	return last
}

// --- dependencies --------------------------------------------------------------------------

// subVariable is a ${Name} or ${Name.Attribute} in an Fn::Sub string (${!Literal} is not one).
var subVariable = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// references adds to out the names n refers to with Ref, Fn::GetAtt and Fn::Sub (long and
// short forms).
func references(n *yaml.Node, out map[string]bool) {
	sub := func(text string, vars map[string]bool) {
		for _, m := range subVariable.FindAllStringSubmatch(text, -1) {
			name, _, _ := strings.Cut(strings.TrimSpace(m[1]), ".")
			if !vars[name] {
				out[name] = true
			}
		}
	}
	subList := func(items []*yaml.Node) {
		if len(items) == 0 {
			return
		}
		vars := map[string]bool{}
		if len(items) > 1 && items[1].Kind == yaml.MappingNode {
			for i := 0; i+1 < len(items[1].Content); i += 2 {
				vars[items[1].Content[i].Value] = true
				references(items[1].Content[i+1], out)
			}
		}
		sub(items[0].Value, vars)
	}
	getAtt := func(v *yaml.Node) {
		if v.Kind == yaml.SequenceNode && len(v.Content) > 0 {
			out[v.Content[0].Value] = true
		} else if v.Kind == yaml.ScalarNode {
			name, _, _ := strings.Cut(v.Value, ".")
			out[name] = true
		}
	}
	switch n.Tag {
	case "!Ref":
		out[n.Value] = true
		return
	case "!GetAtt":
		getAtt(n)
		return
	case "!Sub":
		if n.Kind == yaml.ScalarNode {
			sub(n.Value, nil)
		} else {
			subList(n.Content)
		}
		return
	}
	switch n.Kind {
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			references(c, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			v := n.Content[i+1]
			switch n.Content[i].Value {
			case "Ref":
				if v.Kind == yaml.ScalarNode {
					out[v.Value] = true
					continue
				}
			case "Fn::GetAtt":
				getAtt(v)
				continue
			case "Fn::Sub":
				if v.Kind == yaml.ScalarNode {
					sub(v.Value, nil)
				} else {
					subList(v.Content)
				}
				continue
			}
			references(v, out)
		}
	}
}

// dependencyError is CloudFormation's refusal of a template's dependencies, in its words.
type dependencyError string

func (e dependencyError) Error() string { return string(e) }

// resolveDependencies fills in each resource's deps (the resources it waits for) and params
// (the parameters it reads), and checks them as CloudFormation does when it reads a template:
// every reference names a resource, a parameter or a pseudo parameter, and no dependency is
// circular. It returns the resources in dependency order (template order among equals).
func resolveDependencies(resources []fakeResource, params []templateParam) ([]fakeResource, error) {
	ids := map[string]bool{}
	for _, r := range resources {
		ids[r.id] = true
	}
	isParam := map[string]bool{}
	for _, p := range params {
		isParam[p.name] = true
	}
	var unresolved []string
	for i := range resources {
		r := &resources[i]
		r.deps, r.params = nil, nil
		for _, name := range slices.Sorted(maps.Keys(r.refs)) {
			switch {
			case name == r.id:
				// A self-reference: CloudFormation refuses it; the fake does not model that.
			case ids[name]:
				r.deps = append(r.deps, name)
			case isParam[name]:
				r.params = append(r.params, name)
			case strings.HasPrefix(name, "AWS::"):
			default:
				if !slices.Contains(unresolved, name) {
					unresolved = append(unresolved, name)
				}
			}
		}
	}
	if len(unresolved) > 0 {
		slices.Sort(unresolved)
		return nil, dependencyError(fmt.Sprintf("Template format error: Unresolved resource dependencies [%s] in the Resources block of the template", strings.Join(unresolved, ", ")))
	}
	// Kahn's algorithm, taking the earliest ready resource in template order each time.
	var order []fakeResource
	done := map[string]bool{}
	for len(order) < len(resources) {
		progressed := false
		for _, r := range resources {
			if done[r.id] {
				continue
			}
			ready := true
			for _, d := range r.deps {
				if !done[d] {
					ready = false
					break
				}
			}
			if ready {
				order = append(order, r)
				done[r.id] = true
				progressed = true
				break
			}
		}
		if !progressed {
			var cycle []string
			for _, r := range resources {
				if !done[r.id] {
					cycle = append(cycle, r.id)
				}
			}
			return nil, dependencyError(fmt.Sprintf("Circular dependency between resources: [%s]", strings.Join(cycle, ", ")))
		}
	}
	return order, nil
}
