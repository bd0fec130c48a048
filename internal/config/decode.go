package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// The file is decoded by walking a yaml.Node tree alongside the Config
// struct rather than with yaml's KnownFields: KnownFields stops at the first
// unknown key and its type errors carry no key path, while an operator needs
// every problem, each named by where it is.

// decoder fills a Config from the node tree, recording problems and the key
// paths that were written (so defaults apply only to keys left out).
type decoder struct {
	p    *collector
	seen map[string]bool

	// Aliases make the node tree a graph: an anchor may contain itself, and
	// aliases of aliases expand exponentially ("billion laughs"). The walk
	// is bounded in depth and in nodes visited, whatever the file.
	visits, depth int
	tooBig        bool
}

const (
	maxDepth = 32
	maxNodes = 100000
)

// enter counts one node visited, one level deeper; false means stop here
// (the problem was recorded once). Every enter is paired with a leave.
func (d *decoder) enter() bool {
	d.visits++
	d.depth++
	if d.visits <= maxNodes && d.depth <= maxDepth {
		return true
	}
	if !d.tooBig {
		d.tooBig = true
		d.p.add("", "the file nests too deep or expands to too many values through anchors and aliases (an anchor that contains itself, or aliases of aliases)",
			fmt.Sprintf("at most %d levels and %d values, with anchors that do not contain themselves", maxDepth, maxNodes))
	}
	return false
}

func (d *decoder) leave() { d.depth-- }

// parseFile decodes data into cfg. A syntax error is one problem (yaml's
// message carries the line); otherwise every unknown key, wrong type and
// credential is listed. It reports whether the structure could be read at
// all, so callers skip semantic checks on a file that did not parse.
func parseFile(name string, data []byte, cfg *Config, p *collector) (seen map[string]bool, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		p.add("", fmt.Sprintf("%s is not valid YAML: %s", name, strings.TrimPrefix(err.Error(), "yaml: ")), "")
		return nil, false
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		p.add("", name+" holds more than one YAML document", "a single document")
		return nil, false
	}
	d := &decoder{p: p, seen: map[string]bool{}}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		d.decode("", doc.Content[0], reflect.ValueOf(cfg).Elem())
	}
	return d.seen, true
}

var durationType = reflect.TypeFor[Duration]()

func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	ok := d.enter()
	defer d.leave()
	if !ok {
		return
	}
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		if env := valueCredential(n.Value); env != "" {
			d.fail(path, credentialMsg(env), "")
			return
		}
		if n.Tag == "!!null" {
			return // same as leaving the key out
		}
	}
	d.seen[path] = true
	switch {
	case v.Type() == durationType:
		d.duration(path, n, v)
	case v.Kind() == reflect.Struct:
		d.mapping(path, n, v)
	case v.Kind() == reflect.Slice:
		d.sequence(path, n, v)
	default:
		d.scalar(path, n, v)
	}
}

// fail records a problem with the value at path and silences the path: the
// value was not used, so "required" or range complaints would be noise.
func (d *decoder) fail(path, msg, accepted string) {
	d.p.add(path, msg, accepted)
	d.p.silence(path)
}

func (d *decoder) duration(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "must be a single duration", DurationAccepted)
		return
	}
	t, err := ParseDuration(n.Value)
	if err != nil {
		d.fail(path, err.Error(), "")
		return
	}
	v.SetInt(int64(t))
}

func (d *decoder) scalar(path string, n *yaml.Node, v reflect.Value) {
	what := map[reflect.Kind]string{
		reflect.String: "text",
		reflect.Int:    "a whole number",
		reflect.Bool:   "true or false",
	}[v.Kind()]
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "must be a single value, not a "+kindName(n), what)
		return
	}
	if v.Kind() == reflect.String {
		v.SetString(n.Value)
		return
	}
	// Decode into a fresh value: yaml's own errors repeat the input, which
	// this message does not need.
	ptr := reflect.New(v.Type())
	if err := n.Decode(ptr.Interface()); err != nil {
		d.fail(path, "must be "+what, what)
		return
	}
	v.Set(ptr.Elem())
}

