package runstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Project items (docs/projects.md), in the runs table:
//
//	project  pk PROJECT#<name>  sk PROJECT  gsi1pk PROJECTS  gsi1sk <name>
//
// One item per project holds its declaration (written by lp project add / remove with the
// caller's credentials: declared, removed, branch, slackWebhookParameter) and what the
// converger writes back (state, reason, stackStatus, …, version). The two writers touch
// disjoint attributes; both bump version, so that a converger pass that read an item before a
// declaration changed loses its conditional write and the next pass observes the change.
// Project items carry no expiresAt: a declaration does not expire. All projects are listed
// with one Query of the byPipeline index (partition PROJECTS): a few hundred small items,
// written a few times per deploy, not a hot partition.
const (
	projectsGSI = "PROJECTS"
	skProject   = "PROJECT"
)

func projectPK(name string) string { return "PROJECT#" + name }

// ProjectsAPI is the part of the DynamoDB client the project store uses.
type ProjectsAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ ProjectsAPI = (*dynamodb.Client)(nil)

// Projects keeps the PROJECT items in DynamoDB.
type Projects struct {
	db    ProjectsAPI
	table string
}

// NewProjects returns the project store over table.
func NewProjects(db ProjectsAPI, table string) *Projects { return &Projects{db: db, table: table} }

func projectKey(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: projectPK(name)}, attrSK: &types.AttributeValueMemberS{Value: skProject}}
}

// Declare writes lp project add's declaration. Settings not given (branch "", webhook "")
// keep their stored values; a removal asked for earlier is cancelled.
func (p *Projects) Declare(ctx context.Context, d pipeline.Project, branchSet bool, now time.Time) error {
	names := map[string]string{"#g": attrGSI1PK, "#gs": attrGSI1SK, "#v": "version"}
	values := map[string]types.AttributeValue{
		":g": &types.AttributeValueMemberS{Value: projectsGSI}, ":n": &types.AttributeValueMemberS{Value: d.Name},
		":t": &types.AttributeValueMemberBOOL{Value: true}, ":f": &types.AttributeValueMemberBOOL{Value: false},
		":one": &types.AttributeValueMemberN{Value: "1"}, ":at": &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339)},
	}
	expr := "SET #g = :g, #gs = :n, declared = :t, removed = :f, declaredAt = :at ADD #v :one"
	if branchSet && d.Branch != "" {
		expr = "SET #g = :g, #gs = :n, declared = :t, removed = :f, declaredAt = :at, branch = :b, branchSet = :t ADD #v :one"
		values[":b"] = &types.AttributeValueMemberS{Value: d.Branch}
	}
	if d.SlackWebhookParameter != "" {
		expr = "SET slackWebhookParameter = :s, " + expr[len("SET "):]
		values[":s"] = &types.AttributeValueMemberS{Value: d.SlackWebhookParameter}
	}
	_, err := p.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(p.table), Key: projectKey(d.Name),
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values})
	if err != nil {
		return fmt.Errorf("declare project %s: %w", d.Name, err)
	}
	return nil
}

// Remove marks a declared project for removal (the converger deletes its stack, then the
// item). It returns pipeline.ErrNotFound when no item declares the project.
func (p *Projects) Remove(ctx context.Context, name string) error {
	_, err := p.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(p.table), Key: projectKey(name),
		UpdateExpression:          aws.String("SET removed = :t ADD #v :one"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#v": "version"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}, ":one": &types.AttributeValueMemberN{Value: "1"}}})
	var cond *types.ConditionalCheckFailedException
	if errors.As(err, &cond) {
		return fmt.Errorf("project %s: %w", name, pipeline.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove project %s: %w", name, err)
	}
	return nil
}

// ListProjects returns every project item, by name.
func (p *Projects) ListProjects(ctx context.Context) ([]pipeline.ProjectDeclaration, error) {
	var out []pipeline.ProjectDeclaration
	var start map[string]types.AttributeValue
	for {
		res, err := p.db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(p.table), IndexName: aws.String(IndexByPipeline),
			KeyConditionExpression:    aws.String("gsi1pk = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: projectsGSI}},
			ExclusiveStartKey:         start})
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		for _, item := range res.Items {
			out = append(out, decodeProject(item))
		}
		if start = res.LastEvaluatedKey; len(start) == 0 {
			return out, nil
		}
	}
}

// GetProject returns one project's item (consistent read).
func (p *Projects) GetProject(ctx context.Context, name string) (pipeline.ProjectDeclaration, bool, error) {
	res, err := p.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(p.table), Key: projectKey(name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return pipeline.ProjectDeclaration{}, false, fmt.Errorf("get project %s: %w", name, err)
	}
	if len(res.Item) == 0 {
		return pipeline.ProjectDeclaration{}, false, nil
	}
	return decodeProject(res.Item), true, nil
}

// PutStatus writes the converger's status of a project if the item is still at version prev.
func (p *Projects) PutStatus(ctx context.Context, name string, prev int64, st pipeline.ProjectStatus) (bool, error) {
	values := map[string]types.AttributeValue{
		":g": &types.AttributeValueMemberS{Value: projectsGSI}, ":n": &types.AttributeValueMemberS{Value: name},
		":state": projS(string(st.State)), ":reason": projS(clip(st.Reason)), ":ss": projS(st.StackStatus),
		":last": projS(timeString(st.LastStepAt)), ":hash": projS(st.SpecHash),
		":gen":      &types.AttributeValueMemberN{Value: strconv.Itoa(st.Generation)},
		":progress": projS(st.Progress), ":retry": projS(timeString(st.RetryAt)), ":url": projS(st.RepositoryCloneURL),
		":next": &types.AttributeValueMemberN{Value: strconv.FormatInt(prev+1, 10)},
	}
	cond := "attribute_not_exists(#v)"
	if prev > 0 {
		cond = "#v = :prev"
		values[":prev"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(prev, 10)}
	}
	_, err := p.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(p.table), Key: projectKey(name),
		UpdateExpression: aws.String("SET #g = :g, gsi1sk = :n, #state = :state, reason = :reason, stackStatus = :ss, lastStepAt = :last, " +
			"specHash = :hash, generation = :gen, progress = :progress, retryAt = :retry, cloneUrl = :url, #v = :next"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#v": "version", "#g": attrGSI1PK, "#state": "state"},
		ExpressionAttributeValues: values})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write status of project %s: %w", name, err)
	}
	return true, nil
}

