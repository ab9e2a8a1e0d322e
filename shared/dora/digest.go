package dora

// Digest is one project's weekly digest: the four keys over an ISO week and over the week
// before, for the trend. shared/digest computes it; shared/notify renders it.
type Digest struct {
	Project  string `json:"project"`
	Pipeline string `json:"pipeline"`
	Week     string `json:"week"` // ISO 8601 week of Current, e.g. "2026-W49"
	Current  Keys   `json:"current"`
	Previous Keys   `json:"previous"`
}
