package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A project is a repository, its tracked branch and its notification routing. The control
// plane (one per account and region) converges every declared project to a pipeline stack
// (docs/projects.md). Every name of a project's resources derives from its name, so that the
// control plane's IAM grants are patterns over this convention (template.yaml) and the
// functions find a project's resources without configuration:
//
//	repository     <name>             (CodeCommit, created and retained by the control plane)
//	pipeline       <name>-pipeline    (CodePipeline; also the name of its stack)
//	stacks         <name>-pipeline, <name>-app
//	build project  <name>-build
type Project struct {
	Name   string `json:"name"`
	Branch string `json:"branch"`
	// SlackWebhookParameter names the SSM parameter or secret of this project's own Slack
	// webhook; empty sends its messages to the control plane's webhook.
	SlackWebhookParameter string `json:"slackWebhookParameter,omitempty"`
	// Source says where the declaration comes from: the Projects parameter, the table
	// (lp project add), or both.
	Source ProjectSource `json:"source,omitempty"`
}

// ProjectSource is where a project is declared.
type ProjectSource string

const (
	SourceParameter ProjectSource = "parameter" // template.yaml's Projects parameter
	SourceTable     ProjectSource = "table"     // a PROJECT item written by lp project add
	SourceBoth      ProjectSource = "parameter+table"
)

// DefaultBranch is a project's tracked branch when its declaration names none.
const DefaultBranch = "main"

// Names derived from a project's name.
func PipelineOf(project string) string      { return project + "-pipeline" }
func PipelineStackOf(project string) string { return project + "-pipeline" }
func AppStackOf(project string) string      { return project + "-app" }
func BuildProjectOf(project string) string  { return project + "-build" }

// StacksOf are the stacks a project's pipeline may deploy: its own stack and its
// application's. The deployer refuses a job of the project's pipeline that names any other
// (shared/deploy, docs/security.md).
func StacksOf(project string) []string {
	return []string{PipelineStackOf(project), AppStackOf(project)}
}

// ProjectOfPipeline returns the project whose pipeline is named pipelineName, or "" when the
// name does not follow the convention.
func ProjectOfPipeline(pipelineName string) string {
	p, ok := strings.CutSuffix(pipelineName, "-pipeline")
	if !ok || ValidateProjectName(p) != nil {
		return ""
	}
	return p
}

