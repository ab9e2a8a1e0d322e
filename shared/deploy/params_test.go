package deploy

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

const appParams = `{"stackName": "my-lambda-app",
 "templatePath": "SourceArtifact::infrastructure/lambda.yml",
 "capabilities": ["CAPABILITY_IAM"],
 "roleArn": "arn:aws:iam::123456789012:role/my-lambda-control-plane-AppStackRole-1A2B3C",
 "parameterOverrides": {
   "ArtifactsBucket": {"artifact": "BuildOutput", "attr": "bucket"},
   "ArtifactKey": {"artifact": "BuildOutput", "attr": "key"},
   "LogLevel": "DEBUG"}}`

func TestParseUserParametersApp(t *testing.T) {
	p, err := ParseUserParameters(appParams)
	if err != nil {
		t.Fatal(err)
	}
	want := UserParameters{
		StackName:    "my-lambda-app",
		TemplatePath: "SourceArtifact::infrastructure/lambda.yml",
		Capabilities: []string{"CAPABILITY_IAM"},
		RoleARN:      "arn:aws:iam::123456789012:role/my-lambda-control-plane-AppStackRole-1A2B3C",
		ParameterOverrides: map[string]ParameterOverride{
			"ArtifactsBucket": {From: &ArtifactAttribute{Artifact: "BuildOutput", Attr: AttrBucket}},
			"ArtifactKey":     {From: &ArtifactAttribute{Artifact: "BuildOutput", Attr: AttrKey}},
			"LogLevel":        {Literal: "DEBUG"},
		},
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	artifact, file := p.Template()
	if artifact != "SourceArtifact" || file != "infrastructure/lambda.yml" {
		t.Errorf("Template() = %q, %q", artifact, file)
	}

	locations := map[string][2]string{
		"SourceArtifact": {"my-bucket", "my-lambda-pipeline/SourceArti/Xk3pQ9v"},
		"BuildOutput":    {"my-bucket", "my-lambda-pipeline/BuildOutpu/Qm7tR2w"},
	}
	got, err := p.ResolveOverrides(func(name string) (string, string, bool) {
		l, ok := locations[name]
		return l[0], l[1], ok
	})
	if err != nil {
		t.Fatal(err)
	}
	wantValues := map[string]string{
		"ArtifactsBucket": "my-bucket",
		"ArtifactKey":     "my-lambda-pipeline/BuildOutpu/Qm7tR2w",
		"LogLevel":        "DEBUG",
	}
	if !reflect.DeepEqual(got, wantValues) {
		t.Errorf("ResolveOverrides = %v, want %v", got, wantValues)
	}

	// The job lacks the artifact: a configuration error naming it.
	_, err = p.ResolveOverrides(func(string) (string, string, bool) { return "", "", false })
	if err == nil || !strings.Contains(err.Error(), `"BuildOutput"`) {
		t.Errorf("missing artifact: err = %v", err)
	}
}

// The lead's sample jobs in events/ must parse: they are what the deployer is tested with.
func TestParseUserParametersSampleJobs(t *testing.T) {
	for _, name := range []string{"job-create-update-lambda.json", "job-create-update-pipeline.json"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile("../../events/" + name)
			if os.IsNotExist(err) {
				t.Skip("sample event not written yet")
			}
			if err != nil {
				t.Fatal(err)
			}
			var job struct {
				Job struct {
					Data struct {
						ActionConfiguration struct {
							Configuration struct{ UserParameters string }
						}
					}
				} `json:"CodePipeline.job"`
			}
			if err := json.Unmarshal(raw, &job); err != nil {
				t.Fatal(err)
			}
			if _, err := ParseUserParameters(job.Job.Data.ActionConfiguration.Configuration.UserParameters); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseUserParametersRoundTrip(t *testing.T) {
	p, err := ParseUserParameters(appParams)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseUserParameters(string(b))
	if err != nil {
		t.Fatalf("re-parse %s: %v", b, err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip changed the value:\n%+v\n%+v", p, q)
	}
}

func TestParseUserParametersMinimal(t *testing.T) {
	p, err := ParseUserParameters(`{"stackName":"my-lambda-pipeline","templatePath":"SourceArtifact::infrastructure/pipeline.yml"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Capabilities) != 0 || len(p.ParameterOverrides) != 0 || p.RoleARN != "" {
		t.Errorf("optional fields not empty: %+v", p)
	}
}

func TestParseUserParametersRejects(t *testing.T) {
	const ok = `"stackName":"s","templatePath":"A::t.yml"`
	cases := []struct {
		name, in, wantErr string
	}{
		{"empty", ``, "empty"},
		{"blank", "  \n", "empty"},
		{"not json", `stackName=s`, "not a JSON object"},
		{"array", `["s"]`, "not a JSON object"},
		{"unknown key", `{` + ok + `,"stackname":"t"}`, `unknown key "stackname"`},
		{"wrong case", `{"StackName":"s","templatePath":"A::t.yml"}`, `unknown key "StackName"`},
		{"no stack", `{"templatePath":"A::t.yml"}`, "stackName: required"},
		{"stack starts with digit", `{"stackName":"1app","templatePath":"A::t.yml"}`, "must start with a letter"},
		{"stack underscore", `{"stackName":"my_app","templatePath":"A::t.yml"}`, "must start with a letter"},
		{"stack too long", `{"stackName":"` + strings.Repeat("a", 129) + `","templatePath":"A::t.yml"}`, "at most 128"},
		{"no template", `{"stackName":"s"}`, "templatePath: required"},
		{"template without artifact", `{"stackName":"s","templatePath":"infrastructure/lambda.yml"}`, "want ArtifactName::"},
		{"template bad artifact", `{"stackName":"s","templatePath":"Source Artifact::t.yml"}`, "not a CodePipeline artifact name"},
		{"template absolute", `{"stackName":"s","templatePath":"A::/etc/t.yml"}`, "clean relative path"},
		{"template escapes", `{"stackName":"s","templatePath":"A::../t.yml"}`, "clean relative path"},
		{"template unclean", `{"stackName":"s","templatePath":"A::infra/../t.yml"}`, "clean relative path"},
		{"template empty path", `{"stackName":"s","templatePath":"A::"}`, "clean relative path"},
		{"capability unknown", `{` + ok + `,"capabilities":["CAPABILITY_ALL"]}`, `"CAPABILITY_ALL" is not one of`},
		{"capability twice", `{` + ok + `,"capabilities":["CAPABILITY_IAM","CAPABILITY_IAM"]}`, "listed twice"},
		{"capabilities not list", `{` + ok + `,"capabilities":"CAPABILITY_IAM"}`, "cannot unmarshal"},
		{"role not arn", `{` + ok + `,"roleArn":"AppStackRole"}`, "not an IAM role ARN"},
		{"role is user", `{` + ok + `,"roleArn":"arn:aws:iam::123456789012:user/bob"}`, "not an IAM role ARN"},
		{"override bad name", `{` + ok + `,"parameterOverrides":{"Artifact-Key":"x"}}`, "not a CloudFormation parameter name"},
		{"override number", `{` + ok + `,"parameterOverrides":{"Size":3}}`, "want a string or"},
		{"override bad attr", `{` + ok + `,"parameterOverrides":{"K":{"artifact":"BuildOutput","attr":"url"}}}`, `attr "url"`},
		{"override missing artifact", `{` + ok + `,"parameterOverrides":{"K":{"attr":"key"}}}`, "not a CodePipeline artifact name"},
		{"override unknown key", `{` + ok + `,"parameterOverrides":{"K":{"artifact":"B","attr":"key","region":"x"}}}`, `unknown key "region"`},
		{"override GetArtifactAtt", `{` + ok + `,"parameterOverrides":{"K":{"Fn::GetArtifactAtt":["B","ObjectKey"]}}}`, `unknown key "Fn::GetArtifactAtt"`},
		{"execution unresolved", `{` + ok + `,"pipeline":"p","execution":"#{codepipeline.PipelineExecutionId}"}`, "not a pipeline execution id"},
		{"execution without pipeline", `{` + ok + `,"execution":"3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11"}`, "go together"},
		{"pipeline with a hash", `{` + ok + `,"pipeline":"p#x","execution":"3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11"}`, "not a CodePipeline pipeline name"},
		{"pipeline and execution", `{` + ok + `,"pipeline":"my-lambda-pipeline","execution":"3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11"}`, ""},
		{"long literal within limits", `{` + ok + `,"parameterOverrides":{"K":"` + strings.Repeat("x", 900) + `"}}`, ""},
		{"too long for CodePipeline", `{` + ok + `,"parameterOverrides":{"K":"` + strings.Repeat("x", 1000) + `"}}`, "CodePipeline allows 1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseUserParameters(c.in)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %s", c.in)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %q does not mention %q", err, c.wantErr)
			}
		})
	}
}

func TestParsePipelineStackProperties(t *testing.T) {
	props := map[string]any{
		"ServiceToken":   "arn:aws:lambda:eu-west-1:123456789012:function:lambda-pipeline-my-lambda-deployer",
		"ServiceTimeout": "900",
		"StackName":      "my-lambda-pipeline",
		"RoleARN":        "arn:aws:iam::123456789012:role/my-lambda-control-plane-PipelineStackRole-9Z8Y",
		"ProjectName":    "my-lambda",
		"TrackedBranch":  "main",
	}
	got, err := ParsePipelineStackProperties(props)
	if err != nil {
		t.Fatal(err)
	}
	want := PipelineStackProperties{
		StackName:  "my-lambda-pipeline",
		RoleARN:    "arn:aws:iam::123456789012:role/my-lambda-control-plane-PipelineStackRole-9Z8Y",
		Parameters: map[string]string{"ProjectName": "my-lambda", "TrackedBranch": "main"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}

	for name, mutate := range map[string]func(map[string]any){
		"no stack name":    func(m map[string]any) { delete(m, "StackName") },
		"bad stack name":   func(m map[string]any) { m["StackName"] = "my_pipeline" },
		"no role":          func(m map[string]any) { delete(m, "RoleARN") },
		"non-string value": func(m map[string]any) { m["RetentionDays"] = 90.0 },
		"bad param name":   func(m map[string]any) { m["Tracked-Branch"] = "main" },
	} {
		t.Run(name, func(t *testing.T) {
			m := map[string]any{}
			for k, v := range props {
				m[k] = v
			}
			mutate(m)
			if _, err := ParsePipelineStackProperties(m); err == nil {
				t.Fatalf("accepted %v", m)
			}
		})
	}
}

func FuzzParseUserParameters(f *testing.F) {
	f.Add(appParams)
	f.Add(`{"stackName":"s","templatePath":"A::t.yml","parameterOverrides":{"K":{"artifact":"B","attr":"key"}}}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseUserParameters(s)
		if err != nil {
			return
		}
		// Whatever is accepted re-encodes to something accepted and equal.
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxUserParameters {
			return // re-encoding may escape characters and grow past the limit
		}
		q, err := ParseUserParameters(string(b))
		if err != nil {
			t.Fatalf("accepted %q but not its re-encoding %s: %v", s, b, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed %q", s)
		}
	})
}
