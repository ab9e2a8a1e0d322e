// Package architecture holds no code: its test checks, from `go list`, that data and
// dependencies flow one way (docs/layout.md):
//
//   - shared/pipeline, the domain, imports the standard library only;
//   - use cases import the domain and inbound decoding, never a store, a notification
//     sender, an AWS SDK client or another use case;
//   - adapters import the domain and pure helpers, never one another;
//   - no production package imports test support.
package architecture
