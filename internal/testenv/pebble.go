package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Pebble is a running Pebble ACME server (Let's Encrypt's test CA) that
// marks every challenge valid.
type Pebble struct {
	*Process
	Directory string // the ACME directory URL
	ServerCA  string // PEM file that signs Pebble's own HTTPS certificate
	mgmt      string
}

var pebbleBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// StartPebble builds Pebble (once per test binary) from the module cache
// and runs it on loopback. validity is the lifetime of the certificates
// it issues.
func StartPebble(t testing.TB, validity time.Duration) *Pebble {
	t.Helper()
	goBin := Binary(t, "go", "golang-go")
	pebbleBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "fedigate-pebble-")
		if err != nil {
			pebbleBuild.err = err
			return
		}
		pebbleBuild.path = filepath.Join(dir, "pebble")
		pebbleBuild.out, pebbleBuild.err = exec.Command(goBin, "build", "-o", pebbleBuild.path, "github.com/letsencrypt/pebble/v2/cmd/pebble").CombinedOutput()
	})
	if pebbleBuild.err != nil {
		t.Fatalf("build pebble: %v\n%s", pebbleBuild.err, pebbleBuild.out)
	}
	modDir, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		t.Fatalf("find pebble's module: %v", err)
	}
	certs := filepath.Join(strings.TrimSpace(string(modDir)), "test", "certs")
	listen, mgmt := Loopback(t), Loopback(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           listen,
		"managementListenAddress": mgmt,
		"certificate":             filepath.Join(certs, "localhost", "cert.pem"),
		"privateKey":              filepath.Join(certs, "localhost", "key.pem"),
		"httpPort":                FreePort(t),
		"tlsPort":                 FreePort(t),
		"profiles":                map[string]any{"default": map[string]any{"description": "test", "validityPeriod": uint64(validity.Seconds())}},
	}}
	path := filepath.Join(t.TempDir(), "pebble.json")
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pebbleBuild.path, "-config", path, "-strict=false")
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p := &Pebble{Directory: "https://" + listen + "/dir", ServerCA: filepath.Join(certs, "pebble.minica.pem"), mgmt: mgmt}
	p.Process = StartCmd(t, listen, cmd)
	return p
}

// Roots is the pool of Pebble's current issuing root (it changes with
// every start).
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	ca, _ := os.ReadFile(p.ServerCA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pemBytes, _ := io.ReadAll(resp.Body)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("pebble root: %s", pemBytes)
	}
	return roots
}
