// Package policy is the policy gate: pure checks of a CloudFormation template against the
// rules that keep a pushed template from taking over the account (roles without the
// permissions boundary, trust beyond the allowed service principals, wildcard actions,
// resource types outside an allow-list), and the IAM widening between two templates.
//
// Nothing here calls AWS: the deployer, `lp policy check` and the tests feed it template
// bytes and act on what it returns.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxTemplateBytes is the largest template Parse accepts: CloudFormation's own limit for a
// template read from S3 (1 MB). A larger one cannot be deployed anyway.
const MaxTemplateBytes = 1 << 20

// maxDepth bounds the nesting of a template, so that a crafted input cannot exhaust the stack.
const maxDepth = 200

// maxIfDepth bounds Fn::If inside Fn::If. The gate checks every branch, and n nested
// conditions are 2^n variants of a value: deeper nesting would let a template make the gate
// slow; real templates nest one or two.
const maxIfDepth = 4

// Template is a CloudFormation template decoded to plain values (map[string]any, []any,
// string, int, float64, bool, nil) with every intrinsic function in its long form:
// {"Ref": "X"}, {"Fn::GetAtt": ["A", "B"]}, {"Fn::Sub": "…"}, {"Condition": "C"}.
type Template struct {
	Root map[string]any
}

// ErrNotTemplate is wrapped by Parse's errors for input that is not a template at all.
var ErrNotTemplate = errors.New("not a CloudFormation template")

// Parse decodes a template written in YAML (with the short-form tags !Ref, !Sub, !GetAtt …)
// or JSON (which YAML reads as well). It refuses what CloudFormation would read differently
// from a person: duplicate keys (YAML keeps the last, a reviewer sees the first), anchors and
// aliases, unknown tags, more than one document, and a top level that is not a mapping.
func Parse(data []byte) (*Template, error) {
	if len(data) > MaxTemplateBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than CloudFormation's %d", ErrNotTemplate, len(data), MaxTemplateBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotTemplate, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: want exactly one YAML document", ErrNotTemplate)
	}
	v, err := fromNode(&doc, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotTemplate, err)
	}
	if d := ifDepth(v); d > maxIfDepth {
		return nil, fmt.Errorf("%w: Fn::If nested %d deep, more than %d", ErrNotTemplate, d, maxIfDepth)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the top level is not a mapping", ErrNotTemplate)
	}
	if _, ok := root["Resources"].(map[string]any); !ok {
		return nil, fmt.Errorf("%w: no Resources mapping", ErrNotTemplate)
	}
	return &Template{Root: root}, nil
}

// shortForms are the short-form tags and the long-form keys they stand for.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub",
	"!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split", "!If": "Fn::If",
	"!Equals": "Fn::Equals", "!Not": "Fn::Not", "!And": "Fn::And", "!Or": "Fn::Or",
	"!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64", "!GetAZs": "Fn::GetAZs",
	"!ImportValue": "Fn::ImportValue", "!Cidr": "Fn::Cidr", "!Transform": "Fn::Transform",
	"!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

func fromNode(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested more than %d levels", n.Line, maxDepth)
	}
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return nil, fmt.Errorf("line %d: YAML anchors and aliases are not accepted", n.Line)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		key, ok := shortForms[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		var arg any
		if n.Kind == yaml.ScalarNode {
			arg = n.Value
			if key == "Fn::GetAtt" {
				res, attr, found := strings.Cut(n.Value, ".")
				if !found {
					return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, n.Value)
				}
				arg = []any{res, attr}
			}
		} else {
			plain := *n
			plain.Tag = ""
			var err error
			if arg, err = fromNode(&plain, depth+1); err != nil {
				return nil, err
			}
		}
		return map[string]any{key: arg}, nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("want one YAML document")
		}
		return fromNode(n.Content[0], depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" || (k.Tag != "" && k.Tag != "!!str" && k.Tag != "!!int" && k.Tag != "!!bool" && k.Tag != "!!float" && k.Tag != "!!null") {
				return nil, fmt.Errorf("line %d: keys must be plain strings", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			val, err := fromNode(v, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := fromNode(c, depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!timestamp", "!!binary":
			return n.Value, nil // CloudFormation reads 2012-10-17 as a string
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		if f, ok := v.(float64); ok && f != f {
			return n.Value, nil // .nan: keep the text, NaN breaks comparisons and JSON
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// ifDepth returns the deepest nesting of Fn::If inside v.
func ifDepth(v any) int {
	deepest := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			d := ifDepth(e)
			if k == "Fn::If" {
				d++
			}
			deepest = max(deepest, d)
		}
	case []any:
		for _, e := range x {
			deepest = max(deepest, ifDepth(e))
		}
	}
	return deepest
}

// Section returns a top-level mapping (Parameters, Resources …), or nil.
func (t *Template) Section(name string) map[string]any {
	m, _ := t.Root[name].(map[string]any)
	return m
}

// ResourceIDs returns the logical IDs of the resources, sorted.
func (t *Template) ResourceIDs() []string { return sortedKeys(t.Section("Resources")) }

// Resource returns a resource's type and properties (nil when absent or malformed).
func (t *Template) Resource(id string) (typ string, props map[string]any) {
	r, _ := t.Section("Resources")[id].(map[string]any)
	typ, _ = r["Type"].(string)
	props, _ = r["Properties"].(map[string]any)
	return typ, props
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

// at follows a path of map keys and list indexes.
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
			if !ok || k < 0 || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
