// Command hello is the smallest Go Lambda function: it answers every event with "hello". The
// cold-start tool (shared/lambdarie/internal/coldstart) builds it with the functions' flags and
// runs it under the same emulator in the same run, so that its cold start — the emulator's own
// start-up, the Go runtime and aws-lambda-go — can be subtracted from each function's.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (string, error) { return "hello", nil })
}
