// Command loadgen is a closed-loop YCSB-style load generator for etcd on etcd's own Go client
// (clientv3). N client goroutines each issue one request at a time, back to back. It prints one JSON
// line with ops/s and latency percentiles on stdout, and a progress line per second on stderr
// ("progress elapsed_s=.. ops=.. ops_per_sec=..").
//
// Built in GOPATH mode from Debian's golang-etcd-server-dev (see bench/etcd/cluster.ts):
//
//	GO111MODULE=off GOPATH=$PWD/bench/.work/gopath:/usr/share/gocode go build -o bench/.work/etcd-loadgen ./bench/etcd/loadgen
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc/grpclog"
)

// Output format version of the JSON line; bump when a field changes meaning.
const outputVersion = 1

type config struct {
	endpoints []string
	workload  string // load | put | a | b | c
	dist      string // uniform | zipfian
	clients   int
	conns     int
	keys      int
	valueSize int
	duration  time.Duration
	prefix    string
	seed      int64
	timeout   time.Duration
}

type result struct {
	Version    int     `json:"version"`
	System     string  `json:"system"`
	Workload   string  `json:"workload"`
	Dist       string  `json:"dist"`
	Clients    int     `json:"clients"`
	Conns      int     `json:"conns"`
	Ops        int64   `json:"ops"`
	Reads      int64   `json:"reads"`
	Writes     int64   `json:"writes"`
	Errors     int64   `json:"errors"`
	NotFound   int64   `json:"not_found"`
	ElapsedS   float64 `json:"elapsed_s"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	P50Ms      float64 `json:"p50_ms"`
	P90Ms      float64 `json:"p90_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func parseFlags() config {
	var c config
	var endpoints string
	flag.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "comma-separated etcd client endpoints")
	flag.StringVar(&c.workload, "workload", "put", "load (each key once) | put (updates) | a (50/50) | b (95/5) | c (reads)")
	flag.StringVar(&c.dist, "dist", "uniform", "key distribution: uniform | zipfian")
	flag.IntVar(&c.clients, "clients", 16, "concurrent closed-loop clients")
	flag.IntVar(&c.conns, "conns", 0, "gRPC connections shared by the clients (0: one per 64 clients)")
	flag.IntVar(&c.keys, "keys", 10000, "key space size")
	flag.IntVar(&c.valueSize, "value-size", 100, "value bytes")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "run time (ignored by load)")
	flag.StringVar(&c.prefix, "prefix", "bench/", "key prefix")
	flag.Int64Var(&c.seed, "seed", 1, "random seed")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.Parse()
	c.endpoints = strings.Split(endpoints, ",")
	if c.conns <= 0 {
		// Measured on 2 cores: one connection is best up to 64 clients, a few help beyond.
		c.conns = (c.clients + 63) / 64
	}
	switch c.workload {
	case "load", "put", "a", "b", "c":
	default:
		fail("unknown workload %q", c.workload)
	}
	if c.dist != "uniform" && c.dist != "zipfian" {
		fail("unknown dist %q", c.dist)
	}
	if c.clients < 1 || c.keys < 1 || c.valueSize < 0 {
		fail("clients and keys must be >= 1, value-size >= 0")
	}
	return c
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(2)
}

// readFraction is the share of reads of each workload (YCSB A, B, C; put and load write only).
func readFraction(w string) float64 {
	switch w {
	case "a":
		return 0.5
	case "b":
		return 0.95
	case "c":
		return 1
	}
	return 0
}

// zipfian is YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record synthetic
// databases"), theta 0.99, scrambled by FNV-1a so the hot keys are spread over the key space.
type zipfian struct {
	items                    int64
	theta, alpha, zetan, eta float64
	half                     float64
}

func zeta(n int64, theta float64) float64 {
	sum := 0.0
	for i := int64(1); i <= n; i++ {
		sum += 1 / math.Pow(float64(i), theta)
	}
	return sum
}

func newZipfian(items int64) *zipfian {
	const theta = 0.99
	z := &zipfian{items: items, theta: theta}
	z.zetan = zeta(items, theta)
	zeta2 := zeta(2, theta)
	z.alpha = 1 / (1 - theta)
	z.eta = (1 - math.Pow(2/float64(items), 1-theta)) / (1 - zeta2/z.zetan)
	z.half = 1 + math.Pow(0.5, theta)
	return z
}

