// Package infrastructure holds the CloudFormation templates of the pipeline stack and the
// application stack, embedded for the deployer, and the EventBridge pattern matcher that the
// template tests use to prove each rule matches its sample events.
//
// The templates themselves are checked by this package's tests (go test ./infrastructure/):
// references, IAM least privilege, event patterns against events/, build targets, bucket
// security, the deployer's UserParameters, and the resource schemas.
package infrastructure

import _ "embed"

// PipelineTemplate is infrastructure/pipeline.yml: the deployer creates the pipeline stack from
// it when the control plane's PipelineStack custom resource asks (the first deploy, before the
// repository holds any code). Later runs deploy the repository's copy instead.
//
//go:embed pipeline.yml
var PipelineTemplate []byte

// LambdaTemplate is infrastructure/lambda.yml, the application stack.
//
//go:embed lambda.yml
var LambdaTemplate []byte

// Templates are both templates at their paths in the repository, the layout of the source
// artifact (local runs of the deployer serve them as the input artifact).
func Templates() map[string][]byte {
	return map[string][]byte{"infrastructure/pipeline.yml": PipelineTemplate, "infrastructure/lambda.yml": LambdaTemplate}
}
