package infrastructure

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/awslabs/goformation/v7"
)

// checkSchema parses every AWS:: resource of a template with goformation, whose types are
// generated from the CloudFormation resource specification and reject unknown properties
// (a misspelled property name is otherwise only caught by CloudFormation, at deploy time)
// and values of the wrong type. Intrinsic functions become null first: goformation would
// resolve them to defaults or nil anyway, and null fits any property type. SAM's
// AWS::Serverless::* resources are skipped: goformation's SAM types lag behind SAM (no
// LoggingConfig, for one); checkFunctions covers them.
func checkSchema(t *tmpl) []string {
	var problems []string
	for _, id := range t.resourceIDs() {
		typ, _ := t.resource(id)
		if strings.HasPrefix(typ, "AWS::Serverless::") {
			continue
		}
		doc := map[string]any{
			"AWSTemplateFormatVersion": "2010-09-09",
			"Resources":                map[string]any{id: nullIntrinsics(t.section("Resources")[id])},
		}
		b, err := json.Marshal(doc)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", t.name, id, err))
			continue
		}
		if _, err := goformation.ParseJSON(b); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s (%s): %v", t.name, id, typ, err))
		}
	}
	return problems
}

func nullIntrinsics(v any) any {
	if _, _, ok := intrinsic(v); ok {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = nullIntrinsics(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = nullIntrinsics(e)
		}
		return out
	}
	return v
}
