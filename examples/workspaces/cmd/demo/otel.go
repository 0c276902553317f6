package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/repocache/repocache/extra/cacheotel"
)

// otelInterval is how often -otel exports the metrics while the demo runs;
// they are exported once more at exit.
const otelInterval = 10 * time.Second

// telemetry is what -otel sets up: a MeterProvider whose periodic reader
// and a TracerProvider whose batcher export to one writer through OTel's
// stdout exporters (JSON, one object a line), and the cacheotel Recorder
// on them.
type telemetry struct {
	rec   *cacheotel.Recorder
	mp    *sdkmetric.MeterProvider
	tp    *sdktrace.TracerProvider
	where string // "on stderr" or "in <file>"
	file  *os.File
}

// setupOTel starts the providers, exporting to path (stderr when empty).
func setupOTel(path string) (*telemetry, error) {
	t := &telemetry{where: "on stderr"}
	var w io.Writer = os.Stderr
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		t.file, t.where, w = f, "in "+path, f
	}
	// The two exporters run on goroutines of their own: one write at a time.
	w = &lockedWriter{w: w}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "repocache-demo")))
	if err != nil {
		return nil, errors.Join(err, t.closeFile())
	}
	mexp, err := stdoutmetric.New(stdoutmetric.WithWriter(w))
	if err != nil {
		return nil, errors.Join(err, t.closeFile())
	}
	texp, err := stdouttrace.New(stdouttrace.WithWriter(w))
	if err != nil {
		return nil, errors.Join(err, t.closeFile())
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(otelInterval))))
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(texp))
	t.rec, err = cacheotel.New(cacheotel.WithMeterProvider(t.mp), cacheotel.WithTracerProvider(t.tp))
	if err != nil {
		return nil, errors.Join(err, t.shutdown())
	}
	return t, nil
}

// shutdown flushes the spans not yet exported and exports the metrics one
// last time (the watched Cache's Stats included: its Redis must still be
// up), then closes the file.
func (t *telemetry) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx), t.closeFile())
	if err != nil {
		return fmt.Errorf("otel: %w", err)
	}
	return nil
}

func (t *telemetry) closeFile() error {
	if t.file == nil {
		return nil
	}
	return t.file.Close()
}
