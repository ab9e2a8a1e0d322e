// Command app is the sample function that the pipeline builds, tests and deploys
// (infrastructure/lambda.yml). Replace it with your own: keep package main in functions/app,
// or change the build line in buildspec.yml.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stdout, nil)))
	g := Greeter{Version: os.Getenv("AWS_LAMBDA_FUNCTION_VERSION")}
	lambda.Start(g.Handle)
}
