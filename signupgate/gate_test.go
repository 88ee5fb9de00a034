package signupgate

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedigate/fedigate/configs"
	"github.com/fedigate/fedigate/internal/testenv"
)

const alice = "192.0.2.10:5555"

func TestTokenRefusals(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	v6 := netip.MustParseAddr("2001:db8:1:2::10")
	tok, _ := newToken(kindPass, 0, v6, now.Add(time.Minute))
	s := tok.sign(key)
	if _, err := parseToken(s, key, kindPass, netip.MustParseAddr("2001:db8:1:2:ffff::1"), now); err != nil {
		t.Errorf("same /64 refused: %v", err)
	}
	cases := map[string]struct {
		s      string
		kind   byte
		client netip.Addr
		at     time.Time
		want   error
	}{
		"other /64":           {s, kindPass, netip.MustParseAddr("2001:db8:1:3::10"), now, errMoved},
		"other address":       {s, kindPass, netip.MustParseAddr("192.0.2.1"), now, errMoved},
		"expired":             {s, kindPass, v6, now.Add(time.Minute), errExpired},
		"challenge as pass":   {s, kindChallenge, v6, now, errKind},
		"truncated":           {s[:len(s)-1], kindPass, v6, now, errMalformed},
		"other key":           {tok.sign([]byte("another key another key another k")), kindPass, v6, now, errForged},
		"not base64":          {strings.Repeat("*", encodedLen), kindPass, v6, now, errMalformed},
		"empty":               {"", kindPass, v6, now, errMalformed},
		"padding appended":    {s + "=", kindPass, v6, now, errMalformed},
		"every bit flipped 0": {flip(s, 0), kindPass, v6, now, errForged},
	}
	for name, c := range cases {
		if _, err := parseToken(c.s, key, c.kind, c.client, c.at); err != c.want {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	for i := 0; i < len(s); i++ {
		if _, err := parseToken(flip(s, i), key, kindPass, v6, now); err == nil {
			t.Fatalf("a token with character %d changed was accepted", i)
		}
	}
}

func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// The whole flow: the page sends to the challenge, the pass admits one
// sign-up, a replay is refused and never reaches the backend.
func TestPassAdmitsOneSignupAndReplayIsRefused(t *testing.T) {
	g, logs := newGuard(t, testConfig(), Options{})
	be := &backend{}
	h := g.Middleware(be)
	w := do(h, "GET", "/auth/sign_up", alice, nil)
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), Prefix+"challenge?return=%2Fauth%2Fsign_up") || be.hits.Load() != 0 {
		t.Fatalf("page without pass: %d %q", w.Code, w.Header().Get("Location"))
	}
	if !strings.Contains(logs.String(), "outcome=challenged reason=no_pass") {
		t.Errorf("no decision line for the challenged page:\n%s", logs.String())
	}
	pass := earnPass(t, h, alice, 8)
	if w := do(h, "GET", "/auth/sign_up", alice, nil, pass); w.Code != 200 || be.hits.Load() != 1 {
		t.Fatalf("page with pass: %d", w.Code)
	}
	other := &http.Cookie{Name: "_session_id", Value: "s"}
	if w := do(h, "POST", "/auth", alice, url.Values{"a": {"b"}}, pass, other); w.Code != http.StatusFound || be.hits.Load() != 2 {
		t.Fatalf("sign-up with pass: %d", w.Code)
	}
	if got := be.cookies.Load().(string); strings.Contains(got, PassCookie) || !strings.Contains(got, "_session_id=s") {
		t.Errorf("backend saw cookies %q: the pass must be stripped, others kept", got)
	}
	if w := do(h, "POST", "/auth", alice, url.Values{"a": {"b"}}, pass); w.Code != http.StatusForbidden || be.hits.Load() != 2 {
		t.Fatalf("replay: %d (backend hits %d)", w.Code, be.hits.Load())
	}
	if !strings.Contains(logs.String(), "reason=replayed") || strings.Contains(logs.String(), pass.Value) {
		t.Errorf("log:\n%s", logs.String())
	}
}

func TestAttackSignupWithoutPass(t *testing.T) {
	g, _ := newGuard(t, testConfig(), Options{})
	be := &backend{}
	h := g.Middleware(be)
	forged := &http.Cookie{Name: PassCookie, Value: strings.Repeat("A", encodedLen)}
	for name, cookies := range map[string][]*http.Cookie{"none": nil, "forged": {forged}, "garbage": {{Name: PassCookie, Value: "x"}}} {
		w := do(h, "POST", "/auth", alice, url.Values{"a": {"b"}}, cookies...)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), Prefix+"challenge") {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	if be.hits.Load() != 0 {
		t.Fatal("a sign-up without a valid pass reached the backend")
	}
	// a pass earned by another client is not this client's
	pass := earnPass(t, h, "198.51.100.7:1", 8)
	if w := do(h, "POST", "/auth", alice, url.Values{}, pass); w.Code != http.StatusForbidden {
		t.Errorf("moved pass: %d", w.Code)
	}
}

