package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

const (
	// defaultTable is the table lp init-local, lp replay --endpoint and the demo create.
	defaultTable = "lambda-pipeline-runs"
	// defaultTimeout bounds each AWS request (one attempt: connect, send, the whole answer).
	defaultTimeout = 10 * time.Second
	// maxAttempts and maxBackoff bound one AWS call: at most maxAttempts × --timeout plus
	// (maxAttempts-1) × maxBackoff, about 34 s with the defaults.
	maxAttempts = 3
	maxBackoff  = 2 * time.Second
	// runsTableOutput is the control-plane stack's output that names the runs table
	// (template.yaml, Outputs).
	runsTableOutput = "RunsTableName"
)

// dbOptions locate the runs table and say how to reach AWS (or a local stand-in).
type dbOptions struct {
	table, stack, endpoint, region, profile string
	timeout                                 time.Duration
	getenv                                  func(string) string
	// resolved by configure
	cfg       aws.Config
	tableName string
}

// dbFlags adds the flags every table-reading command shares.
func dbFlags(fs *flag.FlagSet, getenv func(string) string) *dbOptions {
	o := &dbOptions{getenv: getenv}
	fs.StringVar(&o.stack, "stack", getenv("LP_STACK"), "control-plane stack whose RunsTableName output names the table (LP_STACK; else samconfig.toml's stack_name)")
	fs.StringVar(&o.table, "table", cmp.Or(getenv("LP_TABLE"), getenv("RUNS_TABLE")), "runs table name (LP_TABLE, RUNS_TABLE; default "+defaultTable+" unless --stack finds it)")
	fs.StringVar(&o.endpoint, "endpoint", awsconfig.EndpointFor(getenv, dynamodb.ServiceID), "local DynamoDB endpoint, e.g. http://127.0.0.1:8000 for dynalite (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL)")
	fs.StringVar(&o.region, "region", cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")), "AWS region (AWS_REGION; else the profile's)")
	fs.StringVar(&o.profile, "profile", getenv("AWS_PROFILE"), "named profile from ~/.aws/config and ~/.aws/credentials (AWS_PROFILE)")
	timeout := defaultTimeout
	if v, err := time.ParseDuration(getenv("LP_TIMEOUT")); err == nil && v > 0 {
		timeout = v
	}
	fs.DurationVar(&o.timeout, "timeout", timeout, "time limit of each AWS request (LP_TIMEOUT)")
	return o
}

// local reports whether lp talks to a local stand-in rather than AWS.
func (o *dbOptions) local() bool { return o.endpoint != "" }

// configure builds the AWS configuration once.
//
// With --endpoint (a local stand-in), it uses the region given (default us-east-1) and the
// credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or dummy ones: it never walks the
// SDK's default chain, so no ~/.aws file is read and the instance-metadata service (IMDS) is
// never called.
//
// Without it, credentials are resolved as awscli resolves them (the SDK's default chain:
// environment, --profile / AWS_PROFILE in the shared config and credentials files, SSO, web
// identity, container and instance roles; "Standardized credential providers",
// https://docs.aws.amazon.com/sdkref/latest/guide/standardized-credentials.html). The
// instance-role step uses IMDSv2 only: the IMDSv1 fallback, and its warning, are off
// ("IMDS credential provider", https://docs.aws.amazon.com/sdkref/latest/guide/feature-imds-credentials.html).
// Set AWS_EC2_METADATA_DISABLED=true to skip IMDS entirely off EC2.
//
// Every request gets an HTTP client whose timeout (--timeout) covers one attempt, and the
// standard retryer with maxAttempts and maxBackoff, so a call that never gets an answer fails
// after a bounded time ("Retries and Timeouts",
// https://docs.aws.amazon.com/sdk-for-go/v2/developer-guide/configure-retries-timeouts.html).
func (o *dbOptions) configure(ctx context.Context) error {
	if o.timeout <= 0 {
		return usageError{"--timeout must be positive, e.g. 10s"}
	}
	httpClient := awshttp.NewBuildableClient().WithTimeout(o.timeout)
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.MaxBackoff = maxBackoff
		})
	}
	if o.local() {
		creds := aws.CredentialsProvider(staticLocal{})
		if id, secret := o.getenv("AWS_ACCESS_KEY_ID"), o.getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
			creds = credentials.NewStaticCredentialsProvider(id, secret, o.getenv("AWS_SESSION_TOKEN"))
		}
		o.cfg = aws.Config{Region: cmp.Or(o.region, "us-east-1"), Credentials: creds, HTTPClient: httpClient, Retryer: retryer}
		return nil
	}
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(retryer),
		config.WithEC2RoleCredentialOptions(func(ro *ec2rolecreds.Options) {
			ro.Client = imds.New(imds.Options{EnableFallback: aws.FalseTernary, HTTPClient: awshttp.NewBuildableClient().WithTimeout(time.Second)})
		}),
	}
	if o.region != "" {
		opts = append(opts, config.WithRegion(o.region))
	} else if _, region := samconfig(); region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if o.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return usageError{"no AWS region: give --region, set AWS_REGION, or use a --profile that has one"}
	}
	o.cfg = cfg
	return nil
}

