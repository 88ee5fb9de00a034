package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Dante starts Debian's dante-server (danted, upstream's sockd) on a free
// loopback port as a SOCKS5 server that demands username/password
// (socksmethod: username). Outgoing connections leave from externalAddr
// (dante's "external:"), so a test destination can tell them from direct
// ones.
//
// Dante checks the password against the system user database (getpwnam and
// the shadow entry). So that a test never adds a user to the host, danted
// runs in a private mount namespace (unshare -m) in which /etc/passwd is the
// host's file plus the test user and /etc/shadow holds only that user's
// SHA-512 crypt hash; both are bind-mounted from t.TempDir(). This needs
// root, which the tests run as.
func Dante(t testing.TB, externalAddr, user, password string) *Process {
	t.Helper()
	bin := Binary(t, "danted", "dante-server")
	unshare := Binary(t, "unshare", "util-linux")
	openssl := Binary(t, "openssl", "openssl")
	if os.Geteuid() != 0 {
		t.Fatalf("testenv.Dante: danted with username auth needs root (a private /etc/shadow in a mount namespace)")
	}
	if user == "" || strings.ContainsAny(user+password, ":\n") {
		t.Fatalf("testenv.Dante: bad user %q", user)
	}
	dir := t.TempDir()
	hash, err := cryptHash(openssl, password)
	if err != nil {
		t.Fatalf("testenv.Dante: hash password: %v", err)
	}
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatalf("testenv.Dante: %v", err)
	}
	passwd := string(hostPasswd) + fmt.Sprintf("%s:x:60123:65534::/nonexistent:/usr/sbin/nologin\n", user)
	shadow := fmt.Sprintf("%s:%s:20000:0:99999:7:::\n", user, strings.TrimSpace(string(hash)))
	addr := Loopback(t)
	host, port := splitHostPort(t, addr)
	conf := fmt.Sprintf(`logoutput: stderr
internal: %s port = %s
external: %s
socksmethod: username
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }
`, host, port, externalAddr)
	files := map[string]string{"passwd": passwd, "shadow": shadow, "sockd.conf": conf}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatalf("testenv.Dante: %v", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "passwd"), 0o644); err != nil {
		t.Fatalf("testenv.Dante: %v", err)
	}
	script := fmt.Sprintf("mount --bind %s /etc/passwd && mount --bind %s /etc/shadow && exec %s -f %s -N 1 -p %s",
		filepath.Join(dir, "passwd"), filepath.Join(dir, "shadow"), bin,
		filepath.Join(dir, "sockd.conf"), filepath.Join(dir, "sockd.pid"))
	// unshare execs its command without forking, and sh execs danted, so
	// the started process is danted itself; its children exit with it.
	return Start(t, addr, unshare, "-m", "--", "sh", "-c", script)
}

// cryptHash returns the SHA-512 crypt(3) hash of password.
func cryptHash(openssl, password string) ([]byte, error) {
	cmd := exec.Command(openssl, "passwd", "-6", "-stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	return cmd.Output()
}
