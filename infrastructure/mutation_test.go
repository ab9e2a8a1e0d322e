package infrastructure

// Each check must fail when the template is wrong: here the real templates are broken on
// purpose, in memory, one way at a time, and the check must name the problem.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type mutation struct {
	name   string
	change func(root map[string]any)
	want   string // a substring of one reported problem
}

// runMutations applies each change to a fresh copy of base and expects check to report it.
// It first proves that base itself passes, so that a reported problem is the mutation's.
func runMutations(t *testing.T, base *tmpl, check func(*tmpl) []string, cases []mutation) {
	t.Helper()
	if problems := check(base); len(problems) != 0 {
		t.Fatalf("the unmodified %s already fails: %v", base.name, problems)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base.clone()
			c.change(m.root)
			wantProblem(t, check(m), c.want)
		})
	}
}

func wantProblem(t *testing.T, problems []string, want string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Fatalf("no problem mentions %q; got %q", want, problems)
}

func res(id string, path ...any) []any { return append([]any{"Resources", id, "Properties"}, path...) }

// statementOf finds a statement by Sid in a role's first inline policy.
func statementOf(root map[string]any, role, sid string) map[string]any {
	for _, s := range at(root, res(role, "Policies", 0, "PolicyDocument", "Statement")...).([]any) {
		if st, ok := s.(map[string]any); ok && st["Sid"] == sid {
			return st
		}
	}
	panic("no statement " + sid + " in " + role)
}

func TestCheckReferencesFails(t *testing.T) {
	runMutations(t, controlPlane(t), checkReferences, []mutation{
		{"misspelled Ref", func(r map[string]any) {
			set(r, map[string]any{"Ref": "RunTable"}, "Globals", "Function", "Environment", "Variables", "RUNS_TABLE")
		}, `Ref to "RunTable"`},
		{"misspelled GetAtt resource", func(r map[string]any) {
			statementOf(r, "OnPushRole", "DeadLetter")["Resource"] = map[string]any{"Fn::GetAtt": []any{"Repositry", "Arn"}}
		}, `no resource "Repositry"`},
		{"unknown GetAtt attribute", func(r map[string]any) {
			set(r, map[string]any{"Fn::GetAtt": []any{"RunsTable", "StreamARN"}}, "Outputs", "RunsTableName", "Value")
		}, `has no attribute "StreamARN"`},
		{"GetAtt on a parameter", func(r map[string]any) {
			set(r, map[string]any{"Fn::GetAtt": []any{"Projects", "Arn"}}, "Outputs", "RunsTableName", "Value")
		}, `Fn::GetAtt on parameter "Projects"`},
		{"misspelled Sub parameter", func(r map[string]any) {
			set(r, map[string]any{"Fn::Sub": "${AWS::StackNam}-on-push"}, res("OnPushFunction", "FunctionName")...)
		}, `Ref to "AWS::StackNam"`},
		{"misspelled Sub attribute", func(r map[string]any) {
			statementOf(r, "AppStackRole", "FunctionCode")["Resource"] = map[string]any{"Fn::Sub": "${ArtifactBucket.Arn}/*"}
		}, `no resource "ArtifactBucket"`},
		{"undeclared condition", func(r map[string]any) {
			r["Resources"].(map[string]any)["NotificationEmailSubscription"].(map[string]any)["Condition"] = "HasEmail"
		}, `condition "HasEmail" is not declared`},
		{"undeclared condition in Fn::If", func(r map[string]any) {
			stmts := at(r, res("NotifyPolicy", "PolicyDocument", "Statement")...).([]any)
			last := stmts[len(stmts)-1].(map[string]any)["Fn::If"].([]any)
			last[0] = "HasSlack"
		}, `condition "HasSlack" is not declared`},
		{"DependsOn unknown", func(r map[string]any) {
			r["Resources"].(map[string]any)["ConvergeSchedule"].(map[string]any)["DependsOn"] = "DeployerFunctions"
		}, "no resource DeployerFunctions"},
		{"unused parameter", func(r map[string]any) {
			r["Parameters"].(map[string]any)["Unused"] = map[string]any{"Type": "String"}
		}, "Parameters.Unused: declared but never used"},
		{"unknown intrinsic", func(r map[string]any) {
			set(r, map[string]any{"Fn::Concat": []any{"a", "b"}}, "Outputs", "RunsTableName", "Value")
		}, `unknown intrinsic function "Fn::Concat"`},
		{"parameter group names no parameter", func(r map[string]any) {
			g := at(r, "Metadata", "AWS::CloudFormation::Interface", "ParameterGroups", 0).(map[string]any)
			g["Parameters"] = []any{"Projects", "Branch"}
		}, "no parameter Branch"},
	})
	runMutations(t, pipelineStack(t), checkReferences, []mutation{
		{"pipeline Ref to a control-plane resource", func(r map[string]any) {
			set(r, map[string]any{"Ref": "DeployerFunction"}, "Resources", "Pipeline", "Properties", "Stages", 1, "Actions", 0, "Configuration", "FunctionName")
		}, `Ref to "DeployerFunction"`},
	})
}

