package main

// The master's metrics for Prometheus (GET /metrics): its requests, their latency and
// bytes; each volume's requests, errors, latency and bytes; and, read when scraped,
// which volumes are up and full, the keys and bytes the index holds, the sweeper's
// queue, and the work of REBALANCE and VERIFY.

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"davkv/internal/index"
)

// metrics are a master's, in a registry of its own. Every series a request touches is
// made up front, so that counting is a few atomic adds.
type metrics struct {
	// page answers GET /metrics, from the registry.
	page http.Handler
	// requests are by API ("native", "s3") and method.
	requests       map[string]map[string]*requestMetrics
	received, sent prometheus.Counter
	volumes        map[string]*volumeMetrics
	otherVolume    *volumeMetrics
	rebalanced     prometheus.Counter
	moved          prometheus.Counter
	verified       prometheus.Counter
	verifyProblems prometheus.Counter
	// lifecycle counts the passes of the buckets' lifecycle rules (see lifecycle.go).
	lifecycleScanned, lifecycleExpired, lifecycleAborted prometheus.Counter
	lifecyclePass                                        prometheus.Gauge
	// authFailures are by API and reason (see authReasons).
	authFailures map[string]map[string]prometheus.Counter
}

// authReasons are why a request fails access control: its credentials or signature
// were wrong, its key (or nobody) may not do what it asked, or its address had failed
// too often to try again yet.
var authReasons = []string{"credentials", "denied", "limited"}

// requestMetrics are one API's and method's.
type requestMetrics struct {
	byClass  [6]prometheus.Counter // by status class, 1xx to 5xx
	duration prometheus.Observer
}

// volumeMetrics are one volume's.
type volumeMetrics struct {
	requests map[string]prometheus.Counter // by method
	errors   prometheus.Counter
	duration prometheus.Observer
	sent     prometheus.Counter
}

