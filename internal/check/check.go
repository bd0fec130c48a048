// Package check holds the results of `secretbot check`: one harmless call per
// integration, printed as a table.
package check

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Statuses a Result can have.
const (
	OK   = "OK"
	Fail = "FAIL"
	Skip = "SKIP"
)

// Result is one finding about one integration.
type Result struct {
	Integration string
	Status      string
	Detail      string
}

// Render prints rs as an aligned table.
func Render(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INTEGRATION\tSTATUS\tDETAIL")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Integration, r.Status, r.Detail)
	}
	tw.Flush()
}

// Failed reports whether any result is a failure.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}