// The short form in the file, not only the long form in memory.
func TestCheckReferencesFailsOnTemplateText(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, want string }{
		{"!Ref RunsTable", "!Ref RunTable", `Ref to "RunTable"`},
		{"!GetAtt DeadLetterQueue.Arn", "!GetAtt DeadLetterQueues.Arn", `no resource "DeadLetterQueues"`},
		{"${AWS::StackName}-converge", "${Project}-converge", `Ref to "Project"`},
	} {
		broken := strings.Replace(string(raw), c.from, c.to, 1)
		if broken == string(raw) {
			t.Fatalf("%q not found in template.yaml", c.from)
		}
		tp, err := parseTemplate("template.yaml", []byte(broken))
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, checkReferences(tp), c.want)
	}
}

func TestParseTemplateRejects(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown tag", "Resources:\n  A:\n    Type: !Reff X\n", "unknown tag !Reff"},
		{"duplicate key", "Resources:\n  A:\n    Type: X\n  A:\n    Type: Y\n", `duplicate key "A"`},
		{"alias", "Parameters:\n  A: &a\n    Type: String\n  B: *a\n", "anchors and aliases"},
		{"GetAtt without attribute", "Outputs:\n  O:\n    Value: !GetAtt Bucket\n", "want Resource.Attribute"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseTemplate("t.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestCheckIAMFails(t *testing.T) {
	runMutations(t, controlPlane(t), checkIAM, []mutation{
		{"wildcard resource", func(r map[string]any) {
			statementOf(r, "OnPushRole", "ReadCommit")["Resource"] = "*"
		}, `Resource "*" for codecommit:GetCommit`},
		{"wildcard resource in a list", func(r map[string]any) {
			st := statementOf(r, "DeployerRole", "Stacks")
			st["Resource"] = append(st["Resource"].([]any), "*")
		}, `Resource "*" for cloudformation:CreateChangeSet`},
		{"wildcard action", func(r map[string]any) {
			statementOf(r, "OnPushRole", "ReadCommit")["Action"] = "*"
		}, `Action "*" grants a whole service`},
		{"service wildcard action", func(r map[string]any) {
			statementOf(r, "AppStackRole", "FunctionCode")["Action"] = []any{"s3:*"}
		}, `Action "s3:*" grants a whole service`},
		{"NotResource", func(r map[string]any) {
			st := statementOf(r, "OnPushRole", "ReadCommit")
			st["NotResource"] = st["Resource"]
			delete(st, "Resource")
		}, "NotResource in an Allow"},
		{"NotAction", func(r map[string]any) {
			st := statementOf(r, "OnPushRole", "ReadCommit")
			st["NotAction"] = "iam:*"
			delete(st, "Action")
		}, "NotAction in an Allow"},
		{"PassRole on everything", func(r map[string]any) {
			statementOf(r, "DeployerRole", "PassStackRoles")["Resource"] = "*"
		}, `iam:PassRole on Resource "*"`},
		{"PassRole to any service", func(r map[string]any) {
			delete(statementOf(r, "DeployerRole", "PassStackRoles"), "Condition")
		}, "without an iam:PassedToService condition"},
		{"PassRole by wildcard action", func(r map[string]any) {
			st := statementOf(r, "DeployerRole", "Stacks")
			st["Action"] = append(st["Action"].([]any), "iam:Pass*")
		}, "not a role of this template or a role ARN"},
		{"wildcard inside Fn::If", func(r map[string]any) {
			stmts := at(r, res("NotifyPolicy", "PolicyDocument", "Statement")...).([]any)
			for _, st := range stmts {
				branch, _ := at(st, "Fn::If", 1).(map[string]any)
				if branch["Sid"] == "SlackWebhookParameter" {
					branch["Resource"] = "*"
				}
			}
		}, `Resource "*" for ssm:GetParameter`},
		{"public queue policy", func(r map[string]any) {
			at(r, res("DeadLetterQueuePolicy", "PolicyDocument", "Statement", 0)...).(map[string]any)["Principal"] = "*"
		}, `allows Principal "*"`},
		{"AWS managed policy", func(r map[string]any) {
			set(r, []any{"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}, res("OnPushRole", "ManagedPolicyArns")...)
		}, "cannot be checked"},
		{"SAM policy templates", func(r map[string]any) {
			at(r, res("OnPushFunction")...).(map[string]any)["Policies"] = []any{"AWSLambdaExecute"}
		}, "OnPushFunction.Policies"},
		{"role trusting anyone", func(r map[string]any) {
			at(r, res("DeployerRole", "AssumeRolePolicyDocument", "Statement", 0)...).(map[string]any)["Principal"] = map[string]any{"AWS": "*"}
		}, "must trust a service principal only"},
	})
	runMutations(t, pipelineStack(t), checkIAM, []mutation{
		{"build role wildcard", func(r map[string]any) {
			statementOf(r, "BuildRole", "Logs")["Resource"] = "*"
		}, `Resource "*" for logs:CreateLogStream, logs:PutLogEvents`},
	})
}

func TestCheckEventRulesFails(t *testing.T) {
	events := loadEvents(t)
	base := controlPlane(t)
	exp := pipelineEventExpectations(events)
	check := func(tp *tmpl) []string {
		return checkEventRules(tp, newSampleEnv(tp, controlPlaneStack, nil), exp, events)
	}
	onPush := func(path ...any) []any { return res("OnPushRule", append([]any{"EventPattern"}, path...)...) }
	runMutations(t, base, check, []mutation{
		{"a branch filter added", func(r map[string]any) {
			set(r, []any{"mian"}, onPush("detail", "referenceName")...)
		}, `does not match push-main: the pattern's detail.referenceName wants ["mian"], the event has "main"`},
		{"tag filter dropped", func(r map[string]any) {
			d := at(r, onPush("detail")...).(map[string]any)
			delete(d, "referenceType")
		}, "matches push-tag, which it must not"},
		{"deletions let through", func(r map[string]any) {
			d := at(r, onPush("detail")...).(map[string]any)
			d["event"] = []any{map[string]any{"prefix": "reference"}}
			delete(d, "commitId")
		}, "matches derived-main-deleted, which it must not"},
		{"tags let through", func(r map[string]any) {
			set(r, []any{"branch", "tag"}, onPush("detail", "referenceType")...)
		}, "matches push-tag, which it must not"},
		{"action events dropped", func(r map[string]any) {
			set(r, []any{"CodePipeline Pipeline Execution State Change", "CodePipeline Stage Execution State Change"},
				res("OnPipelineEventRule", "EventPattern", "detail-type")...)
		}, "does not match action-failed-build"},
		{"wrong pipeline name", func(r map[string]any) {
			set(r, []any{map[string]any{"prefix": "my-lambda"}}, res("OnPipelineEventRule", "EventPattern", "detail", "pipeline")...)
		}, "does not match derived-other-pipeline"},
		{"scalar instead of list", func(r map[string]any) {
			set(r, "aws.codecommit", onPush("source")...)
		}, "source: want a list of values or an object"},
		{"no dead-letter queue", func(r map[string]any) {
			delete(at(r, res("OnPushRule", "Targets", 0)...).(map[string]any), "DeadLetterConfig")
		}, "no DeadLetterConfig"},
		{"rule without expectations", func(r map[string]any) {
			rules := r["Resources"].(map[string]any)
			rules["ExtraRule"] = deepCopy(rules["OnPushRule"])
		}, "ExtraRule: no sample events say what this rule must match"},
		{"expectation without rule", func(r map[string]any) {
			rules := r["Resources"].(map[string]any)
			rules["OnPipelineChangeRule"] = rules["OnPipelineEventRule"]
			delete(rules, "OnPipelineEventRule")
		}, "OnPipelineEventRule: expectations for a rule"},
	})
}

func TestCheckBucketsFails(t *testing.T) {
	runMutations(t, controlPlane(t), checkBuckets, []mutation{
		{"public policy allowed", func(r map[string]any) {
			set(r, false, res("ArtifactsBucket", "PublicAccessBlockConfiguration", "BlockPublicPolicy")...)
		}, "PublicAccessBlockConfiguration.BlockPublicPolicy is not true"},
		{"no public access block", func(r map[string]any) {
			delete(at(r, res("ArtifactsBucket")...).(map[string]any), "PublicAccessBlockConfiguration")
		}, "PublicAccessBlockConfiguration.BlockPublicAcls is not true"},
		{"not encrypted", func(r map[string]any) {
			delete(at(r, res("ArtifactsBucket")...).(map[string]any), "BucketEncryption")
		}, "no BucketEncryption"},
		{"not versioned", func(r map[string]any) {
			set(r, "Suspended", res("ArtifactsBucket", "VersioningConfiguration", "Status")...)
		}, "versioning is not enabled"},
		{"never expires", func(r map[string]any) {
			delete(at(r, res("ArtifactsBucket")...).(map[string]any), "LifecycleConfiguration")
		}, "no enabled lifecycle rule"},
		{"plain HTTP allowed", func(r map[string]any) {
			delete(r["Resources"].(map[string]any), "ArtifactsBucketPolicy")
		}, "no bucket policy denying"},
		{"TLS policy on the bucket only", func(r map[string]any) {
			set(r, []any{map[string]any{"Fn::GetAtt": []any{"ArtifactsBucket", "Arn"}}}, res("ArtifactsBucketPolicy", "PolicyDocument", "Statement", 0, "Resource")...)
		}, "no bucket policy denying"},
	})
}

func TestCheckLogGroupsFails(t *testing.T) {
	runMutations(t, pipelineStack(t), checkLogGroups, []mutation{
		{"no retention", func(r map[string]any) {
			delete(at(r, res("BuildLogGroup")...).(map[string]any), "RetentionInDays")
		}, "BuildLogGroup: no RetentionInDays"},
	})
}

func TestCheckInvokeActionsFails(t *testing.T) {
	base := pipelineStack(t)
	check := func(tp *tmpl) []string {
		_, problems := checkInvokeActions(tp, pipelineEnv(t, tp, nil), repoRoot)
		return problems
	}
	userParams := func(stage int) []any {
		return res("Pipeline", "Stages", stage, "Actions", 0, "Configuration", "UserParameters", "Fn::Sub")
	}
	edit := func(stage int, from, to string) func(map[string]any) {
		return func(r map[string]any) {
			s := at(r, userParams(stage)...).(string)
			if !strings.Contains(s, from) {
				panic(from + " not in " + s)
			}
			set(r, strings.Replace(s, from, to, 1), userParams(stage)...)
		}
	}
	runMutations(t, base, check, []mutation{
		{"artifact that is not an input", edit(3, `"artifact": "BuildOutput", "attr": "key"`, `"artifact": "BuildOutputs", "attr": "key"`),
			"parameter ArtifactKey reads artifact BuildOutputs, which is not an input"},
		{"unknown attribute", edit(3, `"attr": "key"`, `"attr": "ObjectKey"`), `attr "ObjectKey"`},
		{"template that does not exist", edit(3, "infrastructure/lambda.yml", "infrastructure/lamda.yml"),
			"templatePath infrastructure/lamda.yml does not exist"},
		{"template from the build output", edit(1, "SourceArtifact::", "BuildOutput::"),
			"templatePath reads artifact BuildOutput, which is not an input"},
		{"broken JSON", edit(1, `"capabilities"`, `capabilities`), "not a JSON object"},
		{"misspelled key", edit(1, `"stackName"`, `"stackname"`), `unknown key "stackname"`},
		{"bad capability", edit(3, "CAPABILITY_IAM", "CAPABILITY_ALL"), `"CAPABILITY_ALL" is not one of`},
		{"stack name from an unknown parameter", edit(3, "${ProjectName}-app", "${Project}-app"), "Ref Project: no such parameter"},
	})
}

func TestCheckFunctionsFails(t *testing.T) {
	// A repository of its own: the real Makefile, or one missing a target, and stub mains.
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	repo := func(t *testing.T, mk string) string {
		dir := t.TempDir()
		for _, spec := range controlPlaneFunctions {
			d := filepath.Join(dir, "functions", spec.dir)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	base := controlPlane(t)
	good := repo(t, string(makefile))
	expectNoProblems(t, checkFunctions(base, good, controlPlaneFunctions))

	t.Run("Makefile without a target", func(t *testing.T) {
		mk := "build-OnPushFunction build-OnPipelineEventFunction build-DeployerFunction:\n\tGOARCH=arm64 go build -tags lambda.norpc -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(subst build-,,$@)\n"
		wantProblem(t, checkFunctions(base, repo(t, mk), controlPlaneFunctions), "`make -n build-ReconcilerFunction` fails")
	})
	t.Run("target builds the wrong function", func(t *testing.T) {
		mk := strings.Replace(string(makefile), "sam_target,ReconcilerFunction,reconciler", "sam_target,ReconcilerFunction,deployer", 1)
		if mk == string(makefile) {
			t.Skip("the Makefile no longer uses sam_target; adapt this case")
		}
		wantProblem(t, checkFunctions(base, repo(t, mk), controlPlaneFunctions), `does not mention "./functions/reconciler"`)
	})
	t.Run("no Makefile", func(t *testing.T) {
		dir := repo(t, "")
		os.Remove(filepath.Join(dir, "Makefile"))
		wantProblem(t, checkFunctions(base, dir, controlPlaneFunctions), "no Makefile in CodeUri")
	})
	t.Run("no code directory", func(t *testing.T) {
		dir := repo(t, string(makefile))
		os.RemoveAll(filepath.Join(dir, "functions", "on-push"))
		wantProblem(t, checkFunctions(base, dir, controlPlaneFunctions), "functions/on-push/main.go does not exist")
	})

	check := func(tp *tmpl) []string { return checkFunctions(tp, good, controlPlaneFunctions) }
	runMutations(t, base, check, []mutation{
		{"x86", func(r map[string]any) { set(r, []any{"x86_64"}, "Globals", "Function", "Architectures") }, "Architectures is [x86_64]"},
		{"wrong runtime", func(r map[string]any) { set(r, "go1.x", "Globals", "Function", "Runtime") }, "Runtime is go1.x"},
		{"CodeUri elsewhere", func(r map[string]any) {
			at(r, res("DeployerFunction")...).(map[string]any)["CodeUri"] = "functions/deployer-missing"
		}, `CodeUri "functions/deployer-missing" is not a directory`},
		{"no role", func(r map[string]any) { delete(at(r, res("OnPushFunction")...).(map[string]any), "Role") }, "no Role"},
		{"text logs", func(r map[string]any) { set(r, "Text", "Globals", "Function", "LoggingConfig", "LogFormat") }, "LogFormat is not JSON"},
		{"no dead-letter destination", func(r map[string]any) {
			delete(at(r, "Globals", "Function").(map[string]any), "EventInvokeConfig")
		}, "no SQS on-failure destination"},
		{"missing environment", func(r map[string]any) {
			delete(at(r, "Globals", "Function", "Environment", "Variables").(map[string]any), "TOPIC_ARN")
		}, "environment variable TOPIC_ARN is not set"},
		{"not a makefile build", func(r map[string]any) {
			r["Resources"].(map[string]any)["ReconcilerFunction"].(map[string]any)["Metadata"] = map[string]any{"BuildMethod": "go1.x"}
		}, "Metadata.BuildMethod is go1.x"},
		{"renamed function", func(r map[string]any) {
			rs := r["Resources"].(map[string]any)
			rs["Reconciler"] = rs["ReconcilerFunction"]
			delete(rs, "ReconcilerFunction")
		}, "Reconciler: a function this check does not know"},
		{"SAM event source", func(r map[string]any) {
			at(r, res("ReconcilerFunction")...).(map[string]any)["Events"] = map[string]any{"Tick": map[string]any{"Type": "Schedule"}}
		}, "Events: declare the trigger as an AWS::Events::Rule"},
	})
}

func TestCheckSchemaFails(t *testing.T) {
	runMutations(t, controlPlane(t), checkSchema, []mutation{
		{"misspelled property", func(r map[string]any) {
			p := at(r, res("RunsTable")...).(map[string]any)
			p["PointInTimeRecoverySpecifcation"] = p["PointInTimeRecoverySpecification"]
			delete(p, "PointInTimeRecoverySpecification")
		}, `RunsTable (AWS::DynamoDB::Table): json: unknown field "PointInTimeRecoverySpecifcation"`},
		{"misspelled nested property", func(r map[string]any) {
			set(r, map[string]any{"BlockPublicAcl": true}, res("ArtifactsBucket", "PublicAccessBlockConfiguration")...)
		}, `unknown field "BlockPublicAcl"`},
		{"misspelled type", func(r map[string]any) {
			r["Resources"].(map[string]any)["DeadLetterQueue"].(map[string]any)["Type"] = "AWS::SQS::Queues"
		}, "DeadLetterQueue (AWS::SQS::Queues)"},
		{"wrong value type", func(r map[string]any) {
			set(r, "two weeks", res("DeadLetterQueue", "MessageRetentionPeriod")...)
		}, "DeadLetterQueue (AWS::SQS::Queue): json: cannot unmarshal string"},
	})
}