func (d *decoder) sequence(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, "must be a list, not a "+kindName(n), "a list such as [a, b] or one \"- item\" per line")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	ok := d.enter() // merges ("<<: *self") recurse through here
	defer d.leave()
	if !ok {
		return
	}
	fields, names := yamlFields(v.Type())
	if n.Kind != yaml.MappingNode {
		d.fail(orTop(path), "must be a mapping of keys, not a "+kindName(n), "keys "+strings.Join(names, ", "))
		return
	}
	// "<<: *anchor" merges other mappings in; keys written here win over
	// merged ones wherever they stand, so merges go first.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Tag == "!!merge" {
			d.merge(path, n.Content[i+1], v)
		}
	}
	lines := map[string]int{} // yaml.v3 only refuses a repeated key when decoding into Go values
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			continue
		}
		if first, ok := lines[k.Value]; ok && valueCredential(k.Value) == "" {
			d.p.add(join(path, k.Value), fmt.Sprintf("written twice (lines %d and %d)", first, k.Line), "each key once")
			d.scanUnknown(join(path, k.Value), val)
			continue
		}
		lines[k.Value] = k.Line
		if idx, ok := fields[k.Value]; ok {
			// A key written here replaces a merged value whole: merging
			// field by field could widen, say, who is eligible.
			f := v.Field(idx)
			f.SetZero()
			d.decode(join(path, k.Value), val, f)
			continue
		}
		d.unknown(path, k, val, names)
	}
}

func (d *decoder) merge(path string, n *yaml.Node, v reflect.Value) {
	n = resolve(n)
	if n.Kind == yaml.SequenceNode {
		// The first mapping listed wins, so it is applied last.
		for i := len(n.Content) - 1; i >= 0; i-- {
			d.mapping(path, resolve(n.Content[i]), v)
		}
		return
	}
	d.mapping(path, n, v)
}

// unknown reports a key the schema does not have. A key named like a
// credential, or a credential written as a key, gets the credential message
// instead (never repeating the text); the value under an unknown key is
// still searched for credentials.
func (d *decoder) unknown(path string, k, val *yaml.Node, names []string) {
	if env := valueCredential(k.Value); env != "" {
		d.p.add(orTop(path), credentialMsg(env), "")
		return
	}
	key := join(path, k.Value)
	if env := keyCredential(path, k.Value); env != "" {
		d.p.add(key, credentialMsg(env), "")
		d.p.silence(key)
		return
	}
	msg := "unknown key"
	if s := suggest(k.Value, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	where := "keys of " + orTop(path)
	d.p.add(key, msg, where+": "+strings.Join(names, ", "))
	d.scanUnknown(key, val)
}

// scanUnknown looks for credentials under a key that is not decoded.
func (d *decoder) scanUnknown(path string, n *yaml.Node) {
	ok := d.enter()
	defer d.leave()
	if !ok {
		return
	}
	n = resolve(n)
	switch n.Kind {
	case yaml.ScalarNode:
		if env := valueCredential(n.Value); env != "" {
			d.p.add(path, credentialMsg(env), "")
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.scanUnknown(fmt.Sprintf("%s[%d]", path, i), c)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if env := valueCredential(k.Value); env != "" {
				d.p.add(path, credentialMsg(env), "")
				continue
			}
			if env := keyCredential(path, k.Value); env != "" {
				d.p.add(join(path, k.Value), credentialMsg(env), "")
				continue
			}
			d.scanUnknown(join(path, k.Value), val)
		}
	}
}

// resolve follows aliases ("*name") to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// yamlFields maps a struct's YAML keys to field indexes, and lists the keys
// in declaration order for messages.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	return fields, names
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	}
	return "value"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// suggest returns the known key closest to a misspelt one, if any is close.
func suggest(key string, names []string) string {
	type cand struct {
		name string
		dist int
	}
	var cs []cand
	k := snake(key)
	for _, n := range names {
		if d := editDistance(k, n); d <= 2 || (len(k) >= 4 && strings.Contains(n, k)) {
			cs = append(cs, cand{n, d})
		}
	}
	if len(cs) == 0 {
		return ""
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].dist < cs[j].dist })
	return cs[0].name
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
