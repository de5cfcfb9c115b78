package prwmetrictest

import (
	"fmt"
)

// maxViolationsPerRequest bounds what one request can record, so a
// sender that breaks a rule for every series doesn't flood the test log.
const maxViolationsPerRequest = 50

// violations collects rule violations of one request, bounded.
type violations struct {
	list    []string
	dropped int
}

func (v *violations) add(format string, args ...any) {
	if len(v.list) >= maxViolationsPerRequest {
		v.dropped++
		return
	}
	v.list = append(v.list, fmt.Sprintf(format, args...))
}

func (v *violations) result() []string {
	if v.dropped > 0 {
		return append(v.list, fmt.Sprintf("… and %d more violations", v.dropped))
	}
	return v.list
}
