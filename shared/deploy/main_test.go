package deploy_test

import (
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
)

// One dynalite per test binary (the approvals live in the runs table); each test that needs
// it uses its own table.
func TestMain(m *testing.M) { dynalitetest.Main(m) }
