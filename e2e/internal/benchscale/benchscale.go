// Package benchscale measures the scale figures of the benchmark (issue 6,
// part 4): inventory, expiry sweep and audit chain at two sizes each.
//
// replaced by the scale branch: this file only fixes the API cmd/bench calls.
package benchscale

import "context"

// Figure is one measured value.
type Figure struct {
	Name  string
	Value float64
	Unit  string
	What  string
}

// Run measures the scale figures, working in dir; smoke makes it one short
// round.
func Run(ctx context.Context, smoke bool, dir string) ([]Figure, error) {
	return nil, nil
}
