package ebevent

import (
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// RepositoryDetail is the detail of "CodeCommit Repository State Change", all event kinds:
// referenceCreated, referenceUpdated, referenceDeleted (branches and tags), and the merge and
// unreferenced-commit kinds that carry merge fields instead of a reference.
type RepositoryDetail struct {
	Event                      string `json:"event"`
	RepositoryName             string `json:"repositoryName"`
	RepositoryID               string `json:"repositoryId"`
	ReferenceType              string `json:"referenceType,omitempty"`
	ReferenceName              string `json:"referenceName,omitempty"`
	ReferenceFullName          string `json:"referenceFullName,omitempty"`
	CommitID                   string `json:"commitId,omitempty"`
	OldCommitID                string `json:"oldCommitId,omitempty"`
	BaseCommitID               string `json:"baseCommitId,omitempty"`
	SourceCommitID             string `json:"sourceCommitId,omitempty"`
	DestinationCommitID        string `json:"destinationCommitId,omitempty"`
	MergeOption                string `json:"mergeOption,omitempty"`
	ConflictDetailsLevel       string `json:"conflictDetailsLevel,omitempty"`
	ConflictResolutionStrategy string `json:"conflictResolutionStrategy,omitempty"`
}

// Reference kinds of CodeCommit events.
var pushKinds = map[string]bool{
	pipeline.PushReferenceCreated:    true,
	pipeline.PushReferenceUpdated:    true,
	pipeline.PushReferenceDeleted:    true,
	"unreferencedMergeCommitCreated": true,
	"commentOnCommitCreated":         true,
	"commentOnCommitUpdated":         true,
	"commentOnPullRequestCreated":    true,
	"commentOnPullRequestUpdated":    true,
}

func push(env Envelope, t time.Time) (pipeline.Push, error) {
	if env.Source != "" && env.Source != SourceCodeCommit {
		return pipeline.Push{}, unsupported("source", "%q is not %q", env.Source, SourceCodeCommit)
	}
	var d RepositoryDetail
	if err := strictUnmarshal(env.Detail, &d); err != nil {
		return pipeline.Push{}, jsonError("detail", err)
	}
	if d.Event == "" {
		return pipeline.Push{}, malformed("detail.event", "missing")
	}
	if !pushKinds[d.Event] {
		return pipeline.Push{}, unsupported("detail.event", "%q is not a CodeCommit repository event this project knows", d.Event)
	}
	if d.RepositoryName == "" {
		return pipeline.Push{}, malformed("detail.repositoryName", "missing")
	}
	switch d.Event {
	case pipeline.PushReferenceCreated, pipeline.PushReferenceUpdated, pipeline.PushReferenceDeleted:
		if d.ReferenceType != "branch" && d.ReferenceType != "tag" {
			if d.ReferenceType == "" {
				return pipeline.Push{}, malformed("detail.referenceType", "missing")
			}
			return pipeline.Push{}, malformed("detail.referenceType", "%q is neither branch nor tag", d.ReferenceType)
		}
		if d.ReferenceName == "" {
			return pipeline.Push{}, malformed("detail.referenceName", "missing")
		}
		// A deleted reference points at no commit; the others must.
		if d.Event != pipeline.PushReferenceDeleted && d.CommitID == "" {
			return pipeline.Push{}, malformed("detail.commitId", "missing")
		}
	}
	p := pipeline.Push{
		ID: env.ID, Time: t, Account: env.Account, Region: env.Region,
		Repository: d.RepositoryName, Kind: d.Event,
		RefType: d.ReferenceType, RefName: d.ReferenceName, RefFullName: d.ReferenceFullName,
		CommitID: d.CommitID, OldCommitID: d.OldCommitID,
	}
	if p.ID == "" {
		p.ID = syntheticID(env)
	}
	return p, nil
}
