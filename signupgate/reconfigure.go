package signupgate

import "github.com/fedigate/fedigate/configs"

// Reconfigure builds a Guard for cfg with g's hooks, as New does, keeping
// g's state where its settings did not change: when the [ratelimit] store
// settings (store, redis_url) are the same it shares the spent-pass store
// (a pass spent before a reload stays spent after it, even if [signup]
// changed), and when the surge settings (threshold, window, hold) are the
// same it shares the surge state (a lock-down in force stays). Swap the
// new Guard in, then Close g; a shared store stays open until every Guard
// using it is closed. On error nothing changes and g keeps working.
func (g *Guard) Reconfigure(cfg *configs.Config) (*Guard, error) {
	return build(cfg, g.opts, g)
}

func sameSurge(a, b configs.Signup) bool {
	return a.SurgeThreshold == b.SurgeThreshold && a.SurgeWindow == b.SurgeWindow && a.SurgeHold == b.SurgeHold
}
