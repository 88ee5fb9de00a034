package federation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// TestBlocklistMastodonExport: suspend refuses the domain and the names
// below it (as Mastodon's own blocks do); silence and noop pass; an
// internationalised name matches its punycode.
func TestBlocklistMastodonExport(t *testing.T) {
	e := startEdge(t, testConfig(func(f *configs.Federation) { f.Blocklist = "testdata/blocklist/mastodon-export.csv" }), Options{})
	for _, c := range []struct {
		domain string
		want   int
	}{
		{"spam.example", 403}, {"media.spam.example", 403}, {"SPAM.example", 403},
		{"xn--bcher-kva.example", 403},
		{"loud.example", 202}, {"noted.example", 202}, {"notspam.example", 202},
	} {
		if resp := e.post(t, "/inbox", cavageHeader("https://"+c.domain+"/users/a"), "{}"); resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.domain, resp.StatusCode, c.want)
		}
	}
	if !strings.Contains(e.logs.String(), "verdict=denied rule=blocklist") {
		t.Errorf("no refusal line naming the blocklist:\n%s", e.logs)
	}
}

// TestBlocklistBadRowsNamed: every bad row is reported as file:line.
func TestBlocklistBadRowsNamed(t *testing.T) {
	_, err := New(testConfig(func(f *configs.Federation) { f.Blocklist = "testdata/blocklist/bad-rows.csv" }), Options{Logger: discard()})
	if err == nil {
		t.Fatal("a broken blocklist was accepted")
	}
	for _, want := range []string{
		`bad-rows.csv:3: "not a domain" is not a domain`,
		`bad-rows.csv:4: severity "suspended": want suspend, silence or noop`,
		`bad-rows.csv:5: 1 fields`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, bad := range []string{"", "domain\nx.example\n", "\"unclosed\n"} {
		if _, err := parseBlocklist("x.csv", []byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "x.csv:") {
			t.Errorf("%q: error %v, want one naming x.csv:line", bad, err)
		}
	}
}

// TestBlocklistReloadKeepsLastGood: the file is re-read when it changes
// (also when replaced by rename) and on ReloadBlocklist (SIGHUP); a
// broken file keeps the last good list and logs why, once.
func TestBlocklistReloadKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "blocks.csv")
	write := func(rows ...string) {
		tmp := path + ".tmp"
		data := "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n" + strings.Join(rows, "\n") + "\n"
		if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil { // as an export script replaces it
			t.Fatal(err)
		}
	}
	write("a.example,suspend,false,false,,false")
	e := startEdge(t, testConfig(func(f *configs.Federation) { f.Blocklist = path }), Options{WatchInterval: 10 * time.Millisecond})
	status := func(d string) int {
		return e.post(t, "/inbox", cavageHeader("https://"+d+"/users/a"), "{}").StatusCode
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5s; log:\n%s", what, e.logs)
			}
		}
	}
	if status("a.example") != 403 || status("b.example") != 202 {
		t.Fatal("the first list is not in force")
	}
	write("b.example,suspend,false,false,,false")
	eventually("the changed file is read", func() bool { return status("b.example") == 403 && status("a.example") == 202 })
	write("b.example,suspend,false,false,,false", "c.example,nonsense,false,false,,false")
	eventually("the broken file is logged", func() bool { return e.logs.Count("the last good list stays") > 0 })
	if status("b.example") != 403 {
		t.Error("a broken file dropped the last good list")
	}
	if !strings.Contains(e.logs.String(), "blocks.csv:3: severity") {
		t.Errorf("the log does not say file:line:\n%s", e.logs)
	}
	time.Sleep(100 * time.Millisecond)
	if n := e.logs.Count("the last good list stays"); n != 1 {
		t.Errorf("the broken file was logged %d times, want once", n)
	}
	if err := e.guard.ReloadBlocklist(); err == nil {
		t.Error("ReloadBlocklist of a broken file reported no error")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if status("b.example") != 403 {
		t.Error("a deleted file dropped the last good list")
	}
	write("d.example,suspend,false,false,,false")
	if err := e.guard.ReloadBlocklist(); err != nil {
		t.Fatal(err)
	}
	if status("d.example") != 403 || status("b.example") != 202 {
		t.Error("ReloadBlocklist did not apply the fixed file")
	}
}

// TestReconfigureKeepsLastGoodBlocklist: a reload (SIGHUP) with the same
// blocklist path and a broken file applies the rest of the config and
// keeps the last good list; a new path that is broken fails the reload.
func TestReconfigureKeepsLastGoodBlocklist(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "blocks.csv")
	head := "#domain,#severity\n"
	if err := os.WriteFile(path, []byte(head+"a.example,suspend\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(func(f *configs.Federation) { f.Blocklist = path })
	g, err := New(cfg, Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := os.WriteFile(path, []byte(head+"a.example,bogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.DenyDomains = []string{"z.example"}
	g2, err := g.Reconfigure(cfg, Options{Logger: discard()})
	if err != nil {
		t.Fatalf("same path, broken file: %v", err)
	}
	defer g2.Close()
	if !g2.blocks.current().set.has("a.example") || !g2.deny.has("z.example") {
		t.Error("the last good list or the new deny_domains is missing")
	}
	bad := filepath.Join(dir, "other.csv")
	if err := os.WriteFile(bad, []byte(head+"x,bogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Blocklist = bad
	if _, err := g2.Reconfigure(cfg, Options{Logger: discard()}); err == nil || !strings.Contains(err.Error(), "other.csv:2:") {
		t.Errorf("a new broken path: %v, want an error naming other.csv:2", err)
	}
}
