package signupgate

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedigate/fedigate/internal/testenv"
)

func TestPassCookieAttributes(t *testing.T) {
	tg := newTestGate(t, testConfig(), t.TempDir(), nil)
	tok := tg.challengeFor(t, "192.0.2.1")
	w := tg.do("POST", Prefix+"verify", "192.0.2.1", "", formOf("token", tok, "nonce", solve(tok, 8), "return", "/auth/sign_up?x=1"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/auth/sign_up?x=1" {
		t.Fatalf("verify: %d %q", w.Code, w.Header().Get("Location"))
	}
	c := w.Result().Cookies()[0]
	if c.Name != PassCookie || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Fatalf("cookie %+v", c)
	}
}

func TestKeyFileCreated0600AndReused(t *testing.T) {
	dir := t.TempDir()
	tg := newTestGate(t, testConfig(), dir, nil)
	st, err := os.Stat(filepath.Join(dir, "signup.key"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("signup.key: %v %v", st, err)
	}
	pass := tg.passFor(t, "192.0.2.1")
	tg2 := newTestGate(t, testConfig(), dir, nil)
	if w := tg2.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusFound {
		t.Fatalf("second gateway with the same key: %d", w.Code)
	}
	short := filepath.Join(t.TempDir(), "short")
	_ = os.WriteFile(short, []byte("tooshort"), 0o600)
	cfg := testConfig()
	cfg.SecretFile = short
	if _, err := New(gateConfig(cfg, mastodonRoutes(), ""), Options{}); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestAttackForgedPassRefused(t *testing.T) {
	tg := newTestGate(t, testConfig(), t.TempDir(), nil)
	pass := tg.passFor(t, "192.0.2.1")
	other := newTestGate(t, testConfig(), t.TempDir(), nil) // another key
	if w := other.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusForbidden || other.seen.Load() != 0 {
		t.Fatalf("pass signed with another key: %d", w.Code)
	}
	forged := newTokenForTest(t, kindPass, "192.0.2.1", time.Now().Add(time.Hour)).sign(make([]byte, 32))
	if w := tg.do("POST", "/auth", "192.0.2.1", forged, formOf()); w.Code != http.StatusForbidden {
		t.Fatalf("zero-key forgery: %d", w.Code)
	}
	if w := tg.do("POST", "/auth", "192.0.2.1", "", formOf()); w.Code != http.StatusForbidden {
		t.Fatalf("no pass: %d", w.Code)
	}
	if tg.seen.Load() != 0 {
		t.Fatal("backend saw a refused sign-up")
	}
}

func TestAttackBitFlippedPassRefused(t *testing.T) {
	tg := newTestGate(t, testConfig(), t.TempDir(), nil)
	pass := tg.passFor(t, "192.0.2.1")
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(pass); i++ {
		b := []byte(pass)
		b[i] = alphabet[(indexByte(alphabet, b[i])+1)%64]
		if _, err := parseToken(string(b), tg.g.key, kindPass, mustAddr("192.0.2.1"), tg.clk.Now()); err == nil {
			t.Fatalf("flip at %d accepted", i)
		}
	}
	if _, err := parseToken(pass, tg.g.key, kindChallenge, mustAddr("192.0.2.1"), tg.clk.Now()); err != errKind {
		t.Fatalf("pass used as a challenge: %v", err)
	}
}

func TestAttackExpiredPassRefused(t *testing.T) {
	tg := newTestGate(t, testConfig(), t.TempDir(), nil)
	pass := tg.passFor(t, "192.0.2.1")
	tg.clk.Advance(time.Hour)
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusForbidden || tg.seen.Load() != 0 {
		t.Fatalf("expired pass: %d", w.Code)
	}
}

func TestAttackMovedPassRefusedButSameIPv6Slash64Accepted(t *testing.T) {
	tg := newTestGate(t, testConfig(), t.TempDir(), nil)
	pass4 := tg.passFor(t, "192.0.2.1")
	if w := tg.do("POST", "/auth", "192.0.2.2", pass4, formOf()); w.Code != http.StatusForbidden {
		t.Fatalf("IPv4 pass from another address: %d", w.Code)
	}
	pass6 := tg.passFor(t, "2001:db8:1:2::1")
	if w := tg.do("POST", "/auth", "2001:db8:1:3::1", pass6, formOf()); w.Code != http.StatusForbidden {
		t.Fatalf("IPv6 pass from another /64: %d", w.Code)
	}
	if tg.seen.Load() != 0 {
		t.Fatal("backend saw a moved pass")
	}
	if w := tg.do("POST", "/auth", "2001:db8:1:2:ffff::9", pass6, formOf()); w.Code != http.StatusFound || tg.seen.Load() != 1 {
		t.Fatalf("IPv6 pass from the same /64: %d", w.Code)
	}
}

func TestAttackReplayedPassRefusedAndPassNotStripped(t *testing.T) {
	tg := newTestGate(t, testConfig(), t.TempDir(), nil)
	pass := tg.passFor(t, "192.0.2.1")
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusFound {
		t.Fatalf("first sign-up: %d", w.Code)
	}
	if ck, _ := tg.lastCk.Load().(string); ck != "" {
		t.Fatalf("backend saw the pass cookie: %q", ck)
	}
	w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf())
	if w.Code != http.StatusForbidden || tg.seen.Load() != 1 {
		t.Fatalf("replay: %d seen %d", w.Code, tg.seen.Load())
	}
}

func TestFormErrorKeepsPassUsable(t *testing.T) {
	tg := newTestGate(t, testConfig(), t.TempDir(), nil)
	pass := tg.passFor(t, "192.0.2.1")
	tg.status.Store(http.StatusUnprocessableEntity)
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("form error: %d", w.Code)
	}
	tg.status.Store(http.StatusFound)
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusFound || tg.seen.Load() != 2 {
		t.Fatalf("after a form error the pass must still work: %d", w.Code)
	}
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusForbidden {
		t.Fatalf("after an accepted sign-up the pass is spent: %d", w.Code)
	}
}

