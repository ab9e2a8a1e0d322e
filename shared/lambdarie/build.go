//go:build unix

package lambdarie

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode"
)

const (
	// Module is this repository's module path.
	Module = "github.com/lambda-pipeline/lambda-pipeline"
	// RIEModule is the emulator's module; go.mod pins its version.
	RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator"
	// RIEPackage is the emulator's main package.
	RIEPackage = RIEModule + "/cmd/aws-lambda-rie"

	// EnvRIE names a prebuilt aws-lambda-rie to use instead of building the pinned one.
	EnvRIE = "LAMBDARIE_RIE"
)

// BuildFlags are the flags of every bootstrap build: the Makefile's GOFLAGS_LAMBDA, so that a
// local binary is the one Lambda runs, only for another GOOS/GOARCH.
var BuildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w"}

// RepoRoot returns the nearest directory at or above dir whose go.mod declares Module.
// An empty dir means the working directory.
func RepoRoot(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(b) == Module {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod for %s at or above %s", Module, dir)
		}
		d = parent
	}
}

func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// Functions lists the function directories under repoRoot/functions (those holding Go code), sorted.
func Functions(repoRoot string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(repoRoot, "functions"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		gos, _ := filepath.Glob(filepath.Join(repoRoot, "functions", e.Name(), "*.go"))
		for _, g := range gos {
			if !strings.HasSuffix(g, "_test.go") {
				names = append(names, e.Name())
				break
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

// LogicalID is the SAM logical id the project gives a function directory: on-pipeline-event →
// OnPipelineEventFunction.
func LogicalID(function string) string {
	var b strings.Builder
	up := true
	for _, r := range function {
		if r == '-' || r == '_' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String() + "Function"
}

// samTarget matches the Makefile lines that map a SAM logical id to a function directory:
// $(eval $(call sam_target,OnPushFunction,on-push)).
var samTarget = regexp.MustCompile(`call\s+sam_target\s*,\s*([A-Za-z0-9]+)\s*,\s*([A-Za-z0-9_.-]+)\s*\)`)

// ResolveFunction maps name — a directory under functions/ (on-pipeline-event) or a SAM logical
// id (OnPipelineEventFunction, from the Makefile's sam_target lines or derived by LogicalID),
// case-insensitively — to the directory name. The error of an unknown name lists the functions.
func ResolveFunction(repoRoot, name string) (string, error) {
	fns, err := Functions(repoRoot)
	if err != nil {
		return "", fmt.Errorf("list functions: %w", err)
	}
	aliases := map[string]string{}
	for _, f := range fns {
		aliases[strings.ToLower(LogicalID(f))] = f
	}
	if mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile")); err == nil {
		for _, m := range samTarget.FindAllStringSubmatch(string(mk), -1) {
			aliases[strings.ToLower(m[1])] = m[2]
		}
	}
	want := strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(name), "functions/"), "/")
	for _, f := range fns {
		if strings.EqualFold(f, want) {
			return f, nil
		}
	}
	if f, ok := aliases[strings.ToLower(want)]; ok {
		for _, g := range fns {
			if g == f {
				return f, nil
			}
		}
	}
	return "", &UnknownFunctionError{Name: name, Available: fns}
}

// UnknownFunctionError is ResolveFunction's error for a name that is no function.
type UnknownFunctionError struct {
	Name      string
	Available []string
}

func (e *UnknownFunctionError) Error() string {
	ids := make([]string, len(e.Available))
	for i, f := range e.Available {
		ids[i] = f + " (" + LogicalID(f) + ")"
	}
	return fmt.Sprintf("unknown function %q; available: %s", e.Name, strings.Join(ids, ", "))
}

// hostEnv is the environment of a go build for this machine, whatever GOOS/GOARCH the caller
// exported (for `sam build`, say).
func hostEnv() []string {
	env := make([]string, 0, len(os.Environ())+3)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "GOOS" || k == "GOARCH" || k == "CGO_ENABLED" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
}

// Build compiles ./functions/<function> (a directory name or SAM logical id) of repoRoot for this
// machine, with CGO_ENABLED=0 and BuildFlags, into outDir/bootstrap, and returns that path.
func Build(ctx context.Context, repoRoot, function, outDir string) (string, error) {
	fn, err := ResolveFunction(repoRoot, function)
	if err != nil {
		return "", err
	}
	return buildPackage(ctx, repoRoot, "./functions/"+fn, fn, outDir)
}

// HelloPackage is a Go hello-world Lambda function (aws-lambda-go, one handler returning
// "hello"): the baseline whose cold start is the emulator's, the Go runtime's and
// aws-lambda-go's, none of the project's.
const HelloPackage = Module + "/shared/lambdarie/internal/hello"

// HelloFunction is the name the cold-start figures give HelloPackage.
const HelloFunction = "hello-world"

// BuildHello compiles HelloPackage of repoRoot as Build compiles a function (for this machine,
// CGO_ENABLED=0, BuildFlags) into outDir/bootstrap, and returns that path.
func BuildHello(ctx context.Context, repoRoot, outDir string) (string, error) {
	return buildPackage(ctx, repoRoot, HelloPackage, HelloFunction, outDir)
}

func buildPackage(ctx context.Context, repoRoot, pkg, name, outDir string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	out, err := filepath.Abs(filepath.Join(outDir, "bootstrap"))
	if err != nil {
		return "", err
	}
	args := append([]string{"build"}, BuildFlags...)
	args = append(args, "-o", out, pkg)
	if err := goCmd(ctx, repoRoot, args...); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	return out, nil
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, goExe(), args...)
	cmd.Dir = dir
	cmd.Env = hostEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// goExe is the go command: $GOROOT/bin/go when GOROOT is set (as under `go test` and `go run`),
// else go on PATH.
func goExe() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// RIEVersion returns the emulator version that repoRoot's go.mod pins.
func RIEVersion(repoRoot string) (string, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(f) >= 2 && f[0] == RIEModule {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s/go.mod does not require %s", repoRoot, RIEModule)
}

var (
	rieMu    sync.Mutex
	rieBuilt = map[string]string{} // cache path → built in this process
)

// RIEBinary returns the path of the aws-lambda-rie that repoRoot's go.mod pins, building it
// once (`go build` in repoRoot, so the pin applies) into a cache directory keyed by version,
// GOOS and GOARCH: os.UserCacheDir()/lambda-pipeline/aws-lambda-rie/..., or the temp directory
// when there is no user cache directory. LAMBDARIE_RIE, when set, names a binary to use instead.
func RIEBinary(ctx context.Context, repoRoot string) (string, error) {
	if p := os.Getenv(EnvRIE); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", EnvRIE, err)
		}
		return p, nil
	}
	version, err := RIEVersion(repoRoot)
	if err != nil {
		return "", err
	}
	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "lambda-pipeline", "aws-lambda-rie", version, runtime.GOOS+"_"+runtime.GOARCH)
	bin := filepath.Join(dir, "aws-lambda-rie")

	rieMu.Lock()
	defer rieMu.Unlock()
	if _, ok := rieBuilt[bin]; ok {
		return bin, nil
	}
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		rieBuilt[bin] = bin
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Build beside the target and rename: concurrent builders (other test binaries, scripts)
	// never see a half-written file.
	tmp, err := os.CreateTemp(dir, "aws-lambda-rie.*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := goCmd(ctx, repoRoot, "build", "-trimpath", "-o", tmp.Name(), RIEPackage); err != nil {
		return "", fmt.Errorf("build the runtime interface emulator %s@%s: %w", RIEModule, version, err)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", errors.Join(errors.New("install the runtime interface emulator"), err)
	}
	rieBuilt[bin] = bin
	return bin, nil
}
