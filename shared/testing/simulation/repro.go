package simulation

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// Repro is a minimal replayable reproduction of a failing seed: the seed (which fixes the
// ground truth), the deliveries and the faults that still break an invariant.
type Repro struct {
	Seed       uint64
	Features   Features
	Deliveries []Delivery
	Faults     []Fault
	Violations []string
}

// Options returns the options that replay r exactly.
func (r Repro) Options() Options {
	return Options{Features: r.Features, Deliveries: r.Deliveries, Schedule: append([]Fault{}, r.Faults...)}
}

// Shrink reduces a failing report to a minimal reproduction: it drops deliveries, then
// faults, one at a time, keeping each drop that still breaks an invariant. Every try is a
// deterministic replay.
func Shrink(rep Report, f Features) Repro {
	r := Repro{Seed: rep.Seed, Features: f, Deliveries: rep.Deliveries, Faults: rep.Injected, Violations: rep.Violations}
	if r.Faults == nil {
		r.Faults = []Fault{}
	}
	target := ""
	if len(rep.Violations) > 0 {
		target = rep.Violations[0]
	}
	// A candidate must still break the first invariant the seed broke.
	fails := func(c Repro) (bool, []string) {
		out := Run(c.Seed, c.Options())
		return slices.Contains(out.Violations, target), out.Violations
	}
	if ok, v := fails(r); !ok {
		return r // not reproducible by replay: report it as it is
	} else {
		r.Violations = v
	}
	for chunk := len(r.Deliveries) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(r.Deliveries); {
			c := r
			c.Deliveries = append(append([]Delivery{}, r.Deliveries[:i]...), r.Deliveries[i+chunk:]...)
			if ok, v := fails(c); ok {
				r, r.Violations = c, v
				continue
			}
			i += chunk
		}
	}
	for i := 0; i < len(r.Faults); {
		c := r
		c.Faults = append(append([]Fault{}, r.Faults[:i]...), r.Faults[i+1:]...)
		if ok, v := fails(c); ok {
			r, r.Violations = c, v
			continue
		}
		i++
	}
	return r
}

// reproLine is one NDJSON line of a reproduction.
type reproLine struct {
	Seed      *uint64         `json:"seed,omitempty"`
	Features  *Features       `json:"features,omitempty"`
	At        string          `json:"at,omitempty"`
	Event     json.RawMessage `json:"event,omitempty"`
	Fault     *Fault          `json:"fault,omitempty"`
	Violation string          `json:"violation,omitempty"`
}

// WriteNDJSON writes r: a header line (seed, features), one line per delivery, one per fault,
// one per violation. `go run ./shared/testing/simulation/cmd/sim --replay FILE` runs it again.
func (r Repro) WriteNDJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	seed, f := r.Seed, r.Features
	if err := enc.Encode(reproLine{Seed: &seed, Features: &f}); err != nil {
		return err
	}
	for _, d := range r.Deliveries {
		if err := enc.Encode(reproLine{At: d.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Event: d.Data}); err != nil {
			return err
		}
	}
	for i := range r.Faults {
		if err := enc.Encode(reproLine{Fault: &r.Faults[i]}); err != nil {
			return err
		}
	}
	for _, v := range r.Violations {
		if err := enc.Encode(reproLine{Violation: v}); err != nil {
			return err
		}
	}
	return nil
}

// ReadRepro reads what WriteNDJSON wrote.
func ReadRepro(rd io.Reader) (Repro, error) {
	var r Repro
	r.Faults = []Fault{}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var l reproLine
		if err := json.Unmarshal(text, &l); err != nil {
			return Repro{}, fmt.Errorf("line %d: %w", line, err)
		}
		switch {
		case l.Seed != nil:
			r.Seed = *l.Seed
			if l.Features != nil {
				r.Features = *l.Features
			}
		case l.Event != nil:
			var d Delivery
			if err := json.Unmarshal(text, &struct {
				At    *string          `json:"at"`
				Event *json.RawMessage `json:"event"`
			}{nil, &d.Data}); err != nil {
				return Repro{}, fmt.Errorf("line %d: %w", line, err)
			}
			if err := d.At.UnmarshalText([]byte(l.At)); err != nil {
				return Repro{}, fmt.Errorf("line %d: at: %w", line, err)
			}
			r.Deliveries = append(r.Deliveries, d)
		case l.Fault != nil:
			r.Faults = append(r.Faults, *l.Fault)
		case l.Violation != "":
			r.Violations = append(r.Violations, l.Violation)
		}
	}
	return r, sc.Err()
}