// A form the backend refuses (4xx) leaves the pass usable.
func TestRefusedFormKeepsPass(t *testing.T) {
	g, _ := newGuard(t, testConfig(), Options{})
	be := &backend{}
	h := g.Middleware(be)
	pass := earnPass(t, h, alice, 8)
	be.status.Store(422)
	if w := do(h, "POST", "/auth", alice, url.Values{}, pass); w.Code != 422 {
		t.Fatalf("refused form: %d", w.Code)
	}
	be.status.Store(0)
	if w := do(h, "POST", "/auth", alice, url.Values{}, pass); w.Code != http.StatusFound {
		t.Fatalf("second try after a refused form: %d", w.Code)
	}
}

// Two sign-ups racing with one pass: exactly one reaches the backend.
func TestAttackConcurrentDoubleSpend(t *testing.T) {
	g, _ := newGuard(t, testConfig(), Options{})
	be := &backend{delay: 50 * time.Millisecond}
	h := g.Middleware(be)
	pass := earnPass(t, h, alice, 8)
	hitsBefore := be.hits.Load()
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = do(h, "POST", "/auth", alice, url.Values{}, pass).Code
		}()
	}
	wg.Wait()
	admitted := 0
	for _, c := range codes {
		if c == http.StatusFound {
			admitted++
		}
	}
	if admitted != 1 || be.hits.Load()-hitsBefore != 1 {
		t.Fatalf("admitted %d, backend saw %d: %v", admitted, be.hits.Load()-hitsBefore, codes)
	}
}

func TestChallengeRefusals(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	g, _ := newGuard(t, testConfig(), Options{Now: clk.Now})
	h := g.Middleware(&backend{})
	verify := func(tok, nonce string) int {
		return do(h, "POST", Prefix+"verify", alice, url.Values{"token": {tok}, "nonce": {nonce}}).Code
	}
	tok := challengeToken(t, h, alice)
	good := solve(tok, 8)
	wrong := "0"
	for leadingZeroBits(tok, wrong) >= 8 {
		wrong += "1"
	}
	if c := verify(tok, wrong); c != http.StatusForbidden {
		t.Errorf("wrong nonce: %d", c)
	}
	if c := verify(tok, "12a"); c != http.StatusForbidden {
		t.Errorf("non-decimal nonce: %d", c)
	}
	// the difficulty is signed: an easier copy is a forgery
	raw := []byte(tok)
	easier := challengeToken(t, h, alice)
	b := []byte(easier)
	b[3] = raw[3] ^ 1
	if c := verify(string(b), solve(string(b), 1)); c != http.StatusForbidden {
		t.Errorf("tampered difficulty: %d", c)
	}
	if c := do(h, "POST", Prefix+"verify", "203.0.113.9:1", url.Values{"token": {tok}, "nonce": {good}}).Code; c != http.StatusForbidden {
		t.Errorf("solution used by another client: %d", c)
	}
	if c := verify(tok, good); c != http.StatusSeeOther {
		t.Fatalf("good solution: %d", c)
	}
	if c := verify(tok, good); c != http.StatusForbidden {
		t.Errorf("same solution twice: %d", c)
	}
	late := challengeToken(t, h, alice)
	clk.Advance(challengeTTL)
	if c := verify(late, solve(late, 8)); c != http.StatusForbidden {
		t.Errorf("expired challenge: %d", c)
	}
}

func TestAttackOpenRedirect(t *testing.T) {
	g, _ := newGuard(t, testConfig(), Options{})
	for _, ret := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "\\\\evil.example",
		"/%2F/evil.example", "javascript:alert(1)", "/\t/evil.example", "http:/evil.example", "", "evil.example", "///evil.example"} {
		got := g.safeReturn(ret)
		if got != "/auth/sign_up" && !(ret == "/%2F/evil.example" && got == ret) {
			t.Errorf("return %q kept as %q", ret, got)
		}
	}
	for _, ok := range []string{"/auth/sign_up", "/auth/sign_up?invite=abc", "/registration"} {
		if got := g.safeReturn(ok); got != ok {
			t.Errorf("same-origin %q turned into %q", ok, got)
		}
	}
}

