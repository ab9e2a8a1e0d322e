package runstore

import (
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
)

// One dynalite per test binary; each test uses its own table.
func TestMain(m *testing.M) { dynalitetest.Main(m) }

// newDynamo returns a store over a fresh table in the shared dynalite.
func newDynamo(t testing.TB) *Dynamo {
	t.Helper()
	db := dynalitetest.Start(t).Client(t)
	table := dynalitetest.CreateTable(t, db, TableInput(dynalitetest.UniqueTableName(t)))
	return NewDynamo(db, table)
}
