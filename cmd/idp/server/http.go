package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lanyard/lanyard/directory/adsync"
)

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the ID the server gave the request, for logs.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))
	pages := s.Authn.Handler()
	for _, p := range []string{"/login", "/login/webauthn/", "/login/risk/", "/logout", "/logged-out", "/account", "/account/", "/password/", "/static/"} {
		mux.Handle(p, pages)
	}
	mux.Handle("/saml/", s.SAML.Handler())
	mux.Handle(adsync.PathPrefix, s.ADSync)
	mux.Handle("/", s.OIDC.Handler())
	var trusted []netip.Prefix
	for _, p := range s.Config.TrustedProxies {
		trusted = append(trusted, netip.MustParsePrefix(p)) // validated by Config.Validate
	}
	return s.instrument(clientAddress(trusted, s.limitBody(mux)))
}

// ready answers 200 when both stores answer within two seconds, and 503
// naming the store that does not. Causes go to the log, not the client.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{"directory": "ok", "ephemeral": "ok"}
	code := http.StatusOK
	if err := s.Directory.Ping(ctx); err != nil {
		s.Log.WarnContext(ctx, "readiness: directory unreachable", "request_id", RequestID(ctx), "reason", err.Error())
		status["directory"], code = "unavailable", http.StatusServiceUnavailable
	}
	if err := s.Ephemeral.Ping(ctx); err != nil {
		s.Log.WarnContext(ctx, "readiness: ephemeral store unreachable", "request_id", RequestID(ctx), "reason", err.Error())
		status["ephemeral"], code = "unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, code, status)
}

// limitBody refuses a body declared larger than http.max_body_bytes with
// 413 before reading it, and caps every other body at that size; a handler
// that hits the cap answers with RespondTooLarge.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.Config.HTTP.MaxBodyBytes
		if strings.HasPrefix(r.URL.Path, adsync.PathPrefix) {
			limit = max(limit, adsync.MaxBody+1) // an agent's account list; adsync answers 413 beyond MaxBody
		}
		if r.ContentLength > limit {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{
				"error": "request_too_large", "error_description": "request body exceeds " + strconv.FormatInt(limit, 10) + " bytes",
			})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// IsTooLarge reports whether err came from reading past the body limit.
func IsTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument gives each request an ID, recovers panics as 500, logs one
// line per request (method, path without query, status, duration: never
// bodies, cookies or query strings, which may carry codes), and counts
// requests for /metrics by route pattern.
func (s *Server) instrument(next http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lanyard_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lanyard_http_request_duration_seconds", Help: "HTTP request duration by route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	s.metrics.MustRegister(requests, duration)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := rand.Text()[:16]
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Log.ErrorContext(r.Context(), "panic serving request", "request_id", id, "reason", slog.AnyValue(p).String())
				if sw.code == 0 {
					writeJSON(sw, http.StatusInternalServerError, map[string]string{"error": "server_error"})
				}
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
			duration.WithLabelValues(route).Observe(d.Seconds())
			s.Log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", id),
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", code),
				slog.Duration("duration", d))
		}()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(sw, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
