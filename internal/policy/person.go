// Package policy decides who may do what. Pure functions over configuration
// and the identity Slack reports; no I/O.
package policy

// Person is a Slack user as Slack reports them at the moment of asking:
// identity never comes from text the user typed.
type Person struct {
	SlackID string
	Email   string
	Name    string
	// Groups holds the handles and ids of the user groups the person is in.
	Groups  []string
	Deleted bool
	Bot     bool
	Guest   bool
}
