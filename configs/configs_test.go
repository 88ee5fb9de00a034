package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Each example file documents its preset faithfully: loading it gives
// exactly the preset's defaults.
func TestExamplesAreThePresetDefaults(t *testing.T) {
	for _, p := range Presets {
		t.Run(p, func(t *testing.T) {
			b, err := Example(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(p+".toml", b)
			if err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
			want, _ := Default(p)
			want.Source = p + ".toml"
			g, w := reflect.ValueOf(*got), reflect.ValueOf(*want)
			for i := 0; i < g.NumField(); i++ {
				if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
					t.Errorf("[%s] differs from Default(%q):\n got %+v\nwant %+v", g.Type().Field(i).Name, p, g.Field(i), w.Field(i))
				}
			}
		})
	}
}

func TestBuiltinDefaultIsValid(t *testing.T) {
	c := BuiltinDefault()
	fs := &faults{file: "builtin", pos: positions{}}
	validate(c, fs, nil)
	if err := fs.err(); err != nil {
		t.Fatalf("built-in default does not validate: %v", err)
	}
	if c.Server.Listen != ":8443" || c.Source != BuiltinSource || c.Preset != PresetMastodon {
		t.Errorf("built-in default: %+v", c.Server)
	}
}

// Files in testdata/good load; files in testdata/bad carry, on each line
// that must be reported, a comment `#! want: TEXT`, and exactly those lines
// are reported, each with TEXT in its message.
func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.toml")
	if len(files) == 0 {
		t.Fatal("no testdata/good files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatalf("want it to load:\n%v", err)
			}
		})
	}
}

var wantRe = regexp.MustCompile(`#! want: (.*)$`)

func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.toml")
	if len(files) == 0 {
		t.Fatal("no testdata/bad files")
	}
	t.Setenv("FEDIGATE_TEST_EMPTY", "")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int][]string{}
			for i, line := range strings.Split(string(data), "\n") {
				if m := wantRe.FindStringSubmatch(line); m != nil {
					want[i+1] = append(want[i+1], m[1])
				}
			}
			cfg, err := Load(f)
			if err == nil || cfg != nil {
				t.Fatalf("want faults, got a config")
			}
			got := map[int][]string{}
			for _, fault := range Faults(err) {
				if !strings.HasPrefix(fault.Error(), f+":"+strconv.Itoa(fault.Line)+": ") {
					t.Errorf("fault not in file:line form: %q", fault.Error())
				}
				got[fault.Line] = append(got[fault.Line], fault.Error())
			}
			for line, texts := range want {
				for _, text := range texts {
					found := false
					for _, g := range got[line] {
						found = found || strings.Contains(g, text)
					}
					if !found {
						t.Errorf("line %d: want a fault with %q; got %q", line, text, got[line])
					}
				}
			}
			for line, g := range got {
				if _, ok := want[line]; !ok {
					t.Errorf("unexpected fault(s) on line %d: %q", line, g)
				}
			}
		})
	}
}

func TestFaultKinds(t *testing.T) {
	_, err := Parse("x.toml", []byte("[server]\nlisten = 443\nbogus = 1\n[tls]\nmode = \"files\"\n"))
	for _, kind := range []error{ErrBadValue, ErrUnknownKey, ErrContradiction} {
		if !errors.Is(err, kind) {
			t.Errorf("errors.Is(err, %v) = false; err = %v", kind, err)
		}
	}
	_, err = Parse("x.toml", []byte("[server\nlisten = 1"))
	if !errors.Is(err, ErrSyntax) || !strings.HasPrefix(err.Error(), "x.toml:1: ") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestPresetRuleOverrideKeepsUnstatedKeys(t *testing.T) {
	c, err := Parse("x.toml", []byte("[[ratelimit.rule]]\nname = \"sign-up\"\nlimit = 10\n\n[[ratelimit.rule]]\nname = \"media-proxy\"\ndisabled = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	def, _ := Default(PresetMastodon)
	if len(c.RateLimit.Rules) != len(def.RateLimit.Rules)-1 {
		t.Fatalf("want the preset's rules less media-proxy; got %d rules", len(c.RateLimit.Rules))
	}
	for _, r := range c.RateLimit.Rules {
		if r.Name == "media-proxy" {
			t.Error("disabled rule kept")
		}
		if r.Name == "sign-up" && (r.Limit != 10 || r.Period != def.RateLimit.Rules[0].Period || len(r.Paths) != 2) {
			t.Errorf("sign-up override: %+v", r)
		}
	}
}

func TestSecretComesFromEnvironment(t *testing.T) {
	t.Setenv("FEDIGATE_TEST_SECRET", "s3cret")
	c, err := Parse("x.toml", []byte("[signup]\ngate = \"turnstile\"\nsite_key = \"k\"\nsecret_env = \"FEDIGATE_TEST_SECRET\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Signup.Secret != "s3cret" {
		t.Errorf("secret = %q", c.Signup.Secret)
	}
}

// A password in a URL never reaches a fault message.
func TestFaultsDoNotEchoSecrets(t *testing.T) {
	_, err := Parse("x.toml", []byte("[ratelimit]\nstore = \"redis\"\nredis_url = \"http://u:hunter2@h:1\"\n[egress]\nupstream = \"socks4://u:hunter2@h:1\"\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err = %v", err)
	}
}
