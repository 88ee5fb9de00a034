package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

func TestVersion(t *testing.T) {
	code, out, _ := run(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "fedigate ") || !strings.Contains(out, runtime.Version()) || !strings.Contains(out, "commit ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestUnknownCommandAndStrayArguments(t *testing.T) {
	if code, _, errOut := run(t, t.TempDir(), "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := run(t, t.TempDir(), "init", "-preset", "mastodon", "extra"); code != 2 {
		t.Errorf("stray argument: exit %d", code)
	}
	if code, _, errOut := run(t, t.TempDir(), "init", "-preset", "lemmy"); code != 2 || !strings.Contains(errOut, "unknown preset") {
		t.Errorf("unknown preset: %d %q", code, errOut)
	}
}

// Every preset's `init` output is a config `validate` accepts.
func TestInitOutputValidates(t *testing.T) {
	for _, p := range configs.Presets {
		t.Run(p, func(t *testing.T) {
			dir := t.TempDir()
			code, out, _ := run(t, dir, "init", "-preset", p)
			if code != 0 || !strings.Contains(out, `preset = "`+p+`"`) {
				t.Fatalf("init: %d\n%s", code, out)
			}
			path := filepath.Join(dir, "fedigate.toml")
			if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			code, vout, verr := run(t, dir, "validate", "-config", path)
			if code != 0 || !strings.Contains(vout, ": ok") {
				t.Fatalf("validate: %d\n%s%s", code, vout, verr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("validate wrote files: %v", entries)
			}
		})
	}
}

// validate lists every fault as FILE:LINE: and exits 1.
func TestValidateListsEveryFault(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.toml")
	text := "[server]\nlisten = \"443\"\nbogus = 1\n\n[ratelimit]\nstore = \"redis\"\n\n[signup]\npow_difficulty = 99\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, dir, "validate", "-config", path)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{path + ":2: server.listen", path + ":3: server.bogus", path + ":6: ratelimit.store", path + ":9: signup.pow_difficulty"}
	if len(lines) != len(want) {
		t.Fatalf("want %d faults, got:\n%s", len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: want prefix %q, got %q", i, w, lines[i])
		}
	}
	if code, _, _ := run(t, dir, "validate", "-config", filepath.Join(dir, "missing.toml")); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
}

// TestValidateNamesBadBlocklistRows: validate reads the blocklist as run
// does and names each bad row as file:line.
func TestValidateNamesBadBlocklistRows(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "blocks.csv")
	if err := os.WriteFile(csv, []byte("#domain,#severity\nok.example,suspend\nbad domain,suspend\nx.example,maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "f.toml")
	if err := os.WriteFile(path, []byte("[egress]\nlisten = \"\"\n[federation]\nblocklist = \""+csv+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, dir, "validate", "-config", path)
	if code != 1 || !strings.Contains(out, csv+":3: \"bad domain\" is not a domain") || !strings.Contains(out, csv+":4: severity \"maybe\"") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

// The certificate is made once, reused across runs, and verifies with a
// real curl against the printed CA; the printed fingerprint is the leaf's.
func TestCertReusedAndVerifiedWithCurl(t *testing.T) {
	dir := t.TempDir()
	_, backend := startBackend(t, "web")
	addr := testenv.Loopback(t)
	writeConfig(t, dir, baseConfig(dir, addr, "", backend, ""))
	ca1, fp1 := caPath(t, dir)
	ca2, fp2 := caPath(t, dir)
	if ca1 != ca2 || fp1 != fp2 {
		t.Fatalf("cert not reused: %s %s / %s %s", ca1, fp1, ca2, fp2)
	}
	caBytes, _ := os.ReadFile(ca1)
	st, err := os.Stat(filepath.Join(dir, "state"))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", st.Mode(), err)
	}
	g := startGateway(t, dir, addr)
	if got := leafFingerprint(t, ca1, addr); got != fp1 {
		t.Errorf("served leaf %s, cert printed %s", got, fp1)
	}
	code, body := curl(t, ca1, "https://social.test:"+strconv.Itoa(portOf(addr))+"/hello?x=1", addr)
	if code != "200" || !strings.Contains(body, `"path":"/hello?x=1"`) {
		t.Fatalf("curl: %s %s", code, body)
	}
	g.signal(t, sigterm)
	if c := g.wait(t, 15e9); c != 0 {
		t.Fatalf("exit %d", c)
	}
	// A second run serves the same CA.
	startGateway(t, dir, addr)
	if got := leafFingerprint(t, ca1, addr); got != fp1 {
		t.Errorf("after restart the leaf changed: %s != %s", got, fp1)
	}
	if now, _ := os.ReadFile(ca1); string(now) != string(caBytes) {
		t.Error("CA rewritten on restart")
	}
	if c := pemFirstCert(t, ca1); !c.IsCA {
		t.Error("caPool file is not a CA certificate")
	}
}

// The unit file passes systemd's own check.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testenv.Binary(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("../../configs/deploy/fedigate.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/fedigate", binary)
	path := filepath.Join(dir, "fedigate.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// Warnings about the host (no running systemd, unknown user) are not
	// the unit's fault; a line naming the unit file's own directives is.
	bad := regexp.MustCompile(`fedigate\.service:\d+:|Unknown key|Failed to parse|Invalid`)
	if bad.Match(out) {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