// DeleteProject deletes a project's item if it is still at version prev.
func (p *Projects) DeleteProject(ctx context.Context, name string, prev int64) (bool, error) {
	cond, values := "attribute_not_exists(#v)", map[string]types.AttributeValue{}
	if prev > 0 {
		cond = "#v = :prev"
		values[":prev"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(prev, 10)}
	}
	del := &dynamodb.DeleteItemInput{TableName: aws.String(p.table), Key: projectKey(name), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#v": "version"}}
	if len(values) > 0 {
		del.ExpressionAttributeValues = values
	}
	_, err := p.db.DeleteItem(ctx, del)
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete project %s: %w", name, err)
	}
	return true, nil
}

func projS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func decodeProject(item map[string]types.AttributeValue) pipeline.ProjectDeclaration {
	s := func(k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	b := func(k string) bool {
		v, ok := item[k].(*types.AttributeValueMemberBOOL)
		return ok && v.Value
	}
	n := func(k string) int64 {
		if v, ok := item[k].(*types.AttributeValueMemberN); ok {
			i, _ := strconv.ParseInt(v.Value, 10, 64)
			return i
		}
		return 0
	}
	t := func(k string) time.Time {
		v, _ := time.Parse(timeLayout, s(k))
		return v
	}
	d := pipeline.ProjectDeclaration{
		Project:   pipeline.Project{Name: s(attrGSI1SK), Branch: s("branch"), SlackWebhookParameter: s("slackWebhookParameter")},
		Declared:  b("declared"),
		Removed:   b("removed"),
		BranchSet: b("branchSet"),
		Status: pipeline.ProjectStatus{State: pipeline.ProjectState(s("state")), Reason: s("reason"), StackStatus: s("stackStatus"),
			LastStepAt: t("lastStepAt"), SpecHash: s("specHash"), Generation: int(n("generation")), Progress: s("progress"),
			RetryAt: t("retryAt"), RepositoryCloneURL: s("cloneUrl"), Version: n("version")},
	}
	if d.Name == "" {
		if pk := s(attrPK); len(pk) > len("PROJECT#") {
			d.Name = pk[len("PROJECT#"):]
		}
	}
	if d.Declared {
		d.Source = pipeline.SourceTable
	}
	return d
}

// ProjectsMemory is Projects in memory (tests, lp replay, local runs). It keeps the same
// versions and conditions as the table.
type ProjectsMemory struct {
	mu    sync.Mutex
	items map[string]pipeline.ProjectDeclaration
	// Writes counts the conditional writes that succeeded (a re-run that changes nothing
	// writes nothing).
	Writes int
}

// NewProjectsMemory returns an empty store.
func NewProjectsMemory() *ProjectsMemory {
	return &ProjectsMemory{items: map[string]pipeline.ProjectDeclaration{}}
}

// Declare is Projects.Declare.
func (m *ProjectsMemory) Declare(_ context.Context, d pipeline.Project, branchSet bool, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	it := m.items[d.Name]
	it.Name, it.Declared, it.Removed, it.Source = d.Name, true, false, pipeline.SourceTable
	if branchSet && d.Branch != "" {
		it.Branch, it.BranchSet = d.Branch, true
	}
	if d.SlackWebhookParameter != "" {
		it.SlackWebhookParameter = d.SlackWebhookParameter
	}
	it.Status.Version++
	m.items[d.Name] = it
	m.Writes++
	return nil
}

// Remove is Projects.Remove.
func (m *ProjectsMemory) Remove(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[name]
	if !ok {
		return fmt.Errorf("project %s: %w", name, pipeline.ErrNotFound)
	}
	it.Removed = true
	it.Status.Version++
	m.items[name] = it
	m.Writes++
	return nil
}

// ListProjects is Projects.ListProjects.
func (m *ProjectsMemory) ListProjects(context.Context) ([]pipeline.ProjectDeclaration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pipeline.ProjectDeclaration
	for _, k := range slices.Sorted(maps.Keys(m.items)) {
		out = append(out, m.items[k])
	}
	return out, nil
}

// GetProject is Projects.GetProject.
func (m *ProjectsMemory) GetProject(_ context.Context, name string) (pipeline.ProjectDeclaration, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[name]
	return it, ok, nil
}

// PutStatus is Projects.PutStatus.
func (m *ProjectsMemory) PutStatus(_ context.Context, name string, prev int64, st pipeline.ProjectStatus) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it := m.items[name]
	if it.Status.Version != prev {
		return false, nil
	}
	it.Name = name
	st.Version = prev + 1
	it.Status = st
	m.items[name] = it
	m.Writes++
	return true, nil
}

// DeleteProject is Projects.DeleteProject.
func (m *ProjectsMemory) DeleteProject(_ context.Context, name string, prev int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if it, ok := m.items[name]; ok && it.Status.Version != prev {
		return false, nil
	}
	delete(m.items, name)
	m.Writes++
	return true, nil
}
