package cacheotel_test

import (
	"log"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/repocache/repocache/extra/cacheotel"
	"github.com/repocache/repocache/runtime"
)

// Example records a Cache's events and Stats on an application's meter and
// tracer providers (here bare SDK ones; a real service adds its exporters).
func Example() {
	mp := sdkmetric.NewMeterProvider()
	tp := sdktrace.NewTracerProvider()
	rec, err := cacheotel.New(cacheotel.WithMeterProvider(mp), cacheotel.WithTracerProvider(tp))
	if err != nil {
		log.Fatal(err)
	}
	client, err := runtime.NewClient("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	cache := runtime.New(client,
		runtime.WithNamespace("app:prod"),
		runtime.WithMetrics(rec.Metrics("app:prod")))
	if err := rec.Watch(cache); err != nil {
		log.Fatal(err)
	}
	_ = cache // hand it to the repositories
}
