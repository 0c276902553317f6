package cacheprometheus_test

import (
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/runtime"
)

// Example mounts a Collector on a service's /metrics: one hook per
// namespace for the events, Watch for the Stats read at scrape time.
func Example() {
	client, err := runtime.NewClient("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	col := cacheprometheus.New()
	cache := runtime.New(client,
		runtime.WithNamespace("app:prod"),
		runtime.WithMetrics(col.Metrics("app:prod")))
	if err := col.Watch(cache); err != nil {
		log.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	log.Fatal(http.ListenAndServe(":9090", nil))
}
