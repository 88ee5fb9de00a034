package signupgate

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"errors"
	"html/template"
	"math/bits"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fedigate/fedigate/configs"
)

//go:embed assets
var assets embed.FS

var pageTmpl = template.Must(template.ParseFS(assets, "assets/page.html"))

// challengeTTL is how long a challenge may take to solve.
const challengeTTL = 10 * time.Minute

// serveGate answers the gate's own paths under Prefix.
func (g *Guard) serveGate(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case Prefix + "challenge":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		g.showChallenge(w, r, "", http.StatusOK)
	case Prefix + "verify":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		g.verify(w, r)
	case Prefix + "challenge.js", Prefix + "pow-worker.js":
		b, _ := assets.ReadFile("assets/" + strings.TrimPrefix(r.URL.Path, Prefix))
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

type pageData struct {
	Title, Message string
	Gate           string
	Token          string
	Bits           int
	Return         string
	SiteKey        string
	Script         string
	Field          string
}

// showChallenge serves the challenge page with a fresh, signed challenge.
func (g *Guard) showChallenge(w http.ResponseWriter, r *http.Request, message string, status int) {
	now := g.now()
	ret := g.safeReturn(r.FormValue("return"))
	d := pageData{Title: "Checking that you are a person", Message: message, Gate: g.cfg.Gate, Return: ret}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	switch g.cfg.Gate {
	case configs.GatePoW:
		bitsNow := g.difficulty(now)
		tok, err := newToken(kindChallenge, bitsNow, g.clientAddr(r), now.Add(challengeTTL))
		if err != nil {
			http.Error(w, "cannot make a challenge", http.StatusInternalServerError)
			return
		}
		d.Token, d.Bits = tok.sign(g.key), int(bitsNow)
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	case configs.GateHCaptcha:
		d.SiteKey, d.Script, d.Field = g.cfg.SiteKey, hcaptchaScript, g.verifier.field
	case configs.GateTurnstile:
		d.SiteKey, d.Script, d.Field = g.cfg.SiteKey, turnstileScript, g.verifier.field
	}
	g.emit(Event{Kind: "challenge"})
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = pageTmpl.Execute(w, d)
	}
}

// verify checks a solved challenge; on success it sets the pass cookie and
// sends the person back where they were going.
func (g *Guard) verify(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	now := g.now()
	client := g.clientAddr(r)
	var err error
	if g.cfg.Gate == configs.GatePoW {
		err = g.checkPoW(r, r.PostForm.Get("token"), r.PostForm.Get("nonce"), now)
	} else {
		var ok bool
		ok, err = g.verifier.verify(r.Context(), r.PostForm.Get(g.verifier.field), client.String())
		if err != nil {
			g.log.Error("sign-up gate: captcha provider unavailable; nobody is admitted meanwhile", "err", err)
			g.decide(r, "refused", "provider_unavailable")
			g.showChallenge(w, r, "The captcha service did not answer. Please try again in a minute.", http.StatusServiceUnavailable)
			return
		}
		if !ok {
			err = errors.New("captcha_failed")
		}
	}
	if err != nil {
		g.decide(r, "refused", err.Error())
		g.showChallenge(w, r, "That did not work. Please try again.", http.StatusForbidden)
		return
	}
	pass, err := newToken(kindPass, 0, client, now.Add(g.cfg.PassTTL))
	if err != nil {
		http.Error(w, "cannot make a pass", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: PassCookie, Value: pass.sign(g.key), Path: "/", Expires: pass.expires,
		MaxAge: int(g.cfg.PassTTL.Seconds()), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	g.decide(r, "solved", "")
	http.Redirect(w, r, g.safeReturn(r.PostForm.Get("return")), http.StatusSeeOther)
}

var errBadSolution = errors.New("bad_solution")

// checkPoW: the challenge is ours, for this client, unexpired, at least as
// hard as now required, unused, and SHA-256(token ":" nonce) has enough
// leading zero bits. The challenge is then used up.
func (g *Guard) checkPoW(r *http.Request, tokStr, nonce string, now time.Time) error {
	tok, err := parseToken(tokStr, g.key, kindChallenge, g.clientAddr(r), now)
	if err != nil {
		return err
	}
	if tok.difficulty < g.difficulty(now) {
		return errors.New("too_easy")
	}
	if !validNonce(nonce) || leadingZeroBits(tokStr, nonce) < int(tok.difficulty) {
		return errBadSolution
	}
	took, err := g.spent.take(r.Context(), tok.id, tok.expires)
	if err != nil {
		return errors.New("store_error")
	}
	if !took {
		return errReplayed
	}
	return nil
}

func validNonce(n string) bool {
	if n == "" || len(n) > 20 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// leadingZeroBits of SHA-256(token ":" nonce), as the worker computes it.
func leadingZeroBits(tok, nonce string) int {
	sum := sha256.Sum256([]byte(tok + ":" + nonce))
	hi := binary.BigEndian.Uint64(sum[:8])
	if hi != 0 {
		return bits.LeadingZeros64(hi)
	}
	return 64 + bits.LeadingZeros64(binary.BigEndian.Uint64(sum[8:16]))
}

// safeReturn keeps the return path on this origin: a path that starts
// with exactly one "/", with no scheme, host, backslash or control
// character. Anything else goes to the first sign-up page.
func (g *Guard) safeReturn(ret string) string {
	fallback := "/"
	if len(g.routes.SignupPages) > 0 {
		fallback = g.routes.SignupPages[0]
	}
	if ret == "" || len(ret) > 2048 || ret[0] != '/' || strings.HasPrefix(ret, "//") || strings.ContainsAny(ret, "\\") {
		return fallback
	}
	for i := 0; i < len(ret); i++ {
		if ret[i] < 0x20 || ret[i] == 0x7f {
			return fallback
		}
	}
	u, err := url.Parse(ret)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return fallback
	}
	return ret
}

// refuse answers a sign-up without a valid pass: JSON for API clients, a
// page pointing at the challenge for browsers.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, api bool) {
	challenge := Prefix + "challenge?return=" + urlQueryEscape(g.safeReturn(""))
	if api || strings.Contains(r.Header.Get("Accept"), "application/json") {
		abs := "https://" + r.Host + challenge
		writeJSON(w, http.StatusForbidden, `{"error":"Sign-up needs a passed challenge: open the challenge URL in a browser first.","challenge":`+jsonString(abs)+`}`)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	_ = pageTmpl.Execute(w, pageData{Title: "Please pass the check first", Gate: "refused", Return: challenge,
		Message: "This sign-up was not sent: it needs a passed check, and yours is missing, expired or already used."})
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[c>>4])
			b.WriteByte("0123456789abcdef"[c&15])
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// stripPassCookie keeps the pass from the backend: it is the gate's alone.
// Only the pass's own pairs are cut from the raw header: the backend's
// cookies (session, CSRF) reach it byte for byte, even ones Go's cookie
// parser would reject or re-quote.
func stripPassCookie(r *http.Request) {
	lines := r.Header.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	for _, line := range lines {
		var parts []string
		for _, pair := range strings.Split(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if name != PassCookie {
				parts = append(parts, strings.TrimSpace(pair))
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	r.Header.Del("Cookie")
	for _, k := range kept {
		r.Header.Add("Cookie", k)
	}
}
