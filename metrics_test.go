package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// scrape reads the master's /metrics as series → value.
func scrape(t *testing.T, c *testCluster) map[string]float64 {
	t.Helper()
	resp := c.Do(http.MethodGet, metricsPath, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	resp.Body.Close()
	return series
}

// TestMetrics: /metrics counts requests by API, method and status class, with their
// latency and bytes, each volume's requests and bytes, and reads when scraped which
// volumes are up, the keys and bytes stored (kept by the index as it is written), and
// the work of REBALANCE.
func TestMetrics(t *testing.T) {
	c := startCluster(t, 3, nil)
	for i := range 4 {
		c.Put(fmt.Sprintf("/m/%d", i), make([]byte, 1000+i))
	}
	c.Get("/m/0")
	if resp := c.Do(http.MethodDelete, "/m/3", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if resp := c.Do("UNLINK", "/m/2", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("UNLINK: %d", resp.StatusCode)
	}
	c.Do(http.MethodGet, "/nothing", nil)
	c.Do("BREW", "/m/0", nil)
	c.Do("REBALANCE", "/m/0", nil)
	if resp := c.Do(http.MethodPut, "/s3bucket", nil, "Authorization", "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"); resp.StatusCode/100 != 2 {
		t.Fatalf("S3 CreateBucket: %d", resp.StatusCode)
	}
	m := scrape(t, c)
	want := map[string]float64{
		`davkv_requests_total{api="native",code="2xx",method="PUT"}`:                       4,
		`davkv_requests_total{api="native",code="3xx",method="GET"}`:                       1,
		`davkv_requests_total{api="native",code="4xx",method="GET"}`:                       1,
		`davkv_requests_total{api="native",code="2xx",method="DELETE"}`:                    1,
		`davkv_requests_total{api="native",code="2xx",method="UNLINK"}`:                    1,
		`davkv_requests_total{api="native",code="4xx",method="other"}`:                     1,
		`davkv_requests_total{api="s3",code="2xx",method="PUT"}`:                           1,
		`davkv_request_duration_seconds_count{api="native",method="PUT"}`:                  4,
		`davkv_received_bytes_total`:                                                       1000 + 1001 + 1002 + 1003,
		`davkv_keys{state="live"}`:                                                         2,
		`davkv_stored_bytes{state="live"}`:                                                 1000 + 1001,
		`davkv_keys{state="unlinked"}`:                                                     1,
		`davkv_stored_bytes{state="unlinked"}`:                                             1002,
		`davkv_keys{state="deleting"}`:                                                     0,
		`davkv_rebalance_keys_total`:                                                       1,
		`davkv_rebalance_moved_keys_total`:                                                 0,
		`davkv_sweeper_queue_keys`:                                                         0,
		fmt.Sprintf(`davkv_volume_up{volume=%q}`, c.Vols[0].Addr):                          1,
		fmt.Sprintf(`davkv_volume_full{volume=%q}`, c.Vols[0].Addr):                        0,
		fmt.Sprintf(`davkv_volume_sent_bytes_total{volume=%q}`, c.Vols[1].Addr):            1000 + 1001 + 1002 + 1003,
		fmt.Sprintf(`davkv_volume_requests_total{method="PUT",volume=%q}`, c.Vols[2].Addr): 4 + 1, // the values, the unlink marker
	}
	for series, v := range want {
		if got, ok := m[series]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
		}
	}
	for _, series := range []string{`davkv_sent_bytes_total`, `go_goroutines`, `process_cpu_seconds_total`,
		fmt.Sprintf(`davkv_volume_request_duration_seconds_count{volume=%q}`, c.Vols[0].Addr)} {
		if m[series] <= 0 {
			t.Errorf("%s = %v, want more than 0", series, m[series])
		}
	}

	c.Vols[0].Stop()
	testenv.Eventually(t, 5*time.Second, "the stopped volume is not reported down", func() bool {
		return scrape(t, c)[fmt.Sprintf(`davkv_volume_up{volume=%q}`, c.Vols[0].Addr)] == 0
	})
	if resp := c.Do(http.MethodDelete, "/m/1", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE with a volume down: %d", resp.StatusCode)
	}
	m = scrape(t, c)
	if m[`davkv_keys{state="deleting"}`] != 1 || m[`davkv_sweeper_queue_keys`] < 1 || m[`davkv_keys{state="live"}`] != 1 {
		t.Errorf("after a DELETE with a volume down: deleting %v, sweeper queue %v, live %v",
			m[`davkv_keys{state="deleting"}`], m[`davkv_sweeper_queue_keys`], m[`davkv_keys{state="live"}`])
	}

	// Without metrics, /metrics is a reserved key, as /health is.
	c.Config.NoMetrics = true
	c.RestartMaster()
	if resp := c.Do(http.MethodGet, metricsPath, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET /metrics with NoMetrics: %d, want 400", resp.StatusCode)
	}
}

// BenchmarkMetrics measures what counting costs per request the master answers and
// per request it sends a volume, against answering without counting.
func BenchmarkMetrics(b *testing.B) {
	cfg := ServerConfig{ClusterConfig: ClusterConfig{Volumes: []string{"a:1", "b:2", "c:3"}, DB: filepath.Join(b.TempDir(), "index"), Replicas: 3, Subvolumes: 10}, VolTimeout: time.Second}
	m, err := NewMaster(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	handler := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	r := httptest.NewRequest(http.MethodDelete, "/key", nil)
	w := httptest.NewRecorder()
	b.Run("request without metrics", func(b *testing.B) {
		for b.Loop() {
			handler(w, r)
		}
	})
	b.Run("request counted", func(b *testing.B) {
		for b.Loop() {
			cr := m.metrics.begin(w, r)
			handler(&cr.countingWriter, r)
			m.metrics.end(cr, r, "native")
		}
	})
	b.Run("volume request counted", func(b *testing.B) {
		vr := VolumeRequest{Volume: "b:2", Op: http.MethodPut, Took: time.Millisecond, Sent: 1024}
		for b.Loop() {
			m.metrics.observeVolume(vr)
		}
	})
}
