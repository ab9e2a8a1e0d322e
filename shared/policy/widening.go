package policy

import (
	"fmt"
	"sort"
	"strings"
)

// The kinds of Change.
const (
	ChangeNewRole         = "new-role"             // a role the old template did not have
	ChangeRemovedBoundary = "removed-boundary"     // a role that had a boundary has none
	ChangeBoundary        = "changed-boundary"     // a role's boundary is another one
	ChangePrincipal       = "added-principal"      // a role trusts a principal it did not
	ChangeAction          = "added-action"         // a role may call an action it could not
	ChangeResource        = "added-resource"       // a role's actions reach a resource they did not
	ChangeGrant           = "added-grant"          // known action and resource, newly combined or with a condition dropped
	ChangeRemovedDeny     = "removed-deny"         // a Deny statement is gone
	ChangeManagedPolicy   = "added-managed-policy" // a managed policy attached
)

// Change is one way in which a new template grants more than the old one.
type Change struct {
	Kind   string `json:"kind"`
	Role   string `json:"role"`
	Detail string `json:"detail,omitempty"`
}

func (c Change) String() string {
	if c.Detail == "" {
		return fmt.Sprintf("%s: %s", c.Role, c.Kind)
	}
	return fmt.Sprintf("%s: %s: %s", c.Role, c.Kind, c.Detail)
}

// Widening lists how the IAM roles of newT grant more than those of oldT (nil: a new stack):
// new roles (with everything they trust and grant), removed or changed boundaries, added
// trusted principals, actions, resources and action–resource grants (a dropped condition
// counts), removed Deny statements and attached managed policies. Narrowing is not listed:
// an empty result means the deploy can go ahead without a person.
//
// Roles are matched by logical ID, and values are compared as written (an intrinsic function
// as its JSON), both branches of every Fn::If included; resource policies (bucket, queue,
// topic and Lambda permissions) are not compared. The result is sorted by role, then in the
// order of the kinds above.
func Widening(oldT, newT *Template) []Change {
	var olds map[string]roleGrants
	if oldT != nil {
		olds = rolesOf(oldT)
	}
	news := rolesOf(newT)
	var out []Change
	for _, id := range sortedKeys(news) {
		n := news[id]
		o, existed := olds[id]
		add := func(kind, detail string) { out = append(out, Change{Kind: kind, Role: id, Detail: detail}) }
		if !existed {
			add(ChangeNewRole, "")
			o = newRoleGrants()
		} else if o.boundary != n.boundary {
			if n.boundary == "" {
				add(ChangeRemovedBoundary, "was "+o.boundary)
			} else if o.boundary != "" {
				add(ChangeBoundary, o.boundary+" → "+n.boundary)
			}
		}
		for _, p := range sortedKeys(n.principals) {
			if !o.principals[p] {
				add(ChangePrincipal, p)
			}
		}
		oldActions, oldResources := map[string]bool{}, map[string]bool{}
		for g := range o.grants {
			oldActions[g.action] = true
			oldResources[g.resource] = true
		}
		seenAction, seenResource := map[string]bool{}, map[string]bool{}
		var actions, resources, grants []string
		for _, g := range sortedGrants(n.grants) {
			if _, had := o.grants[g.normalized()]; had {
				continue
			}
			la := strings.ToLower(g.action)
			newAction, newResource := !oldActions[la], !oldResources[g.resource]
			if newAction && !seenAction[la] {
				seenAction[la] = true
				actions = append(actions, g.action)
			}
			if newResource && !seenResource[g.resource] {
				seenResource[g.resource] = true
				resources = append(resources, g.resource)
			}
			if !newAction && !newResource {
				grants = append(grants, g.String())
			}
		}
		for _, a := range actions {
			add(ChangeAction, a)
		}
		for _, r := range resources {
			add(ChangeResource, r)
		}
		for _, g := range grants {
			add(ChangeGrant, g)
		}
		for _, g := range sortedGrants(o.denies) {
			if _, kept := n.denies[g.normalized()]; !kept {
				add(ChangeRemovedDeny, g.String())
			}
		}
		for _, m := range sortedKeys(n.managed) {
			if !o.managed[m] {
				add(ChangeManagedPolicy, m)
			}
		}
	}
	return out
}

