package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with the configuration. Key is the YAML key
// path ("scopes[1].max_ttl", indexes from 0) or the environment variable
// ("VAULT_ADDR"); it is empty for the file as a whole. Msg and Accepted never
// contain a credential.
type Problem struct {
	Key      string
	Msg      string
	Accepted string // what would be accepted instead; may be empty
}

// String formats the problem as "key: msg (accepted: ...)".
func (p Problem) String() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Accepted != "" {
		fmt.Fprintf(&b, " (accepted: %s)", p.Accepted)
	}
	return b.String()
}

// Problems is the error Load and LoadForAudit return: every problem found,
// not only the first, so an operator fixes the file in one pass.
type Problems struct {
	List []Problem
}

// Error prints one line per problem.
func (p *Problems) Error() string {
	lines := make([]string, len(p.List))
	for i, q := range p.List {
		lines[i] = q.String()
	}
	return strings.Join(lines, "\n")
}

// collector gathers problems. A key found holding a credential is silenced:
// its value was dropped, and further complaints about it (such as "required")
// would only distract from the real one.
type collector struct {
	list   []Problem
	silent []string
}

func (c *collector) add(key, msg, accepted string) {
	for _, s := range c.silent {
		if key == s || strings.HasPrefix(key, s+".") || strings.HasPrefix(key, s+"[") {
			return
		}
	}
	c.list = append(c.list, Problem{Key: key, Msg: msg, Accepted: accepted})
}

func (c *collector) silence(key string) { c.silent = append(c.silent, key) }

func (c *collector) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return &Problems{List: c.list}
}
