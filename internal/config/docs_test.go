package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The configuration reference names every key and every variable Load reads,
// and its Lumi example loads.

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDocNamesEveryKey(t *testing.T) {
	doc := readDoc(t)
	for _, k := range keyPaths("", reflect.TypeFor[Config]()) {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/configuration.md does not describe `%s`", k)
		}
	}
}

// keyPaths lists the leaf keys of t as the reference writes them
// ("scopes[].eligible.users").
func keyPaths(prefix string, t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path, ft := join(prefix, name), t.Field(i).Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			path, ft = path+"[]", ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, keyPaths(path, ft)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

func TestDocNamesEveryVariable(t *testing.T) {
	doc := readDoc(t)
	asked := map[string]bool{}
	_, _ = Load("", func(k string) string { asked[k] = true; return "" })
	if len(asked) < 10 {
		t.Fatalf("only %d variables read", len(asked))
	}
	for k := range asked {
		if !strings.Contains(doc, "| `"+k+"` |") {
			t.Errorf("docs/configuration.md has no row for %s", k)
		}
	}
}

func TestDocExampleLoads(t *testing.T) {
	doc := readDoc(t)
	_, rest, ok := strings.Cut(doc, "## Lumi example")
	_, rest, ok2 := strings.Cut(rest, "```yaml\n")
	block, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no yaml block under ## Lumi example")
	}
	cfg, err := Load(writeFile(t, block), withEnv(nil))
	if err != nil {
		t.Fatalf("the documented example does not load:\n%v", err)
	}
	if len(cfg.Scopes) != 2 || cfg.Vault.Namespace != "lumi/platform" || len(cfg.Inventory.Secrets) != 3 {
		t.Errorf("unexpected example: %+v", cfg.Vault)
	}
}