func TestAttackReplayAcrossGatewaysSharingRedis(t *testing.T) {
	srv := testenv.Redis(t)
	keyDir := t.TempDir()
	rdb1 := redis.NewClient(&redis.Options{Addr: srv.Addr})
	rdb2 := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb1.Close(); rdb2.Close() })
	a := newTestGate(t, testConfig(), keyDir, rdb1)
	b := newTestGate(t, testConfig(), keyDir, rdb2)
	b.clk = a.clk
	pass := a.passFor(t, "192.0.2.1")
	if w := a.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusFound {
		t.Fatalf("gateway a: %d", w.Code)
	}
	if w := b.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusForbidden || b.seen.Load() != 0 {
		t.Fatalf("replay on gateway b: %d", w.Code)
	}
	ttl := rdb1.PTTL(context.Background(), redisKey(mustParse(t, a, pass).id)).Val()
	if ttl <= 0 || ttl > time.Hour {
		t.Fatalf("spent key ttl %v", ttl)
	}
}

func TestAttackConcurrentDoubleSpendOnlyOneAdmitted(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	for _, store := range []struct {
		name string
		rdb  redis.UniversalClient
	}{{"memory", nil}, {"redis", rdb}} {
		t.Run(store.name, func(t *testing.T) {
			tg := newTestGate(t, testConfig(), t.TempDir(), store.rdb)
			pass := tg.passFor(t, "192.0.2.1")
			var wg sync.WaitGroup
			var mu sync.Mutex
			admitted := 0
			for i := 0; i < 16; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code == http.StatusFound {
						mu.Lock()
						admitted++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if admitted != 1 || tg.seen.Load() != 1 {
				t.Fatalf("admitted %d, backend saw %d", admitted, tg.seen.Load())
			}
		})
	}
}

func TestRedisDownFailsClosed(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	tg := newTestGate(t, testConfig(), t.TempDir(), rdb)
	tok := tg.challengeFor(t, "192.0.2.1")
	pass := tg.passFor(t, "192.0.2.1")
	srv.Stop()
	if w := tg.do("POST", "/auth", "192.0.2.1", pass, formOf()); w.Code != http.StatusForbidden || tg.seen.Load() != 0 {
		t.Fatalf("redis down: %d", w.Code)
	}
	if w := tg.do("POST", Prefix+"verify", "192.0.2.1", "", formOf("token", tok, "nonce", solve(tok, 8))); w.Code != http.StatusForbidden {
		t.Fatalf("verify with redis down: %d", w.Code)
	}
}

func TestObserveReportsEachDecision(t *testing.T) {
	var mu sync.Mutex
	kinds := map[string]int{}
	g, _ := newGuard(t, testConfig(), Options{Observe: func(e Event) {
		mu.Lock()
		kinds[e.Kind]++
		mu.Unlock()
	}})
	h := g.Middleware(&backend{})
	pass := earnPass(t, h, alice, 8)
	do(h, "POST", "/auth", alice, formOf(), pass)
	do(h, "POST", "/auth", alice, formOf(), pass)
	mu.Lock()
	defer mu.Unlock()
	for kind, want := range map[string]int{"challenge": 1, "solved": 1, "admitted": 1, "refused": 1} {
		if kinds[kind] != want {
			t.Errorf("%s events: %d, want %d (%v)", kind, kinds[kind], want, kinds)
		}
	}
}
