package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/secretbot/secretbot/e2e/fakeslack"
)

// TestMain records every Web API method the bot calls on any fake Slack
// during the whole suite, and after all tests (parallel ones included) checks
// that manifest.yaml grants a scope for each (TestF13_ManifestCoversCalls
// checks the same mid-run, with a message naming the test).
func TestMain(m *testing.M) {
	stop := fakeslack.ObserveCalls(suiteCalls.add)
	code := m.Run()
	stop()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	removeCaptures()
	if methods := suiteCalls.methods(); len(methods) > 0 {
		if gaps, err := manifestGapsFromRepo(methods); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: manifest check after the suite: %v\n", err)
			code = 1
		} else if len(gaps) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: Web API methods the bot called during the suite are not covered by manifest.yaml:\n")
			for _, g := range gaps {
				fmt.Fprintf(os.Stderr, "  %s\n", g)
			}
			code = 1
		}
	}
	os.Exit(code)
}