// newMetrics makes m's metrics and registers, beside them, the collectors that read
// m's state when scraped, and Go's and the process's own.
func newMetrics(m *Master) *metrics {
	// The methods counted by name; any other is "other", so that clients cannot make
	// series without end. Latencies span a redirect (100 µs) to a large upload (26 s).
	metricsMethods := []string{"GET", "HEAD", "PUT", "POST", "DELETE", "UNLINK", "REBALANCE", "VERIFY", "other"}
	latencyBuckets := prometheus.ExponentialBuckets(100e-6, 4, 10)
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "davkv_requests_total", Help: "Requests answered, by API (native, s3), method and status class.",
	}, []string{"api", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "davkv_request_duration_seconds", Help: "Time to answer a request, by API and method.", Buckets: latencyBuckets,
	}, []string{"api", "method"})
	volRequests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "davkv_volume_requests_total", Help: "Requests the master sent to each volume, by method.",
	}, []string{"volume", "method"})
	volErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "davkv_volume_errors_total", Help: "Requests to each volume that failed: no answer, or an error status.",
	}, []string{"volume"})
	volDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "davkv_volume_request_duration_seconds", Help: "Time from a request to a volume to its answer.", Buckets: latencyBuckets,
	}, []string{"volume"})
	volSent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "davkv_volume_sent_bytes_total", Help: "Bytes of values the master streamed to each volume.",
	}, []string{"volume"})
	authFailures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "davkv_auth_failures_total", Help: "Requests refused by access control, by API and reason: bad credentials or signature, denied by the policies, or limited (too many failures from the address).",
	}, []string{"api", "reason"})
	mt := &metrics{
		authFailures: map[string]map[string]prometheus.Counter{},
		requests:     map[string]map[string]*requestMetrics{},
		received:     prometheus.NewCounter(prometheus.CounterOpts{Name: "davkv_received_bytes_total", Help: "Bytes of request bodies the master read."}),
		sent:         prometheus.NewCounter(prometheus.CounterOpts{Name: "davkv_sent_bytes_total", Help: "Bytes of answer bodies the master wrote."}),
		volumes:      map[string]*volumeMetrics{},
		rebalanced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "davkv_rebalance_keys_total", Help: "Keys REBALANCE (rebalance -master) handled."}),
		moved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "davkv_rebalance_moved_keys_total", Help: "Keys REBALANCE moved."}),
		verified: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "davkv_verify_keys_total", Help: "Keys and files VERIFY (verify -master) checked."}),
		verifyProblems: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "davkv_verify_problems_total", Help: "Problems VERIFY found."}),
		lifecycleScanned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "davkv_lifecycle_scanned_keys_total", Help: "Keys the lifecycle passes looked at, in buckets with lifecycle rules."}),
		lifecycleExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "davkv_lifecycle_expired_keys_total", Help: "Keys the buckets' lifecycle rules expired, deleted as DELETE does."}),
		lifecycleAborted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "davkv_lifecycle_aborted_uploads_total", Help: "Multipart uploads the buckets' lifecycle rules aborted."}),
		lifecyclePass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "davkv_lifecycle_last_pass_timestamp_seconds", Help: "When this master last finished a lifecycle pass (only one master of several makes them)."}),
	}
	for _, api := range []string{apiNative, apiS3} {
		mt.authFailures[api] = map[string]prometheus.Counter{}
		for _, reason := range authReasons {
			mt.authFailures[api][reason] = authFailures.WithLabelValues(api, reason)
		}
		mt.requests[api] = map[string]*requestMetrics{}
		for _, method := range metricsMethods {
			rm := &requestMetrics{duration: duration.WithLabelValues(api, method)}
			for class := 1; class <= 5; class++ {
				rm.byClass[class] = requests.WithLabelValues(api, method, strconv.Itoa(class)+"xx")
			}
			mt.requests[api][method] = rm
		}
	}
	newVolume := func(v string) *volumeMetrics {
		vm := &volumeMetrics{requests: map[string]prometheus.Counter{}, errors: volErrors.WithLabelValues(v),
			duration: volDuration.WithLabelValues(v), sent: volSent.WithLabelValues(v)}
		for _, method := range metricsMethods {
			vm.requests[method] = volRequests.WithLabelValues(v, method)
		}
		return vm
	}
	for _, v := range m.cfg.Volumes {
		mt.volumes[v] = newVolume(v)
	}
	// The index may name volumes no longer configured; a retired master or a
	// volume being drained counts together.
	mt.otherVolume = newVolume("other")
	reg.MustRegister(requests, duration, authFailures, volRequests, volErrors, volDuration, volSent, mt.received, mt.sent,
		mt.rebalanced, mt.moved, mt.verified, mt.verifyProblems, mt.lifecycleScanned, mt.lifecycleExpired, mt.lifecycleAborted, mt.lifecyclePass,
		newStateCollector(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mt.page = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return mt
}

// observeVolume counts one request to a volume (see VolumeClient.Observe).
func (mt *metrics) observeVolume(r VolumeRequest) {
	vm, ok := mt.volumes[r.Volume]
	if !ok {
		vm = mt.otherVolume
	}
	c, ok := vm.requests[r.Op]
	if !ok {
		c = vm.requests["other"]
	}
	c.Inc()
	if r.Err != nil {
		vm.errors.Inc()
	}
	vm.duration.Observe(r.Took.Seconds())
	if r.Sent > 0 {
		vm.sent.Add(float64(r.Sent))
	}
}

// countedRequest is a request being counted: the writer its handler answers through,
// the body it reads, when it began; one allocation per request.
type countedRequest struct {
	countingWriter
	body  countingBody
	start time.Time
}

// begin starts counting r: its handler answers through the returned request's
// countingWriter and reads r.Body, now counted; end counts it.
func (mt *metrics) begin(w http.ResponseWriter, r *http.Request) *countedRequest {
	cr := &countedRequest{countingWriter: countingWriter{ResponseWriter: w}, start: time.Now()}
	if r.Body != nil && r.Body != http.NoBody {
		cr.body.ReadCloser = r.Body
		r.Body = &cr.body
	}
	return cr
}

// end counts a request begin began, answered, by api ("native", "s3"): its status
// class, latency and bytes.
func (mt *metrics) end(cr *countedRequest, r *http.Request, api string) {
	rm, ok := mt.requests[api][r.Method]
	if !ok {
		rm = mt.requests[api]["other"]
	}
	class := cr.status / 100
	if cr.status == 0 {
		class = 2 // nothing written: net/http answers 200
	}
	if class >= 1 && class <= 5 {
		rm.byClass[class].Inc()
	}
	rm.duration.Observe(time.Since(cr.start).Seconds())
	if cr.written > 0 {
		mt.sent.Add(float64(cr.written))
	}
	if cr.body.n > 0 {
		mt.received.Add(float64(cr.body.n))
	}
}

// authFailed counts a request access control refused, by api and one of authReasons;
// a nil metrics counts nothing.
func (mt *metrics) authFailed(api, reason string) {
	if mt != nil {
		mt.authFailures[api][reason].Inc()
	}
}

// rebalance counts a key REBALANCE handled; a nil metrics counts nothing.
func (mt *metrics) rebalance(moved bool) {
	if mt == nil {
		return
	}
	mt.rebalanced.Inc()
	if moved {
		mt.moved.Inc()
	}
}

// lifecycle counts one lifecycle pass, ended at end.
func (mt *metrics) lifecycle(scanned, expired, aborted int, end time.Time) {
	if mt == nil {
		return
	}
	mt.lifecycleScanned.Add(float64(scanned))
	mt.lifecycleExpired.Add(float64(expired))
	mt.lifecycleAborted.Add(float64(aborted))
	mt.lifecyclePass.Set(float64(end.UnixNano()) / 1e9)
}

// verify counts a key or file VERIFY checked and the problems it found.
func (mt *metrics) verify(problems int) {
	if mt == nil {
		return
	}
	mt.verified.Inc()
	mt.verifyProblems.Add(float64(problems))
}

// countingWriter is a ResponseWriter that remembers the status and counts the body's
// bytes. Unwrap lets http.ResponseController reach the writer beneath (flushes,
// deadlines, full duplex), and ReadFrom keeps its sendfile path.
type countingWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.written += n
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the bytes read from a request's body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// stateCollector reads, when scraped, what the master knows without counting: which
// volumes are up and full, the index's keys and bytes by state, the sweeper's queue.
type stateCollector struct {
	m                                             *Master
	up, full, info, weight, keys, bytes, sweeping *prometheus.Desc
}

func newStateCollector(m *Master) *stateCollector {
	return &stateCollector{
		m:        m,
		up:       prometheus.NewDesc("davkv_volume_up", "Whether the volume answers (1) or not (0).", []string{"volume"}, nil),
		full:     prometheus.NewDesc("davkv_volume_full", "Whether the volume refused a write for want of room lately (1): it gets no writes.", []string{"volume"}, nil),
		info:     prometheus.NewDesc("davkv_volume_domain", "Always 1: the zone and host placement counts the volume in (its failure domain).", []string{"volume", "zone", "host"}, nil),
		weight:   prometheus.NewDesc("davkv_volume_weight", "The volume's weight: its share of keys relative to the others.", []string{"volume"}, nil),
		keys:     prometheus.NewDesc("davkv_keys", "Keys in the index, by state (live, unlinked; writing and deleting: unfinished writes and deletes).", []string{"state"}, nil),
		bytes:    prometheus.NewDesc("davkv_stored_bytes", "Bytes of the values in the index, one copy each, by state.", []string{"state"}, nil),
		sweeping: prometheus.NewDesc("davkv_sweeper_queue_keys", "Keys waiting for the sweeper: old replicas, unfinished deletes and unlinks.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.full, c.info, c.weight, c.keys, c.bytes, c.sweeping} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, v := range c.m.health.StatusIn(c.m.placement) {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, flag(v.Up), v.Volume)
		ch <- prometheus.MustNewConstMetric(c.full, prometheus.GaugeValue, flag(v.Full), v.Volume)
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, v.Volume, v.Zone, v.Host)
		ch <- prometheus.MustNewConstMetric(c.weight, prometheus.GaugeValue, v.Weight, v.Volume)
	}
	if stats, err := c.m.index.Stats(); err == nil {
		for st := index.StateWriting; st <= index.StateDeleting; st++ {
			ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(stats.Keys[st]), st.String())
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(stats.Bytes[st]), st.String())
		}
	} else {
		ch <- prometheus.NewInvalidMetric(c.keys, err)
	}
	c.m.sweepMu.Lock()
	queued := len(c.m.sweepQueue)
	c.m.sweepMu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.sweeping, prometheus.GaugeValue, float64(queued))
}