// maxGrantsPerStatement bounds the action × resource pairs one statement expands to.
const maxGrantsPerStatement = 10000

// grant is one action on one resource under one condition (JSON, "" for none). NotAction and
// NotResource statements keep their keyword in the action or resource.
type grant struct{ action, resource, condition string }

func (g grant) String() string {
	s := g.action + " on " + g.resource
	if g.condition != "" {
		s += " when " + g.condition
	}
	return s
}

func (g grant) normalized() grant {
	g.action = strings.ToLower(g.action)
	return g
}

func newRoleGrants() roleGrants {
	return roleGrants{principals: map[string]bool{}, grants: map[grant]grant{}, denies: map[grant]grant{}, managed: map[string]bool{}}
}

// sortedGrants returns the grants as written, sorted.
func sortedGrants(m map[grant]grant) []grant {
	out := make([]grant, 0, len(m))
	for _, g := range m {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.action != b.action {
			return a.action < b.action
		}
		if a.resource != b.resource {
			return a.resource < b.resource
		}
		return a.condition < b.condition
	})
	return out
}

type roleGrants struct {
	boundary   string
	principals map[string]bool
	grants     map[grant]grant // Allow, by normalized grant (IAM action names ignore case)
	denies     map[grant]grant
	managed    map[string]bool
}

func rolesOf(t *Template) map[string]roleGrants {
	out := map[string]roleGrants{}
	for _, id := range t.ResourceIDs() {
		typ, props := t.Resource(id)
		if typ != "AWS::IAM::Role" {
			continue
		}
		r := newRoleGrants()
		if b := props["PermissionsBoundary"]; b != nil {
			r.boundary = compact(b)
		}
		for _, st := range statementsOf(props["AssumeRolePolicyDocument"]) {
			if st["Effect"] != "Allow" {
				continue
			}
			if np, ok := st["NotPrincipal"]; ok {
				r.principals["NotPrincipal:"+compact(np)] = true
			}
			p := st["Principal"]
			pm, ok := p.(map[string]any)
			if !ok {
				if p != nil {
					r.principals[compact(p)] = true
				}
				continue
			}
			for _, kind := range sortedKeys(pm) {
				for _, v := range branches(pm[kind]) {
					r.principals[kind+":"+compact(v)] = true
				}
			}
		}
		for _, p := range branches(props["Policies"]) {
			for _, st := range statementsOf(at(p, "PolicyDocument")) {
				target := r.grants
				if st["Effect"] != "Allow" {
					target = r.denies
				}
				for _, g := range grantsOf(st) {
					target[g.normalized()] = g
				}
			}
		}
		for _, m := range branches(props["ManagedPolicyArns"]) {
			r.managed[compact(m)] = true
		}
		out[id] = r
	}
	return out
}

func grantsOf(st map[string]any) []grant {
	actionKey, resourceKey := "Action", "Resource"
	if _, ok := st["NotAction"]; ok {
		actionKey = "NotAction"
	}
	if _, ok := st["NotResource"]; ok {
		resourceKey = "NotResource"
	}
	prefix := func(key string) string {
		if strings.HasPrefix(key, "Not") {
			return key + " "
		}
		return ""
	}
	cond := ""
	if c, ok := st["Condition"]; ok {
		cond = compact(c)
	}
	actions, resources := branches(st[actionKey]), branches(st[resourceKey])
	if len(actions)*len(resources) > maxGrantsPerStatement {
		// Beyond what IAM's policy size quotas let a role carry: one opaque grant, so that the
		// comparison stays cheap and the statement still shows as a widening.
		return []grant{{action: prefix(actionKey) + compact(st[actionKey]), resource: prefix(resourceKey) + compact(st[resourceKey]), condition: cond}}
	}
	var out []grant
	for _, a := range actions {
		for _, r := range resources {
			out = append(out, grant{action: prefix(actionKey) + compact(a), resource: prefix(resourceKey) + compact(r), condition: cond})
		}
	}
	return out
}
