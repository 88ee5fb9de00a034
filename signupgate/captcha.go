package signupgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fedigate/fedigate/configs"
)

// The providers' siteverify endpoints and widget scripts.
const (
	hcaptchaVerify  = "https://api.hcaptcha.com/siteverify"
	turnstileVerify = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
	hcaptchaScript  = "https://js.hcaptcha.com/1/api.js"
	turnstileScript = "https://challenges.cloudflare.com/turnstile/v0/api.js"
)

// verifier checks captcha tokens server-side.
type verifier struct {
	url    string
	secret string
	field  string // the form field the widget fills
	client *http.Client
}

// errProvider marks a failure of the provider (down, erroring, garbage),
// as opposed to a token it judged invalid.
var errProvider = errors.New("captcha provider unavailable")

func newVerifier(cfg configs.Signup, client *http.Client) (*verifier, error) {
	if cfg.SiteKey == "" || cfg.Secret == "" {
		return nil, fmt.Errorf("signup.gate = %q needs site_key and secret", cfg.Gate)
	}
	v := &verifier{url: cfg.VerifyURL, secret: cfg.Secret, client: client}
	switch cfg.Gate {
	case configs.GateHCaptcha:
		v.field = "h-captcha-response"
		if v.url == "" {
			v.url = hcaptchaVerify
		}
	case configs.GateTurnstile:
		v.field = "cf-turnstile-response"
		if v.url == "" {
			v.url = turnstileVerify
		}
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: cfg.VerifyTimeout}
	}
	if cfg.VerifyTimeout > 0 && (v.client.Timeout == 0 || v.client.Timeout > cfg.VerifyTimeout) {
		c := *v.client
		c.Timeout = cfg.VerifyTimeout
		v.client = &c
	}
	return v, nil
}

// verify asks the provider whether response is a solved captcha for
// remoteIP. (false, nil): the provider said no. An error: the provider
// could not be asked or did not answer sensibly; the caller refuses.
func (v *verifier) verify(ctx context.Context, response, remoteIP string) (bool, error) {
	if response == "" || len(response) > 8192 {
		return false, nil
	}
	form := url.Values{"secret": {v.secret}, "response": {response}, "remoteip": {remoteIP}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.url, strings.NewReader(form.Encode()))
	if err != nil {
		return false, fmt.Errorf("%w: %v", errProvider, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	resp, err := v.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w after %v: %v", errProvider, time.Since(start).Round(time.Millisecond), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%w: siteverify answered %s", errProvider, resp.Status)
	}
	var out struct {
		Success    *bool    `json:"success"`
		ErrorCodes []string `json:"error-codes"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil || out.Success == nil {
		return false, fmt.Errorf("%w: siteverify answer is not the expected JSON", errProvider)
	}
	for _, code := range out.ErrorCodes {
		// the provider's own fault, or ours (bad secret): not the person's
		if code == "internal-error" || code == "invalid-input-secret" || code == "missing-input-secret" {
			return false, fmt.Errorf("%w: %s", errProvider, code)
		}
	}
	return *out.Success, nil
}
