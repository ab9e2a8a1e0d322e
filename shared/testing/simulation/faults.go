package simulation

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
)

// FaultKind is what an injected fault does to one call.
type FaultKind string

const (
	// FaultThrottle: the call is refused before it does anything (DynamoDB
	// ProvisionedThroughputExceeded, CodePipeline ThrottlingException, SNS Throttled).
	FaultThrottle FaultKind = "throttle"
	// FaultServer: a 5xx before the call does anything.
	FaultServer FaultKind = "5xx"
	// FaultTimeout: the call's answer is lost: a write landed, a read did nothing.
	FaultTimeout FaultKind = "timeout"
	// FaultKill: the function is killed right after the call landed; nothing the invocation
	// does afterwards reaches a store or a channel.
	FaultKill FaultKind = "kill"
	// FaultSlack429 and FaultSlack500 are Slack's answers; FaultSlackLost is a post that
	// landed but whose answer timed out.
	FaultSlack429  FaultKind = "slack-429"
	FaultSlack500  FaultKind = "slack-500"
	FaultSlackLost FaultKind = "slack-timeout-after-post"
)

// Fault is one injected fault: the nth call (from 1) of op about subject.
type Fault struct {
	Op      string    `json:"op"`
	Subject string    `json:"subject"`
	N       int       `json:"n"`
	Kind    FaultKind `json:"kind"`
}

// injector decides, for every call, whether it fails. A decision depends only on the seed, the
// operation, what the call is about (an event's observation, a notification's key) and how
// often that was asked before: never on goroutine timing, so that a seed replays exactly.
type injector struct {
	seed     uint64
	rate     float64 // per call; 0 with a fixed schedule
	schedule map[Fault]bool

	mu       sync.Mutex
	counts   map[string]int
	injected []Fault
	mix      map[FaultKind]int
}

func newInjector(seed uint64, rate float64, schedule []Fault) *injector {
	in := &injector{seed: seed, rate: rate, counts: map[string]int{}, mix: map[FaultKind]int{}}
	if schedule != nil {
		in.rate = 0
		in.schedule = map[Fault]bool{}
		for _, f := range schedule {
			in.schedule[f] = true
		}
	}
	return in
}

// decide returns the fault of this call, "" for none. kinds are the faults the call can suffer.
func (in *injector) decide(op, subject string, kinds ...FaultKind) FaultKind {
	in.mu.Lock()
	defer in.mu.Unlock()
	key := op + "\x00" + subject
	in.counts[key]++
	n := in.counts[key]
	var kind FaultKind
	if in.schedule != nil {
		for _, k := range kinds {
			if in.schedule[Fault{op, subject, n, k}] {
				kind = k
			}
		}
	} else if in.rate > 0 {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d\x00%s\x00%d", in.seed, key, n)
		x := h.Sum64()
		if float64(x%1_000_000)/1_000_000 < in.rate {
			kind = kinds[int(x>>32)%len(kinds)]
		}
	}
	if kind != "" {
		in.injected = append(in.injected, Fault{op, subject, n, kind})
		in.mix[kind]++
	}
	return kind
}

// faults returns the faults injected so far, in a stable order.
func (in *injector) faults() []Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := append([]Fault(nil), in.injected...)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Op != b.Op {
			return a.Op < b.Op
		}
		if a.Subject != b.Subject {
			return a.Subject < b.Subject
		}
		return a.N < b.N
	})
	return out
}

// errFault is an injected failure. Its text names the fault, as AWS would name the error.
type errFault struct{ kind FaultKind }

func (e errFault) Error() string {
	switch e.kind {
	case FaultThrottle:
		return "injected: ThrottlingException: Rate exceeded"
	case FaultServer:
		return "injected: InternalServerError (HTTP 500)"
	case FaultTimeout:
		return "injected: request timed out (the call may have landed)"
	case FaultKill:
		return "injected: function killed"
	}
	return "injected: " + string(e.kind)
}

// killed is the invocation's kill switch, carried in its context.
type killed struct {
	mu       sync.Mutex
	all      bool
	channels map[string]bool
	unmarked map[string]bool // key|channel: delivered, but its mark failed
}

type killKey struct{}

func withKill(ctx context.Context) (context.Context, *killed) {
	k := &killed{channels: map[string]bool{}, unmarked: map[string]bool{}}
	return context.WithValue(ctx, killKey{}, k), k
}

func killOf(ctx context.Context) *killed {
	k, _ := ctx.Value(killKey{}).(*killed)
	return k
}

// dead reports whether the invocation was killed (for channel, the channel's own goroutine; ""
// for calls made after the channels joined).
func (k *killed) dead(channel string) bool {
	if k == nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if channel != "" {
		return k.channels[channel]
	}
	return k.all
}

func (k *killed) kill(channel string) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.all = true
	if channel != "" {
		k.channels[channel] = true
	}
}

var errKilled = errors.New("injected: the function was killed before this call")
