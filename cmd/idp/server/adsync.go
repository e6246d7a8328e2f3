package server

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/adsync"
)

// newADSync builds the /adsync/v1/ server and registers its metrics.
func (s *Server) newADSync() {
	waker := adsync.NewWaker()
	s.Passwords.OnOutbox = waker.Wake
	s.ADSync = adsync.NewServer(adsync.ServerConfig{
		Directory: s.Directory, Ephemeral: s.Ephemeral, Passwords: s.Passwords, Waker: waker, Now: s.Now, Log: s.Log,
	})
	s.metrics.MustRegister(&adsyncCollector{s: s, ods: map[string]string{}})
}

// SilentAgents returns the agents that are not disabled and have not made
// a request for longer than adsync.silent_after (counting from their
// registration when they never did), with how long.
func (s *Server) SilentAgents(ctx context.Context) ([]directory.SyncAgent, error) {
	return SilentAgents(ctx, s.Directory, s.Now(), s.Config.ADSync.SilentAfter)
}

// SilentAgents returns dir's active agents silent for longer than after at now.
func SilentAgents(ctx context.Context, dir directory.Store, now time.Time, after time.Duration) ([]directory.SyncAgent, error) {
	agents, err := dir.SyncAgents(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []directory.SyncAgent
	for _, a := range agents {
		if !a.Disabled && AgentSilence(a, now) > after {
			out = append(out, a)
		}
	}
	return out, nil
}

// AgentSilence is how long agent a has gone without contact at now
// (since its registration when it never made contact).
func AgentSilence(a directory.SyncAgent, now time.Time) time.Duration {
	last := a.LastContact
	if last.IsZero() {
		last = a.CreatedAt
	}
	return now.Sub(last)
}

// adsyncLoop warns, once per silence, of agents gone silent, and hourly
// forgets old AD change IDs.
func (s *Server) adsyncLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	warned := map[string]time.Time{} // agent ID -> the last contact it was warned about
	lastMaintain := time.Time{}
	for {
		silent, err := s.SilentAgents(ctx)
		if err != nil {
			s.Log.Warn("adsync: cannot list agents", "reason", err.Error())
		}
		now := s.Now()
		still := map[string]time.Time{}
		for _, a := range silent {
			if w, ok := warned[a.ID]; !ok || !w.Equal(a.LastContact) {
				s.Log.Warn("adsync: agent silent", "agent", a.ID, "org", a.OrgID,
					"silent_for", AgentSilence(a, now).Round(time.Second).String(), "last_contact", a.LastContact)
			}
			still[a.ID] = a.LastContact
		}
		warned = still
		if now.Sub(lastMaintain) >= time.Hour {
			if err := s.ADSync.Maintain(ctx); err != nil {
				s.Log.Warn("adsync: maintenance failed", "reason", err.Error())
			}
			lastMaintain = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adsyncCollector exports the sync's state from the directory at each
// scrape, so every instance reports the same figures.
type adsyncCollector struct {
	s   *Server
	mu  sync.Mutex
	ods map[string]string // organisation ID -> ODS code
}

var (
	descQueue = prometheus.NewDesc("lanyard_adsync_queue_depth",
		"Password changes waiting for the organisation's sync agent.", []string{"org"}, nil)
	descOldest = prometheus.NewDesc("lanyard_adsync_oldest_pending_seconds",
		"Age of the oldest password change waiting for the organisation's sync agent.", []string{"org"}, nil)
	descContact = prometheus.NewDesc("lanyard_adsync_agent_last_contact_seconds",
		"Seconds since the sync agent's last request (since registration if none).", []string{"agent", "org"}, nil)
	descSilent = prometheus.NewDesc("lanyard_adsync_agents_silent",
		"Active sync agents silent for longer than adsync.silent_after.", nil, nil)
	descUp = prometheus.NewDesc("lanyard_adsync_scrape_ok",
		"1 when the sync's figures could be read from the directory.", nil, nil)
)

func (c *adsyncCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descOldest, descContact, descSilent, descUp} {
		ch <- d
	}
}

func (c *adsyncCollector) code(ctx context.Context, orgID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code, ok := c.ods[orgID]; ok {
		return code
	}
	o, err := c.s.Directory.Organisation(ctx, orgID)
	if err != nil {
		return orgID
	}
	c.ods[orgID] = o.ODSCode
	return o.ODSCode
}

func (c *adsyncCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.s.Now()
	ok := 1.0
	stats, err := c.s.Directory.OutboxStats(ctx)
	if err != nil {
		ok = 0
	}
	for _, st := range stats {
		code := c.code(ctx, st.OrgID)
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(st.Count), code)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, max(now.Sub(st.Oldest).Seconds(), 0), code)
	}
	agents, err := c.s.Directory.SyncAgents(ctx, "")
	if err != nil {
		ok = 0
	}
	silent := 0
	for _, a := range agents {
		if a.Disabled {
			continue
		}
		d := AgentSilence(a, now)
		if d > c.s.Config.ADSync.SilentAfter {
			silent++
		}
		ch <- prometheus.MustNewConstMetric(descContact, prometheus.GaugeValue, max(d.Seconds(), 0), a.ID, c.code(ctx, a.OrgID))
	}
	ch <- prometheus.MustNewConstMetric(descSilent, prometheus.GaugeValue, float64(silent))
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, ok)
}
