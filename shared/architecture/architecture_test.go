package architecture

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/lambda-pipeline/lambda-pipeline/"

// The roles of the project's packages. A new package must be given one, so that the rules
// keep covering the whole tree.
var (
	domain   = []string{"shared/pipeline"}
	useCases = []string{"shared/recording", "shared/pushstart", "shared/reconcile", "shared/delivery", "shared/projects", "shared/digest"}
	adapters = []string{"shared/runstore", "shared/notify", "shared/enrich", "shared/codepipelineapi", "shared/deploy", "shared/ebevent"}
	// helpers are small packages with no I/O of their own beyond what their name says, that
	// adapters and use cases may share (dora: the delivery metrics, pure over the domain; policy: the template gate).
	helpers     = []string{"shared/console", "shared/s3url", "shared/stackevents", "shared/awsconfig", "shared/lambdaio", "shared/config", "shared/dora", "shared/policy"}
	testSupport = []string{"shared/awsfake", "shared/dynalitetest", "shared/notify/notifytest", "shared/testing/", "shared/lambdarie"}
	// wiring packages put adapters together.
	wiring = []string{"functions/", "cmd/", "infrastructure", "shared/architecture"}
)

type pkg struct {
	ImportPath string
	Imports    []string
}

func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./../../...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; the test runs from the wrong directory", len(pkgs))
	}
	return pkgs
}

// in reports whether path is one of the roles' packages (a trailing / matches a subtree).
func in(path string, role []string) bool {
	return slices.ContainsFunc(role, func(r string) bool {
		return path == r || strings.HasSuffix(r, "/") && strings.HasPrefix(path, r) || strings.HasPrefix(path, r+"/")
	})
}

func own(imports []string) []string {
	var out []string
	for _, i := range imports {
		if p, ok := strings.CutPrefix(i, module); ok {
			out = append(out, p)
		}
	}
	return out
}

func TestEveryPackageHasARole(t *testing.T) {
	for _, p := range packages(t) {
		if !in(p.ImportPath, domain) && !in(p.ImportPath, useCases) && !in(p.ImportPath, adapters) && !in(p.ImportPath, helpers) &&
			!in(p.ImportPath, testSupport) && !in(p.ImportPath, wiring) {
			t.Errorf("%s has no role in architecture_test.go", p.ImportPath)
		}
	}
}

func TestDomainImportsTheStandardLibraryOnly(t *testing.T) {
	for _, p := range packages(t) {
		if !in(p.ImportPath, domain) {
			continue
		}
		for _, i := range p.Imports {
			if strings.Contains(strings.SplitN(i, "/", 2)[0], ".") {
				t.Errorf("%s imports %s", p.ImportPath, i)
			}
		}
	}
}

func TestUseCasesKnowNoStoreSenderOrSDK(t *testing.T) {
	for _, p := range packages(t) {
		if !in(p.ImportPath, useCases) {
			continue
		}
		for _, i := range p.Imports {
			if strings.HasPrefix(i, "github.com/aws/aws-sdk-go-v2") {
				t.Errorf("%s imports the AWS SDK (%s)", p.ImportPath, i)
			}
		}
		for _, i := range own(p.Imports) {
			switch {
			case in(i, useCases):
				t.Errorf("%s imports another use case, %s", p.ImportPath, i)
			case i == "shared/runstore" || i == "shared/enrich" || i == "shared/codepipelineapi" || i == "shared/deploy":
				t.Errorf("%s imports the adapter %s", p.ImportPath, i)
			case i == "shared/notify" && p.ImportPath != "shared/delivery":
				// delivery composes the message and sends it through notify.Channel.
				t.Errorf("%s imports %s", p.ImportPath, i)
			}
		}
	}
}

func TestAdaptersDoNotKnowEachOther(t *testing.T) {
	for _, p := range packages(t) {
		if !in(p.ImportPath, adapters) {
			continue
		}
		for _, i := range own(p.Imports) {
			if in(i, adapters) && i != p.ImportPath {
				t.Errorf("%s imports the adapter %s", p.ImportPath, i)
			}
			if in(i, useCases) {
				t.Errorf("%s imports the use case %s", p.ImportPath, i)
			}
		}
	}
}

func TestProductionCodeImportsNoTestSupport(t *testing.T) {
	for _, p := range packages(t) {
		if in(p.ImportPath, testSupport) {
			continue
		}
		for _, i := range own(p.Imports) {
			if in(i, testSupport) {
				t.Errorf("%s imports the test support %s", p.ImportPath, i)
			}
		}
	}
}
