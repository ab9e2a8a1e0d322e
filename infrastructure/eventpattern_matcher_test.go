package infrastructure

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// EventPattern is a compiled Amazon EventBridge event pattern: the "EventPattern" of an
// AWS::Events::Rule. It exists so that tests can prove a rule matches the sample events in
// events/ (and rejects the others) without an AWS account.
//
// Supported, with EventBridge's semantics:
//   - exact values: strings, numbers (compared as numbers), true, false, null;
//   - {"prefix": "x"}, {"suffix": "x"}, each also as {"prefix": {"equals-ignore-case": "x"}};
//   - {"equals-ignore-case": "x"}, {"wildcard": "a*b"};
//   - {"anything-but": v} with v a value, a list of values, or {"prefix"|"suffix"|
//     "equals-ignore-case"|"wildcard": value or list};
//   - {"numeric": [">", 0, "<=", 5]} and {"exists": true|false};
//   - nested objects, and "$or": [pattern, pattern, ...].
//
// Matching: every field of a pattern object must match (AND); a field's list matches when any
// of its entries matches any of the event's values there (OR); an array in the event offers each
// element. A missing field matches only {"exists": false}. Operators EventBridge has and this
// type lacks ("cidr") are rejected when the pattern is compiled, never silently ignored.
type EventPattern struct {
	root *objectPattern
}

type objectPattern struct {
	fields []fieldPattern
	// anyOf holds each "$or" of the object: every one must have a matching alternative.
	anyOf [][]*objectPattern
}

type fieldPattern struct {
	key    string
	nested *objectPattern // the pattern's value is an object
	leaf   []matcher      // the pattern's value is a list
}

// matcher is one entry of a leaf list. Only existence matchers see missing fields.
type matcher interface {
	match(v any) bool
}

// ParseEventPattern compiles a pattern given as JSON text.
func ParseEventPattern(data []byte) (*EventPattern, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	return NewEventPattern(v)
}

// NewEventPattern compiles a pattern that was already decoded from JSON or YAML (maps with
// string keys, slices, strings, numbers, booleans and nil). It reports the first construct
// EventBridge would reject, with its path.
func NewEventPattern(pattern any) (*EventPattern, error) {
	obj, ok := pattern.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("event pattern: want a JSON object, got %s", kind(pattern))
	}
	root, err := compileObject(obj, "")
	if err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	return &EventPattern{root: root}, nil
}