func TestAPIPolicies(t *testing.T) {
	for policy, want := range map[string]int{configs.APIAllow: http.StatusFound, configs.APIDeny: http.StatusForbidden, configs.APIChallenge: http.StatusForbidden} {
		cfg := testConfig()
		cfg.API = policy
		g, _ := newGuard(t, cfg, Options{})
		be := &backend{}
		w := do(g.Middleware(be), "POST", "/api/v1/accounts", alice, url.Values{})
		if w.Code != want || w.Header().Get("Content-Type") != "application/json; charset=utf-8" && want == 403 {
			t.Errorf("%s: %d %s", policy, w.Code, w.Body.String())
		}
		if policy == configs.APIChallenge && !strings.Contains(w.Body.String(), `"challenge":"https://social.test/.fedigate/challenge`) {
			t.Errorf("challenge policy body: %s", w.Body.String())
		}
	}
	// with a pass, the challenge policy admits
	g, _ := newGuard(t, testConfig(), Options{})
	h := g.Middleware(&backend{})
	pass := earnPass(t, h, alice, 8)
	if w := do(h, "POST", "/api/v1/accounts", alice, url.Values{}, pass); w.Code != http.StatusFound {
		t.Errorf("API sign-up with pass: %d", w.Code)
	}
}

// A pass spent through one gateway is refused by another sharing Redis.
func TestReplayAcrossTwoGatewaysOnRedis(t *testing.T) {
	r := testenv.Redis(t)
	keyFile := filepath.Join(t.TempDir(), "shared.key")
	os.WriteFile(keyFile, []byte(strings.Repeat("k", 32)), 0o600)
	cfg := testConfig()
	cfg.SecretFile = keyFile
	var hs []http.Handler
	for i := 0; i < 2; i++ {
		rc := redisClient(t, r.Addr)
		g, _ := newGuard(t, cfg, Options{Redis: rc})
		hs = append(hs, g.Middleware(&backend{}))
	}
	pass := earnPass(t, hs[0], alice, 8)
	if w := do(hs[0], "POST", "/auth", alice, url.Values{}, pass); w.Code != http.StatusFound {
		t.Fatalf("first gateway: %d", w.Code)
	}
	if w := do(hs[1], "POST", "/auth", alice, url.Values{}, pass); w.Code != http.StatusForbidden {
		t.Fatalf("replay on the second gateway: %d", w.Code)
	}
	// Redis gone: fail closed
	r.Stop()
	pass2 := &http.Cookie{Name: PassCookie, Value: mintPass(t, keyFile)}
	if w := do(hs[1], "POST", "/auth", alice, url.Values{}, pass2); w.Code != http.StatusForbidden {
		t.Fatalf("store down: %d, want a refusal", w.Code)
	}
}

func TestSurgeLockDown(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	cfg := testConfig()
	cfg.SurgeThreshold, cfg.SurgeWindow, cfg.SurgeHold, cfg.SurgeExtraBits = 3, time.Minute, 10*time.Minute, 4
	cfg.API = configs.APIAllow
	g, logs := newGuard(t, cfg, Options{Now: clk.Now})
	h := g.Middleware(&backend{})
	for i := 0; i < 3; i++ {
		do(h, "POST", "/auth", alice, url.Values{})
	}
	if g.difficulty(clk.Now()) != 8 {
		t.Fatal("surge on at the threshold")
	}
	do(h, "POST", "/auth", alice, url.Values{})
	if g.difficulty(clk.Now()) != 12 {
		t.Fatalf("difficulty in a surge: %d", g.difficulty(clk.Now()))
	}
	if w := do(h, "POST", "/api/v1/accounts", alice, url.Values{}); w.Code != http.StatusForbidden {
		t.Errorf("API in a surge: %d", w.Code)
	}
	clk.Advance(10*time.Minute + time.Second)
	if g.difficulty(clk.Now()) != 8 {
		t.Fatal("surge did not end by itself")
	}
	if w := do(h, "POST", "/api/v1/accounts", alice, url.Values{}); w.Code != http.StatusFound {
		t.Errorf("API after the surge: %d", w.Code)
	}
	if strings.Count(logs.String(), "lock-down on") != 1 || strings.Count(logs.String(), "lock-down off") != 1 {
		t.Errorf("surge changes not logged once each:\n%s", logs.String())
	}
}

