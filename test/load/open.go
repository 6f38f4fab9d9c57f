package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// openStreams holds Open.Streams slow streams open at once through a fresh gateway and
// measures its memory, goroutines and file descriptors at the peak. The upstream is the fake
// provider over HTTPS with HTTP/2, as with the real providers: the gateway's upstream streams
// share a few connections, so the pod needs one descriptor per client connection, not two.
func (r *runner) openStreams(ctx context.Context, rep *Report) (err error) {
	oc := r.cfg.Open
	r.logf("open streams: starting a TLS fake provider and a fresh gateway")
	fake, err := StartFake(ctx, r.cfg.BinDir, r.cfg.OutDir, "fakeprovider-tls", r.pin.Others, true)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, fake.Stop(5*time.Second)) }()
	snapFile, err := writeSnapshot(r.cfg.OutDir, "snapshot-tls.json", fake.URL)
	if err != nil {
		return err
	}
	gw, err := StartGateway(ctx, r.cfg.BinDir, r.cfg.OutDir, r.gateway("gateway-streams", snapFile, "", fake.CAFile))
	if err != nil {
		return err
	}
	r.logf("gateway-streams %s (admin %s), fake provider %s", gw.URL, gw.Admin, fake.URL)
	defer func() { err = errors.Join(err, gw.Stop(15*time.Second)) }()
	t := &Target{Name: "gateway-streams", Base: gw.URL, Key: DevKey, Shape: r.shape, Client: NewClient()}
	defer t.Client.CloseIdleConnections()
	r.warm(ctx, t, 8)

	// Every stream lasts the ramp, the hold and a margin for the ramp running late, so that
	// the first ones are still open when the last start.
	ramp := time.Duration(float64(oc.Streams) / oc.RampRate * float64(time.Second))
	margin := 2*time.Second + ramp/2
	interval := time.Duration(oc.IntervalMs) * time.Millisecond
	chunks := int(math.Ceil(float64(ramp+oc.Hold+margin)/float64(interval))) + 1
	if err := fake.SetScenario(ctx, r.shape.Provider, streamScenario(chunks, oc.IntervalMs)); err != nil {
		return err
	}
	time.Sleep(time.Second) // let the warm-up's garbage be collected and connections idle
	res := &OpenResult{Streams: oc.Streams, RampRate: oc.RampRate, Chunks: chunks, IntervalMs: oc.IntervalMs,
		Upstream: "HTTPS with HTTP/2 to the fake provider (self-signed certificate via SSL_CERT_FILE)"}
	if err := sampleGateway(ctx, gw, &res.RSSBefore, &res.HeapBefore, &res.GoroutinesBefore, nil); err != nil {
		return err
	}
	if res.MaxOpenFiles, err = gw.MaxOpenFiles(); err != nil {
		return err
	}

	r.logf("open streams: starting %d streams at %g/s, %d text deltas %d ms apart", oc.Streams, oc.RampRate, chunks, oc.IntervalMs)
	meter, err := startCPUMeter(gw.Proc, fake.Proc, nil)
	if err != nil {
		return err
	}
	done := make(chan []StreamResult, 1)
	go func() {
		results, lags := OpenLoop(ctx, oc.RampRate, ramp, func(ctx context.Context, at time.Time) StreamResult {
			return t.Stream(ctx, at, chunks)
		})
		res.DispatchLag = Summarize(lags)
		done <- results
	}()
	if err := r.watchPeak(ctx, gw, res, time.Now().Add(ramp+margin)); err != nil {
		return err
	}
	if res.RampBusy, err = meter.stop(); err != nil {
		return err
	}
	r.profile(ctx, gw, "heap", "gateway-streams-heap.pprof")()
	wait := r.profile(ctx, gw, cpuProfile(oc.Hold), "gateway-streams-cpu.pprof")
	if err := r.hold(ctx, gw, fake, res, oc.Hold); err != nil {
		return err
	}
	wait()
	results := <-done
	var ttfts, connected []time.Duration
	for _, s := range results {
		if s.Err != nil {
			r.fails.add(s.Err)
			continue
		}
		res.Completed++
		ttfts, connected = append(ttfts, s.TTFT), append(connected, s.Connected)
	}
	res.TTFT, res.Connected = Summarize(ttfts), Summarize(connected)
	if res.RSSHighWater, err = gw.Status("VmHWM"); err != nil {
		return err
	}
	if res.PeakOpen > 0 {
		res.BytesPerStream = (res.RSSAtPeak - res.RSSBefore) / int64(res.PeakOpen)
		res.GoroutinesPer = round3(float64(res.GoroutinesAtPeak-res.GoroutinesBefore) / float64(res.PeakOpen))
	}
	r.logf("open streams: peak %d open, %d completed, RSS %s -> %s (%s per stream), %d goroutines, %d fds",
		res.PeakOpen, res.Completed, mib(res.RSSBefore), mib(res.RSSAtPeak), kib(res.BytesPerStream), res.GoroutinesAtPeak, res.OpenFilesAtPeak)
	rep.OpenStreams = res
	return nil
}

// hold measures where the CPU goes while the streams stay open, and how many still are after.
func (r *runner) hold(ctx context.Context, gw *Gateway, fake *Fake, res *OpenResult, d time.Duration) error {
	meter, err := startCPUMeter(gw.Proc, fake.Proc, nil)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("open streams interrupted: %w", ctx.Err())
	case <-time.After(d):
	}
	if res.HoldBusy, err = meter.stop(); err != nil {
		return err
	}
	res.OpenAfterHold, err = gw.OpenStreams(ctx)
	return err
}

// watchPeak polls the gateway's open streams until all are open (or until giveUp), then
// samples its memory, goroutines and descriptors.
func (r *runner) watchPeak(ctx context.Context, gw *Gateway, res *OpenResult, giveUp time.Time) error {
	for {
		open, err := gw.OpenStreams(ctx)
		if err != nil {
			return err
		}
		if open >= res.Streams || time.Now().After(giveUp) {
			res.PeakOpen = open
			if err := sampleGateway(ctx, gw, &res.RSSAtPeak, &res.HeapAtPeak, &res.GoroutinesAtPeak, &res.OpenFilesAtPeak); err != nil {
				return err
			}
			stacks, err := gw.Metric(ctx, "go_memstats_stack_inuse_bytes")
			res.StacksAtPeak = int64(stacks)
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("open streams interrupted: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sampleGateway reads the gateway's RSS (/proc), heap in use and goroutines (/metrics) and,
// when fds is set, its open file descriptors.
func sampleGateway(ctx context.Context, gw *Gateway, rss, heap *int64, goroutines, fds *int) error {
	var err error
	if *rss, err = gw.Status("VmRSS"); err != nil {
		return err
	}
	h, err := gw.Metric(ctx, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return err
	}
	g, err := gw.Metric(ctx, "go_goroutines")
	if err != nil {
		return err
	}
	*heap, *goroutines = int64(h), int(g)
	if fds != nil {
		if *fds, err = gw.OpenFiles(); err != nil {
			return err
		}
	}
	return nil
}
