package vaulttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// readmePath is deploy/vault/README.md, relative to the repository root.
const readmePath = "deploy/vault/README.md"

// RepoRoot is the secretbot repository root (found from this file's path,
// so it does not depend on the test's working directory).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// applyREADME runs the `vault` commands of the README's sh blocks, in order,
// as an operator would, and returns the values printed with -field=.
// Lines that are not vault commands (export, comments, secretbot check) are
// skipped; a vault command this interpreter does not know fails the test,
// so the README and the e2e setup cannot drift apart silently.
func (v *Vault) applyREADME(t testing.TB) map[string]string {
	t.Helper()
	return v.applyBlocks(t, "")
}

// ApplyREADMEBlock runs the commands of the README's optional blocks
// opened with "```sh <name>" (e.g. "full-scan"), as an operator turning
// that option on would. Do it before the bot logs in: a login carries the
// AppRole role's policies as they were then.
func (v *Vault) ApplyREADMEBlock(t testing.TB, name string) {
	t.Helper()
	v.applyBlocks(t, name)
}

func (v *Vault) applyBlocks(t testing.TB, block string) map[string]string {
	t.Helper()
	root := RepoRoot()
	cmds, err := readmeCommands(filepath.Join(root, readmePath), block)
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	out := map[string]string{}
	for _, args := range cmds {
		line := strings.Join(args, " ")
		if err := v.run(root, args, out); err != nil {
			t.Fatalf("vaulttest: %s: %q: %v", readmePath, line, err)
		}
		v.Applied = append(v.Applied, line)
	}
	return out
}

// readmeCommands returns the `vault ...` lines of the ```sh blocks (block
// "") or of the optional ```sh <block> blocks, split into words, with
// comments and line continuations handled.
func readmeCommands(path, block string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cmds [][]string
	inSh := false
	pending := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "```") {
			info := strings.TrimSpace(strings.TrimPrefix(line, "```"))
			lang, name, _ := strings.Cut(info, " ")
			inSh = !inSh && (lang == "sh" || lang == "bash" || lang == "shell") && strings.TrimSpace(name) == block
			continue
		}
		if !inSh {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""
		words := splitWords(line)
		if len(words) > 0 && words[0] == "vault" {
			cmds = append(cmds, words[1:])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("%s has no vault commands in a ```sh %s block", path, block)
	}
	return cmds, nil
}

// splitWords splits a shell line on spaces, honouring simple quotes and
// dropping a trailing # comment.
func splitWords(line string) []string {
	var words []string
	var cur strings.Builder
	quote := rune(0)
	inWord := false
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '#' && !inWord:
			return words
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// flags separates -name=value flags (and bare -f) from positional words.
func flags(args []string) (map[string]string, []string) {
	fl := map[string]string{}
	var pos []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			k, val, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			fl[k] = val
			continue
		}
		pos = append(pos, a)
	}
	return fl, pos
}

func (v *Vault) run(root string, args []string, out map[string]string) error {
	if len(args) < 2 {
		return fmt.Errorf("unknown vault command")
	}
	fl, pos := flags(args[2:])
	sub := args[0] + " " + args[1]
	switch {
	case sub == "secrets enable" && len(pos) == 1:
		return v.enableSecrets(fl["path"], pos[0])
	case sub == "auth enable" && len(pos) == 1:
		path := fl["path"]
		if path == "" {
			path = pos[0]
		}
		return v.Root.Sys().EnableAuthWithOptions(path, &api.EnableAuthOptions{Type: pos[0]})
	case sub == "policy write" && len(pos) == 2:
		b, err := os.ReadFile(filepath.Join(root, pos[1]))
		if err != nil {
			return err
		}
		return v.Root.Sys().PutPolicy(pos[0], string(b))
	}
	fl, pos = flags(args[1:])
	switch {
	case args[0] == "write" && len(pos) >= 1:
		data, err := writeData(root, pos[1:])
		if err != nil {
			return err
		}
		sec, err := v.Root.Logical().Write(pos[0], data)
		return field(sec, err, fl["field"], out)
	case args[0] == "read" && len(pos) == 1:
		sec, err := v.Root.Logical().Read(pos[0])
		return field(sec, err, fl["field"], out)
	}
	return fmt.Errorf("vaulttest does not know this vault command; teach setup.go")
}

func (v *Vault) enableSecrets(path, typ string) error {
	in := &api.MountInput{Type: typ}
	if typ == "kv-v2" {
		in = &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}
	}
	if path == "" {
		path = typ
	}
	if err := v.Root.Sys().Mount(path, in); err != nil {
		return err
	}
	if in.Options["version"] == "2" {
		return v.waitKV(path)
	}
	return nil
}

// waitKV retries a first write while a fresh KV v2 mount upgrades, then
// removes the probe with all its history.
func (v *Vault) waitKV(mount string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv := v.Root.KVv2(mount)
	for {
		_, err := kv.Put(ctx, "vaulttest-probe", map[string]any{"ok": "1"})
		if err == nil {
			return kv.DeleteMetadata(ctx, "vaulttest-probe")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("KV v2 mount %s not writable: %w", mount, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// writeData turns `@file.json` or `key=value ...` into a request body.
func writeData(root string, args []string) (map[string]any, error) {
	data := map[string]any{}
	for _, a := range args {
		if file, ok := strings.CutPrefix(a, "@"); ok {
			b, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(b, &data); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			continue
		}
		k, val, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("argument %q is not key=value", a)
		}
		data[k] = val
	}
	return data, nil
}

func field(sec *api.Secret, err error, name string, out map[string]string) error {
	if err != nil || name == "" {
		return err
	}
	if sec == nil || sec.Data[name] == nil {
		return fmt.Errorf("no field %q in the reply", name)
	}
	out[name] = fmt.Sprint(sec.Data[name])
	return nil
}