var (
	projectNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)
	branchRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$`)
	secretNameRE  = regexp.MustCompile(`^[A-Za-z0-9/_.+=@-]{1,512}$`)
)

// ValidateProjectName checks a project name: a lower-case letter, then up to 23 lower-case
// letters, digits or hyphens (so that derived names stay within IAM's 64 characters, and no
// project name contains the "_" or "/" that end the control plane's grant patterns).
func ValidateProjectName(name string) error {
	if !projectNameRE.MatchString(name) {
		return fmt.Errorf("project name %q: want a lower-case letter, then up to 23 lower-case letters, digits or hyphens", name)
	}
	return nil
}

// Validate checks a declaration, naming the field at fault.
func (p Project) Validate() error {
	if err := ValidateProjectName(p.Name); err != nil {
		return err
	}
	if !branchRE.MatchString(p.Branch) {
		return fmt.Errorf("project %s: branch %q is not a branch name", p.Name, p.Branch)
	}
	if p.SlackWebhookParameter != "" && !secretNameRE.MatchString(p.SlackWebhookParameter) {
		return fmt.Errorf("project %s: slack webhook parameter %q is not a parameter or secret name", p.Name, p.SlackWebhookParameter)
	}
	return nil
}

// ParseProjects reads template.yaml's Projects parameter: empty; a comma-separated list of
// name[:branch] ("api, web:release"); or a JSON array of Project objects
// ([{"name":"api","branch":"main","slackWebhookParameter":"/api/slack"}]). A name given twice
// is an error, as is any invalid entry: the whole parameter is refused rather than half read.
func ParseProjects(s string) ([]Project, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Project
	if strings.HasPrefix(s, "[") {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil {
			return nil, fmt.Errorf("projects parameter: %w", err)
		}
	} else {
		for _, entry := range strings.Split(s, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			name, branch, _ := strings.Cut(entry, ":")
			out = append(out, Project{Name: strings.TrimSpace(name), Branch: strings.TrimSpace(branch)})
		}
	}
	seen := map[string]bool{}
	for i := range out {
		out[i].Source = SourceParameter
		if out[i].Branch == "" {
			out[i].Branch = DefaultBranch
		}
		if err := out[i].Validate(); err != nil {
			return nil, fmt.Errorf("projects parameter: %w", err)
		}
		if seen[out[i].Name] {
			return nil, fmt.Errorf("projects parameter: project %s is declared twice", out[i].Name)
		}
		seen[out[i].Name] = true
	}
	slices.SortFunc(out, func(a, b Project) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ProjectDeclaration is a project as the table declares it (lp project add), with what the
// converger last wrote about it.
type ProjectDeclaration struct {
	Project
	// Declared: lp project add declared it (false: the item only holds the state of a
	// project the parameter declares). Removed: lp project remove asked for its removal.
	Declared, Removed bool
	// BranchSet and SlackSet say which settings the item gives (lp project add --branch …);
	// the parameter's explicit values win over them (Desired).
	BranchSet bool
	Status    ProjectStatus
}

// Desired merges the parameter's projects with the table's declarations. Precedence: a name
// in either is desired, unless only the table declares it and lp project remove removed it
// (a parameter declaration is removed by changing the parameter). For a project in both, the
// parameter's branch wins when the parameter names one (name:branch or JSON); otherwise the
// table's branch applies; the Slack webhook comes from the parameter's JSON form if given,
// else from the table.
func Desired(param []Project, table []ProjectDeclaration) []Project {
	byName := map[string]Project{}
	explicitBranch := map[string]bool{}
	for _, p := range param {
		byName[p.Name] = p
		explicitBranch[p.Name] = p.Branch != DefaultBranch
	}
	for _, d := range table {
		p, inParam := byName[d.Name]
		switch {
		case inParam:
			if d.Declared && !d.Removed {
				if d.BranchSet && !explicitBranch[d.Name] {
					p.Branch = d.Branch
				}
				if p.SlackWebhookParameter == "" {
					p.SlackWebhookParameter = d.SlackWebhookParameter
				}
				p.Source = SourceBoth
			}
			byName[d.Name] = p
		case d.Declared && !d.Removed:
			q := d.Project
			q.Source = SourceTable
			if q.Branch == "" {
				q.Branch = DefaultBranch
			}
			byName[d.Name] = q
		}
	}
	out := make([]Project, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Project) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SpecHash identifies what a project's pipeline stack is deployed from: the declaration's
// settings that reach the stack and the control plane's settings (template, roles, bucket …)
// in extra. Equal hashes mean nothing to deploy.
func (p Project) SpecHash(extra ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", p.Name, p.Branch, p.SlackWebhookParameter)
	for _, e := range extra {
		fmt.Fprintf(h, "\x00%s", e)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ProjectState is where a project's convergence stands.
type ProjectState string

const (
	ProjectConverging ProjectState = "converging" // a step is under way (or waits for its turn)
	ProjectReady      ProjectState = "ready"      // the stack is deployed from the current declaration
	ProjectFailed     ProjectState = "failed"     // the stack cannot converge; Reason says why
	ProjectRemoving   ProjectState = "removing"   // the stack is being deleted (the repository stays)
)

// ProjectStatus is what the converger writes back to a project's item after each step, for
// lp projects, and what it needs to take the next step (level-based: every other fact is
// observed again).
type ProjectStatus struct {
	State       ProjectState `json:"state,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	StackStatus string       `json:"stackStatus,omitempty"`
	LastStepAt  time.Time    `json:"lastStepAt,omitzero"`
	// SpecHash is the declaration the current (or last) deploy is for; Generation counts the
	// deploys of the same declaration (a retry after a failure, a stack deleted by hand):
	// together they name the deploy's change set, so that every pass and every concurrent
	// converger asks CloudFormation for the same thing.
	SpecHash   string `json:"specHash,omitempty"`
	Generation int    `json:"generation,omitempty"`
	// Progress is the deploy engine's progress (opaque JSON) between steps.
	Progress string `json:"progress,omitempty"`
	// RetryAt: a failed project is tried again (a new generation) from then on.
	RetryAt time.Time `json:"retryAt,omitzero"`
	// RepositoryCloneURL is the repository's HTTPS clone URL, once it exists.
	RepositoryCloneURL string `json:"repositoryCloneUrl,omitempty"`
	// Version is the item's version for conditional writes (0: no status written yet).
	Version int64 `json:"version,omitempty"`
}

// ProjectStack is a project's pipeline stack as the converger observes it.
type ProjectStack struct {
	Project     string // from the stack's project tag
	StackName   string
	StackStatus string
}

// ProjectStep is one step of converging a project's stack (a deploy or, with Delete, a
// removal). Token names the step's change set and client request tokens; Progress is the
// previous step's (opaque to all but the deploy engine).
type ProjectStep struct {
	Project  Project
	Delete   bool
	Token    string
	Progress string
}

// ProjectStepResult is where a step left the stack.
type ProjectStepResult struct {
	Done, Failed bool
	Reason       string
	StackStatus  string
	Progress     string
}

// ErrUndeclaredProject says that a repository or pipeline belongs to no declared project.
var ErrUndeclaredProject = errors.New("undeclared project")
