package reconcile_test

const (
	pipelineName = "my-lambda-pipeline"
	mainCommit   = "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6"
)