func (z *zipfian) rank(u float64) int64 {
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.half {
		return 1
	}
	r := int64(float64(z.items) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	if r >= z.items {
		r = z.items - 1
	}
	return r
}

func fnv1a64(v uint64) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < 8; i++ {
		h ^= v & 0xff
		h *= 1099511628211
		v >>= 8
	}
	return h
}

func (z *zipfian) next(rng *rand.Rand) int64 {
	return int64(fnv1a64(uint64(z.rank(rng.Float64()))) % uint64(z.items))
}

type worker struct {
	lat      []time.Duration
	reads    int64
	writes   int64
	errors   int64
	notFound int64
	firstErr error
}

func key(c *config, i int64) string { return fmt.Sprintf("%suser%010d", c.prefix, i) }

func (w *worker) record(start time.Time, err error) {
	if err != nil {
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	w.lat = append(w.lat, time.Since(start))
}

func (w *worker) one(ctx context.Context, c *config, cli *clientv3.Client, k string, read bool, value string) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	if read {
		// Linearizable by default (no clientv3.WithSerializable()).
		resp, err := cli.Get(rctx, k)
		if err == nil && len(resp.Kvs) == 0 {
			w.notFound++
		}
		w.reads++
		w.record(start, err)
		return
	}
	_, err := cli.Put(rctx, k, value)
	w.writes++
	w.record(start, err)
}

func run(c *config, clients []*clientv3.Client) ([]*worker, time.Duration) {
	value := strings.Repeat("v", c.valueSize)
	workers := make([]*worker, c.clients)
	var done int64
	var next int64 = -1 // load phase: the next key index to write
	var stop atomic.Bool
	var zipf *zipfian
	if c.dist == "zipfian" {
		zipf = newZipfian(int64(c.keys))
	}
	readFrac := readFraction(c.workload)
	ctx := context.Background()
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < c.clients; i++ {
		w := &worker{lat: make([]time.Duration, 0, 4096)}
		workers[i] = w
		cli := clients[i%len(clients)]
		rng := rand.New(rand.NewSource(c.seed*1000003 + int64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var k int64
				if c.workload == "load" {
					if k = atomic.AddInt64(&next, 1); k >= int64(c.keys) {
						return
					}
				} else if zipf != nil {
					k = zipf.next(rng)
				} else {
					k = rng.Int63n(int64(c.keys))
				}
				read := readFrac > 0 && rng.Float64() < readFrac
				w.one(ctx, c, cli, key(c, k), read, value)
				atomic.AddInt64(&done, 1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	progress(c, start, &done, &stop, finished)
	wg.Wait()
	return workers, time.Since(start)
}

// progress prints one line per second on stderr and raises stop when the duration is over.
func progress(c *config, start time.Time, done *int64, stop *atomic.Bool, finished chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-finished:
			return
		case <-tick.C:
			n := atomic.LoadInt64(done)
			el := time.Since(start)
			fmt.Fprintf(os.Stderr, "progress elapsed_s=%.0f ops=%d ops_per_sec=%d\n", el.Seconds(), n, n-last)
			last = n
			if c.workload != "load" && el >= c.duration {
				stop.Store(true)
				return
			}
		}
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func summarize(c *config, workers []*worker, elapsed time.Duration) result {
	r := result{Version: outputVersion, System: "etcd", Workload: c.workload, Dist: c.dist,
		Clients: c.clients, Conns: c.conns, ElapsedS: elapsed.Seconds()}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		r.Reads += w.reads
		r.Writes += w.writes
		r.Errors += w.errors
		r.NotFound += w.notFound
		if w.firstErr != nil && r.FirstError == "" {
			r.FirstError = w.firstErr.Error()
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r.Ops = int64(len(all))
	r.OpsPerSec = math.Round(float64(r.Ops) / elapsed.Seconds())
	r.P50Ms = ms(percentile(all, 50))
	r.P90Ms = ms(percentile(all, 90))
	r.P99Ms = ms(percentile(all, 99))
	r.MaxMs = ms(percentile(all, 100))
	return r
}

func main() {
	c := parseFlags()
	// gRPC logs every reconnect attempt to stderr; keep stderr for progress lines.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(ioutil.Discard, ioutil.Discard, os.Stderr))
	clients := make([]*clientv3.Client, c.conns)
	for i := range clients {
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second})
		if err != nil {
			fail("connect: %v", err)
		}
		defer cli.Close()
		clients[i] = cli
	}
	workers, elapsed := run(&c, clients)
	out, err := json.Marshal(summarize(&c, workers, elapsed))
	if err != nil {
		fail("json: %v", err)
	}
	fmt.Println(string(out))
}
