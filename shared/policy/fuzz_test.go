package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func contains(s, sub string) bool           { return strings.Contains(s, sub) }
func replaceOnce(s, old, new string) string { return strings.Replace(s, old, new, 1) }

// FuzzParse feeds arbitrary bytes to the parser and, when they parse, to the gate and the
// widening: none may panic, every violation names its rule, and a template never widens
// against itself. Seeds: the refused samples, the shipped templates, and small inputs that
// exercise the short forms. Found inputs are kept in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.yml", "testdata/*.json", "../../infrastructure/*.yml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(role(`              - { Effect: Allow, Action: !If [C, "*", [s3:GetObject]], Resource: !Ref Star }`)))
	f.Add([]byte("Resources: {R: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {Statement: {Effect: Allow, Principal: '*'}}}}}"))
	f.Add([]byte("Resources:\n  A: !GetAtt B.C\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tp, err := Parse(data)
		if err != nil {
			return
		}
		for _, v := range Check(tp, DefaultConfig()) {
			if v.Rule == "" || v.Message == "" {
				t.Fatalf("violation without a rule or message: %+v", v)
			}
		}
		if w := Widening(tp, tp); len(w) != 0 {
			t.Fatalf("a template widens against itself: %v", w)
		}
		Widening(nil, tp)
	})
}