func TestPassKeyFile(t *testing.T) {
	dir := t.TempDir()
	g, err := New(gateConfig(testConfig(), testRoutes(), dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	st, err := os.Stat(filepath.Join(dir, "signup.key"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("signup.key: %v %v", st, err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("short"), 0o600)
	cfg := testConfig()
	cfg.SecretFile = short
	if _, err := New(gateConfig(cfg, testRoutes(), ""), Options{}); err == nil {
		t.Error("a 5-byte key accepted")
	}
}

func TestGateOffPassesEverything(t *testing.T) {
	cfg := testConfig()
	cfg.Gate = configs.GateOff
	g, _ := newGuard(t, cfg, Options{})
	if w := do(g.Middleware(&backend{}), "POST", "/auth", alice, url.Values{}); w.Code != http.StatusFound {
		t.Fatalf("gate off: %d", w.Code)
	}
}

func TestChallengePageIsSelfContained(t *testing.T) {
	g, _ := newGuard(t, testConfig(), Options{})
	w := do(g.Middleware(&backend{}), "GET", Prefix+"challenge", alice, nil)
	body := w.Body.String()
	for _, want := range []string{`<noscript>`, `name="viewport"`, `role="status"`, `aria-live="polite"`, `<progress`, `src="/.fedigate/challenge.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("the proof-of-work page loads something from another origin")
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}

// On Pleroma/Akkoma the web sign-up is the API: a surge must not close
// sign-up there, only demand a pass (of the raised difficulty).
func TestSurgeKeepsPleromaSignupOpenBehindChallenge(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	cfg := testConfig()
	cfg.SurgeThreshold, cfg.SurgeWindow, cfg.SurgeHold, cfg.SurgeExtraBits = 1, time.Minute, 10*time.Minute, 2
	cfg.API = configs.APIAllow
	pc, _ := configs.Default(configs.PresetPleroma)
	g, err := New(gateConfig(cfg, pc.Routes, t.TempDir()), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Middleware(&backend{})
	do(h, "POST", "/api/v1/accounts", alice, url.Values{})
	do(h, "POST", "/api/v1/accounts", alice, url.Values{})
	if g.difficulty(clk.Now()) != 10 {
		t.Fatalf("no surge: difficulty %d", g.difficulty(clk.Now()))
	}
	w := do(h, "POST", "/api/v1/accounts", alice, url.Values{})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"challenge"`) {
		t.Fatalf("surge without pass: %d %s (want the challenge, not a closed API)", w.Code, w.Body.String())
	}
	pass := earnPass(t, h, alice, 10)
	if w := do(h, "POST", "/api/v1/accounts", alice, url.Values{}, pass); w.Code != http.StatusFound {
		t.Fatalf("surge with a pass of the raised difficulty: %d", w.Code)
	}
}

// The backend's cookies pass byte for byte; only the pass is taken out.
func TestPassStrippedOtherCookiesUntouched(t *testing.T) {
	r := httptest.NewRequest("POST", "/auth", nil)
	r.Header.Add("Cookie", `_mastodon_session=a%3D%3D--b; `+PassCookie+`=secretpass; odd="quoted value"; x=1`)
	r.Header.Add("Cookie", PassCookie+"=again")
	stripPassCookie(r)
	if got := r.Header.Values("Cookie"); len(got) != 1 || got[0] != `_mastodon_session=a%3D%3D--b; odd="quoted value"; x=1` {
		t.Fatalf("Cookie now %q", got)
	}
}

// TestAttackSignupPathSpellings: Rails (Mastodon) routes "/auth.json",
// "/auth/" and "//auth" to the sign-up action as it does "/auth", and
// Phoenix (Pleroma, Akkoma) ignores empty segments; every such spelling of
// a sign-up route is gated, and none reaches the backend without a pass.
func TestAttackSignupPathSpellings(t *testing.T) {
	g, _ := newGuard(t, testConfig(), Options{})
	be := &backend{}
	h := g.Middleware(be)
	for _, p := range []string{"/auth.json", "/auth/", "//auth", "/AUTH", "/auth.", "/%61uth", "/auth/.", "/./auth"} {
		if w := do(h, "POST", p, alice, url.Values{"a": {"b"}}); w.Code != http.StatusForbidden {
			t.Errorf("POST %s: %d, want 403", p, w.Code)
		}
	}
	for _, p := range []string{"/api/v1/accounts.json", "/api/v1/accounts/", "//api//v1/accounts", "/API/v1/Accounts"} {
		if w := do(h, "POST", p, alice, url.Values{}); w.Code != http.StatusForbidden {
			t.Errorf("POST %s: %d, want 403", p, w.Code)
		}
	}
	for _, p := range []string{"/auth/sign_up.html", "/auth/sign_up/", "//auth/sign_up"} {
		if w := do(h, "GET", p, alice, nil); w.Code != http.StatusSeeOther {
			t.Errorf("GET %s: %d, want the challenge", p, w.Code)
		}
	}
	if n := be.hits.Load(); n != 0 {
		t.Fatalf("%d sign-ups reached the backend without a pass", n)
	}
	// paths that only look alike are not gated
	for _, p := range []string{"/authx", "/auth/sign_in", "/api/v1/accounts/1/follow", "/api/v1/accountsx"} {
		if w := do(h, "POST", p, alice, url.Values{}); w.Code == http.StatusForbidden {
			t.Errorf("POST %s was gated", p)
		}
	}
}
