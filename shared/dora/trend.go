package dora

import (
	"fmt"
	"math"
)

// Trend compares a key with the previous window's, as `lp metrics` and the weekly digest show
// it: ↑ or ↓ with the change in percent and whether that is better or worse (higherBetter
// chooses the word), "=" when equal, "" when either window has no value.
func Trend(cur, prev float64, hasCur, hasPrev, higherBetter bool) string {
	if !hasCur || !hasPrev {
		return ""
	}
	if cur == prev {
		return "="
	}
	arrow := "↑"
	if cur < prev {
		arrow = "↓"
	}
	word := "worse"
	if (cur > prev) == higherBetter {
		word = "better"
	}
	if prev == 0 {
		return arrow + " " + word
	}
	return fmt.Sprintf("%s %.0f%% %s", arrow, math.Abs(cur-prev)/prev*100, word)
}
