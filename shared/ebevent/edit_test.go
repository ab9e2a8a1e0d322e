package ebevent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// applyEdits edits a JSON document: each edit is "a.b.c=VALUE" where VALUE is JSON, or "-" to
// delete the key. Dots inside keys are not supported (none of ours has one).
func applyEdits(t *testing.T, data []byte, edits ...string) []byte {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(data, &doc))
	for _, e := range edits {
		path, value, ok := strings.Cut(e, "=")
		require.True(t, ok, "edit %q", e)
		keys := strings.Split(path, ".")
		m := doc
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			require.True(t, ok, "edit %q: %s is not an object", e, k)
			m = next
		}
		last := keys[len(keys)-1]
		if value == "-" {
			delete(m, last)
			continue
		}
		var v any
		require.NoError(t, json.Unmarshal([]byte(value), &v), "edit %q", e)
		m[last] = v
	}
	out, err := json.Marshal(doc)
	require.NoError(t, err)
	return out
}
