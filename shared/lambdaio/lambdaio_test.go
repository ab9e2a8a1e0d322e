package lambdaio

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEnvNamesEveryProblemAtOnce(t *testing.T) {
	vars := map[string]string{"GOOD": "12", "BAD": "twelve", "HIGH": "99", "SPACE": "  x  "}
	e := NewEnv(func(k string) string { return vars[k] })
	assert.Equal(t, "", e.Required("MISSING_B"))
	assert.Equal(t, "", e.Required("MISSING_A"))
	assert.Equal(t, "x", e.Required("SPACE"))
	assert.Equal(t, 12, e.Int("GOOD", 1, 1, 50))
	assert.Equal(t, 7, e.Int("BAD", 7, 1, 50))
	assert.Equal(t, 7, e.Int("HIGH", 7, 1, 50))
	assert.Equal(t, 3, e.Int("ABSENT", 3, 1, 50))
	assert.Equal(t, "def", e.Optional("ABSENT", "def"))
	err := e.Err()
	assert.EqualError(t, err, "missing environment variables: MISSING_A, MISSING_B\n"+
		`invalid environment variables: BAD="twelve" (want a whole number from 1 to 50); HIGH="99" (want a whole number from 1 to 50)`)

	assert.NoError(t, NewEnv(func(string) string { return "" }).Err())
}