// Match reports whether the event, given as JSON text, matches the pattern.
func (p *EventPattern) Match(event []byte) (bool, error) {
	var v any
	if err := json.Unmarshal(event, &v); err != nil {
		return false, fmt.Errorf("event: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return false, fmt.Errorf("event: want a JSON object, got %s", kind(v))
	}
	return p.root.match(obj), nil
}

// MatchValue reports whether an already decoded event object matches the pattern.
func (p *EventPattern) MatchValue(event map[string]any) bool {
	return p.root.match(event)
}

// Mismatch explains a failed match: the path of the first pattern field that the event does not
// satisfy ("detail.referenceName"), or "" when the event matches.
func (p *EventPattern) Mismatch(event map[string]any) string {
	return p.root.mismatch(event, "")
}

func compileObject(obj map[string]any, path string) (*objectPattern, error) {
	if len(obj) == 0 {
		return nil, fmt.Errorf("%s: empty object", orRoot(path))
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := &objectPattern{}
	for _, k := range keys {
		v, at := obj[k], join(path, k)
		if k == "$or" {
			alts, err := compileOr(v, at)
			if err != nil {
				return nil, err
			}
			out.anyOf = append(out.anyOf, alts)
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			nested, err := compileObject(v, at)
			if err != nil {
				return nil, err
			}
			out.fields = append(out.fields, fieldPattern{key: k, nested: nested})
		case []any:
			leaf, err := compileLeaf(v, at)
			if err != nil {
				return nil, err
			}
			out.fields = append(out.fields, fieldPattern{key: k, leaf: leaf})
		default:
			return nil, fmt.Errorf("%s: want a list of values or an object, got %s (write [%v])", at, kind(v), v)
		}
	}
	return out, nil
}

func compileOr(v any, path string) ([]*objectPattern, error) {
	list, ok := v.([]any)
	if !ok || len(list) < 2 {
		return nil, fmt.Errorf("%s: want a list of at least two patterns", path)
	}
	alts := make([]*objectPattern, 0, len(list))
	for i, e := range list {
		obj, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: want an object, got %s", path, i, kind(e))
		}
		alt, err := compileObject(obj, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		alts = append(alts, alt)
	}
	return alts, nil
}

func compileLeaf(list []any, path string) ([]matcher, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: empty list matches nothing", path)
	}
	out := make([]matcher, 0, len(list))
	for i, e := range list {
		at := fmt.Sprintf("%s[%d]", path, i)
		switch e := e.(type) {
		case map[string]any:
			m, err := compileOperator(e, at)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		case []any:
			return nil, fmt.Errorf("%s: a list inside a list is not a pattern", at)
		default:
			v, err := scalar(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			out = append(out, exact{v})
		}
	}
	return out, nil
}

func compileOperator(op map[string]any, path string) (matcher, error) {
	if len(op) != 1 {
		return nil, fmt.Errorf("%s: an operator object holds exactly one operator, got %d keys", path, len(op))
	}
	for name, arg := range op {
		at := path + "." + name
		switch name {
		case "prefix", "suffix":
			s, ignoreCase, err := stringOrIgnoreCase(arg, at)
			if err != nil {
				return nil, err
			}
			return affix{suffix: name == "suffix", s: s, ignoreCase: ignoreCase}, nil
		case "equals-ignore-case":
			s, ok := arg.(string)
			if !ok {
				return nil, fmt.Errorf("%s: want a string", at)
			}
			return equalFold{s}, nil
		case "wildcard":
			s, ok := arg.(string)
			if !ok {
				return nil, fmt.Errorf("%s: want a string", at)
			}
			return wildcard{s}, nil
		case "exists":
			b, ok := arg.(bool)
			if !ok {
				return nil, fmt.Errorf("%s: want true or false", at)
			}
			return exists{b}, nil
		case "numeric":
			return compileNumeric(arg, at)
		case "anything-but":
			return compileAnythingBut(arg, at)
		default:
			return nil, fmt.Errorf("%s: unsupported operator %q", path, name)
		}
	}
	panic("unreachable")
}

func stringOrIgnoreCase(arg any, path string) (string, bool, error) {
	switch a := arg.(type) {
	case string:
		return a, false, nil
	case map[string]any:
		s, ok := a["equals-ignore-case"].(string)
		if len(a) == 1 && ok {
			return s, true, nil
		}
	}
	return "", false, fmt.Errorf("%s: want a string or {\"equals-ignore-case\": string}", path)
}

func compileNumeric(arg any, path string) (matcher, error) {
	list, ok := arg.([]any)
	if !ok || len(list) == 0 || len(list)%2 != 0 || len(list) > 4 {
		return nil, fmt.Errorf("%s: want [op, number] or [op, number, op, number]", path)
	}
	var n numeric
	for i := 0; i < len(list); i += 2 {
		op, ok := list[i].(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: want an operator", path, i)
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return nil, fmt.Errorf("%s[%d]: unknown comparison %q", path, i, op)
		}
		f, ok := number(list[i+1])
		if !ok {
			return nil, fmt.Errorf("%s[%d]: want a number", path, i+1)
		}
		n.conds = append(n.conds, numericCond{op, f})
	}
	return n, nil
}

func compileAnythingBut(arg any, path string) (matcher, error) {
	var ab anythingBut
	switch a := arg.(type) {
	case map[string]any:
		if len(a) != 1 {
			return nil, fmt.Errorf("%s: want exactly one of prefix, suffix, equals-ignore-case, wildcard", path)
		}
		for name, v := range a {
			var list []string
			switch v := v.(type) {
			case string:
				list = []string{v}
			case []any:
				for _, e := range v {
					s, ok := e.(string)
					if !ok {
						return nil, fmt.Errorf("%s.%s: want strings", path, name)
					}
					list = append(list, s)
				}
			}
			if len(list) == 0 {
				return nil, fmt.Errorf("%s.%s: want a string or a list of strings", path, name)
			}
			for _, s := range list {
				switch name {
				case "prefix", "suffix":
					ab.not = append(ab.not, affix{suffix: name == "suffix", s: s})
				case "equals-ignore-case":
					ab.not = append(ab.not, equalFold{s})
				case "wildcard":
					ab.not = append(ab.not, wildcard{s})
				default:
					return nil, fmt.Errorf("%s: unsupported anything-but operator %q", path, name)
				}
			}
		}
	case []any:
		if len(a) == 0 {
			return nil, fmt.Errorf("%s: empty list", path)
		}
		for i, e := range a {
			v, err := scalar(e)
			if err != nil || v == nil {
				return nil, fmt.Errorf("%s[%d]: want a string or a number", path, i)
			}
			ab.not = append(ab.not, exact{v})
		}
	default:
		v, err := scalar(arg)
		if err != nil || v == nil {
			return nil, fmt.Errorf("%s: want a value, a list or an operator object", path)
		}
		ab.not = append(ab.not, exact{v})
	}
	return ab, nil
}

func (o *objectPattern) match(event map[string]any) bool {
	return o.mismatch(event, "") == ""
}

// mismatch returns the path of the first field that keeps the event from matching, or "".
func (o *objectPattern) mismatch(event map[string]any, path string) string {
	for _, f := range o.fields {
		at := join(path, f.key)
		child, present := event[f.key]
		if f.nested != nil {
			if miss := f.nestedMismatch(child, present, at); miss != "" {
				return miss
			}
			continue
		}
		values := flatten(child)
		if !present || (isList(child) && len(values) == 0) {
			if !anyExistsFalse(f.leaf) {
				return at
			}
			continue
		}
		if !matchAny(f.leaf, values) {
			return at
		}
	}
	for _, alts := range o.anyOf {
		ok := false
		for _, alt := range alts {
			if alt.match(event) {
				ok = true
				break
			}
		}
		if !ok {
			return join(path, "$or")
		}
	}
	return ""
}

// nestedMismatch matches a nested pattern object. A missing or non-object field is matched as
// an empty object, so that only {"exists": false} leaves inside it can hold; an array of
// objects matches when one of its elements does.
func (f fieldPattern) nestedMismatch(child any, present bool, path string) string {
	var candidates []map[string]any
	if present {
		for _, v := range flatten(child) {
			if m, ok := v.(map[string]any); ok {
				candidates = append(candidates, m)
			}
		}
	}
	if len(candidates) == 0 {
		candidates = []map[string]any{{}}
	}
	first := ""
	for _, c := range candidates {
		miss := f.nested.mismatch(c, path)
		if miss == "" {
			return ""
		}
		if first == "" {
			first = miss
		}
	}
	return first
}

func matchAny(ms []matcher, values []any) bool {
	for _, m := range ms {
		for _, v := range values {
			if m.match(v) {
				return true
			}
		}
	}
	return false
}

func anyExistsFalse(ms []matcher) bool {
	for _, m := range ms {
		if e, ok := m.(exists); ok && !e.want {
			return true
		}
	}
	return false
}

// flatten returns the values an event field offers: the elements of (nested) arrays, or the
// value itself.
func flatten(v any) []any {
	list, ok := v.([]any)
	if !ok {
		return []any{v}
	}
	var out []any
	for _, e := range list {
		out = append(out, flatten(e)...)
	}
	return out
}

func isList(v any) bool {
	_, ok := v.([]any)
	return ok
}

// exact matches a string, a number (numerically), a boolean or null.
type exact struct{ v any }

func (e exact) match(v any) bool {
	switch want := e.v.(type) {
	case nil:
		return v == nil
	case string:
		s, ok := v.(string)
		return ok && s == want
	case bool:
		b, ok := v.(bool)
		return ok && b == want
	case float64:
		f, ok := number(v)
		return ok && f == want
	}
	return false
}

type affix struct {
	suffix     bool
	s          string
	ignoreCase bool
}

func (a affix) match(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	want := a.s
	if a.ignoreCase {
		s, want = strings.ToLower(s), strings.ToLower(want)
	}
	if a.suffix {
		return strings.HasSuffix(s, want)
	}
	return strings.HasPrefix(s, want)
}

type equalFold struct{ s string }

func (e equalFold) match(v any) bool {
	s, ok := v.(string)
	return ok && strings.EqualFold(s, e.s)
}

// wildcard matches a string against a glob where "*" stands for any run of characters and
// "\*" for a literal star.
type wildcard struct{ glob string }

func (w wildcard) match(v any) bool {
	s, ok := v.(string)
	return ok && globMatch(w.glob, s)
}

func globMatch(glob, s string) bool {
	// Split the glob into literal parts at unescaped stars.
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(glob); i++ {
		switch {
		case glob[i] == '\\' && i+1 < len(glob) && glob[i+1] == '*':
			cur.WriteByte('*')
			i++
		case glob[i] == '*':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(glob[i])
		}
	}
	parts = append(parts, cur.String())
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

type exists struct{ want bool }

// match sees only present fields: {"exists": true} holds, {"exists": false} does not.
func (e exists) match(any) bool { return e.want }

type numericCond struct {
	op string
	n  float64
}

type numeric struct{ conds []numericCond }

func (n numeric) match(v any) bool {
	f, ok := number(v)
	if !ok {
		return false
	}
	for _, c := range n.conds {
		var ok bool
		switch c.op {
		case "=":
			ok = f == c.n
		case "<":
			ok = f < c.n
		case "<=":
			ok = f <= c.n
		case ">":
			ok = f > c.n
		case ">=":
			ok = f >= c.n
		}
		if !ok {
			return false
		}
	}
	return true
}

// anythingBut matches a present scalar that matches none of not.
type anythingBut struct{ not []matcher }

func (a anythingBut) match(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	for _, m := range a.not {
		if m.match(v) {
			return false
		}
	}
	return true
}

// scalar normalizes a pattern value: numbers become float64.
func scalar(v any) (any, error) {
	switch v := v.(type) {
	case nil, string, bool:
		return v, nil
	}
	if f, ok := number(v); ok {
		return f, nil
	}
	return nil, fmt.Errorf("want a string, number, boolean or null, got %s", kind(v))
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n)
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	if _, ok := number(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "pattern"
	}
	return path
}
