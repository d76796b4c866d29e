// Package metrics builds the agent's private Prometheus registry and serves
// it as /metrics (Prometheus text format). Components register their own
// collectors on the registry; nothing uses prometheus.DefaultRegisterer.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// MaxConns bounds the metrics listener's open connections; further ones
// wait in the accept queue until one closes (a scraper needs one or two).
const MaxConns = 64

// NewRegistry returns a registry holding the Go runtime and process
// collectors and pbx_build_info{version}.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pbx_build_info", Help: "pbx-agent build; the value is always 1.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }),
	)
	return reg
}

// Handler serves reg in the Prometheus text format; collection errors are
// logged and the remaining metrics still served.
func Handler(reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{logger},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	})
}

type slogPrintln struct{ l *slog.Logger }

func (s slogPrintln) Println(v ...any) { s.l.Error("metrics collection", "err", fmt.Sprint(v...)) }

// Serve runs a dedicated /metrics listener on bind (metrics_bind) until ctx
// ends, then shuts it down. Use it only when the main HTTP server does not
// carry /metrics.
func Serve(ctx context.Context, bind string, reg *prometheus.Registry, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return fmt.Errorf("metrics: listen %s: %w", bind, err)
	}
	return ServeListener(ctx, ln, reg, logger)
}

// ServeListener is Serve on a listener the caller bound (before READY).
func ServeListener(ctx context.Context, ln net.Listener, reg *prometheus.Registry, logger *slog.Logger) error {
	ln = netutil.LimitListener(ln, MaxConns)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg, logger))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving /metrics", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
