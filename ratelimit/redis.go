package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// KeyPrefix starts every key the Redis store writes.
const KeyPrefix = "fedigate:rl:"

// OpenRedis opens a client for a Redis URL. The URL form selects the kind
// of deployment:
//
//   - redis://[user:pass@]host:port/db, rediss://… (TLS), unix:///path.sock:
//     one server (go-redis ParseURL).
//   - redis://[user:pass@]host:port?master_name=NAME&addr=host2:port…:
//     Sentinel; the hosts are the sentinels, NAME the monitored master
//     (go-redis ParseFailoverURL). master_name selects this form.
//   - redis://[user:pass@]host:port?addr=host2:port&addr=…: Cluster; the
//     hosts are seed nodes (go-redis ParseClusterURL). An addr parameter
//     without master_name selects this form; a one-node seed list is
//     written redis://h:p?addr=h:p.
//
// Other query parameters are go-redis options (dial_timeout=1s, …). The
// client honours context deadlines, so a request never waits on Redis
// longer than its context allows. Errors never echo the URL (it may hold
// a password).
func OpenRedis(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("ratelimit: redis URL does not parse")
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: Sentinel redis URL: %w", scrub(err, rawURL))
		}
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case q.Has("addr"):
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: Cluster redis URL: %w", scrub(err, rawURL))
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: redis URL: %w", scrub(err, rawURL))
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
}

// scrub replaces an error that quotes the URL by one that does not.
func scrub(err error, rawURL string) error {
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
			return errors.New("invalid URL (details withheld: they contain the password)")
		}
	}
	return err
}

// slidingLog is the one script of a decision. KEYS are one client's logs,
// one per rule, all with the same hash tag (one cluster slot); ARGV holds
// limit and period (microseconds) per key. On Redis's own clock it drops
// timestamps that left each window, admits the request only if every log
// has room, then records it in every log and sets each key to expire when
// its newest timestamp leaves the window. It returns the Redis time and,
// per key: the count after the decision, the microseconds until the oldest
// counted timestamp leaves the window.
const slidingLog = `
pcall(redis.replicate_commands) -- Redis < 5: replicate effects, so TIME may precede writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local counts = {}
local allowed = 1
for i = 1, n do
  local k = KEYS[i]
  local limit = tonumber(ARGV[2*i-1])
  local period = tonumber(ARGV[2*i])
  while true do
    local oldest = redis.call('LINDEX', k, 0)
    if not oldest or tonumber(oldest) > now - period then break end
    redis.call('LPOP', k)
  end
  counts[i] = redis.call('LLEN', k)
  if counts[i] >= limit then allowed = 0 end
end
local out = {allowed, now}
for i = 1, n do
  local k = KEYS[i]
  local period = tonumber(ARGV[2*i])
  if allowed == 1 then
    local newest = redis.call('LINDEX', k, -1)
    -- a Redis clock that stepped back keeps the log in order
    redis.call('RPUSH', k, math.max(now, tonumber(newest or now)))
    redis.call('PEXPIRE', k, math.ceil(period / 1000) + 1)
    counts[i] = counts[i] + 1
  end
  local reset = 0
  local oldest = redis.call('LINDEX', k, 0)
  if oldest then
    reset = tonumber(oldest) + period - now
  end
  out[#out+1] = counts[i]
  out[#out+1] = reset
end
return out
`

// redisKey is the key of one client's log for one rule. The client part
// is the hash tag, so all of a client's logs share a cluster slot and one
// script can decide them together; limit and period are part of the key,
// so a changed rule starts from zero and an unchanged one keeps its count.
func redisKey(client string, r *rule) string {
	return KeyPrefix + "{" + client + "}:" + r.id
}

// redisDecide runs the script for one client and the given rules.
func redisDecide(ctx context.Context, c redis.UniversalClient, script *redis.Script, client string, rules []*rule, out []Result) (bool, error) {
	keys := make([]string, len(rules))
	args := make([]any, 0, 2*len(rules))
	for i, r := range rules {
		keys[i] = redisKey(client, r)
		args = append(args, r.limit, r.period.Microseconds())
	}
	v, err := script.Run(ctx, c, keys, args...).Int64Slice()
	if err != nil {
		return false, err
	}
	if len(v) != 2+2*len(rules) {
		return false, fmt.Errorf("rate limit script returned %d values, want %d", len(v), 2+2*len(rules))
	}
	allowed := v[0] == 1
	now := time.UnixMicro(v[1])
	for i, r := range rules {
		count, reset := v[2+2*i], time.Duration(v[3+2*i])*time.Microsecond
		res := Result{Allowed: allowed, Limit: r.limit, Remaining: max(r.limit-int(count), 0), Reset: now.Add(reset)}
		if !allowed && int(count) >= r.limit {
			res.RetryAfter = reset
		}
		out[i] = res
	}
	return allowed, nil
}