// dynamo returns the DynamoDB client.
func (o *dbOptions) dynamo() *dynamodb.Client {
	return dynamodb.NewFromConfig(o.cfg, func(do *dynamodb.Options) {
		if o.local() {
			do.BaseEndpoint = aws.String(o.endpoint)
			// dynalite's x-amz-crc32 does not match what it sends when the SDK asks for
			// gzip; the SDK only warns, on stderr, but the warning reads like a failure.
			do.DisableValidateResponseChecksum = true
		}
	})
}

// openRead returns the store over an existing table. It creates nothing: a missing table is an
// error that says so (explain), reported by the first read.
func (o *dbOptions) openRead(ctx context.Context) (*runstore.Dynamo, error) {
	if err := o.configure(ctx); err != nil {
		return nil, err
	}
	if err := o.resolveTable(ctx); err != nil {
		return nil, err
	}
	return runstore.NewDynamo(o.dynamo(), o.tableName, pipeline.SystemClock{}), nil
}

// open returns the store for a command that writes into a local stand-in (lp replay
// --endpoint, lp init-local): it creates the table when it does not exist.
func (o *dbOptions) open(ctx context.Context) (*runstore.Dynamo, error) {
	if !o.local() {
		return nil, usageError{"writing needs a local --endpoint (in AWS the control-plane template creates the table)"}
	}
	store, err := o.openRead(ctx)
	if err != nil {
		return nil, err
	}
	// Ask first, so that an endpoint that cannot be reached is reported as such, not as a
	// failed CreateTable.
	_, err = o.dynamo().DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(o.tableName)})
	var notFound *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &notFound) {
		return nil, o.explain(err)
	}
	if err := store.EnsureTable(ctx); err != nil {
		return nil, o.explain(err)
	}
	return store, nil
}

// resolveTable finds the table name: --table (LP_TABLE, RUNS_TABLE); else the RunsTableName
// output of the control-plane stack (--stack, LP_STACK, or, against AWS, samconfig.toml's
// stack_name in the working directory); else defaultTable.
func (o *dbOptions) resolveTable(ctx context.Context) error {
	if o.table != "" {
		o.tableName = o.table
		return nil
	}
	stack, from := o.stack, "--stack"
	if stack == "" && !o.local() {
		stack, _ = samconfig()
		from = "samconfig.toml's stack_name"
	}
	if stack == "" {
		o.tableName = defaultTable
		return nil
	}
	cfn := cloudformation.NewFromConfig(o.cfg, func(co *cloudformation.Options) {
		if ep := awsconfig.EndpointFor(o.getenv, cloudformation.ServiceID); ep != "" && o.local() {
			co.BaseEndpoint = aws.String(ep)
		}
	})
	out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		return fmt.Errorf("find the runs table from stack %s (%s) in %s: %w", stack, from, o.cfg.Region, o.explainNet(err, "CloudFormation"))
	}
	for _, s := range out.Stacks {
		for _, out := range s.Outputs {
			if aws.ToString(out.OutputKey) == runsTableOutput && aws.ToString(out.OutputValue) != "" {
				o.tableName = aws.ToString(out.OutputValue)
				return nil
			}
		}
	}
	return fmt.Errorf("stack %s (%s) in %s has no %s output: is it the lambda-pipeline control plane? Name the table with --table", stack, from, o.cfg.Region, runsTableOutput)
}

// where names the DynamoDB the options point at, for messages.
func (o *dbOptions) where() string {
	if o.local() {
		return "at " + o.endpoint
	}
	return "in " + cmp.Or(o.cfg.Region, o.region, "the default region")
}

// explain turns the errors a person meets into sentences that say what to do: a missing
// table, an endpoint that does not answer or cannot be reached.
func (o *dbOptions) explain(err error) error {
	if err == nil {
		return nil
	}
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		hint := "name the deployed table with --stack (or LP_STACK) or --table"
		if o.local() {
			hint = fmt.Sprintf("create it with `lp init-local --endpoint %s --table %s`, or fill it with `lp replay --endpoint %s FILE`", o.endpoint, o.tableName, o.endpoint)
		}
		return fmt.Errorf("table %s does not exist %s: %s", o.tableName, o.where(), hint)
	}
	return o.explainNet(err, "DynamoDB")
}

// explainNet reports a request that got no answer, or no connection, as such.
func (o *dbOptions) explainNet(err error, service string) error {
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("cannot reach %s %s (is it running?): %v", service, o.where(), op)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s did not answer within %s (--timeout, LP_TIMEOUT; %d attempts)", service, o.where(), o.timeout, maxAttempts)
	}
	return err
}

// staticLocal signs requests to a local stand-in, which checks no signature.
type staticLocal struct{}

func (staticLocal) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "lp-local"}, nil
}

var samconfigKey = regexp.MustCompile(`^\s*(stack_name|region)\s*=\s*"([^"]*)"`)

// samconfig reads stack_name and region from samconfig.toml in the working directory (the
// first of each, as `sam deploy --guided` saves them), when lp runs in the project folder.
func samconfig() (stack, region string) {
	f, err := os.Open("samconfig.toml")
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := samconfigKey.FindStringSubmatch(sc.Text())
		switch {
		case m == nil:
		case m[1] == "stack_name" && stack == "":
			stack = m[2]
		case m[1] == "region" && region == "":
			region = m[2]
		}
	}
	return stack, region
}
