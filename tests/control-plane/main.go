// A small xDS control plane for Sluice's tests, built on go-control-plane (the library
// Istio-like control planes are built on).
//
// It serves resources read from a directory and publishes a new snapshot version whenever it
// reads a line on stdin or gets SIGHUP, so a test changes files and then says "push".
//
//	control-plane -dir DIR -listen 127.0.0.1:0 | unix:/path/to.sock
//
// DIR/secrets/NAME/ holds one secret per folder (resources.go says which files make which
// kind). It prints "ready ADDRESS" once listening, "pushed version N" after each snapshot,
// and one line per request it sees ("ACK ..." / "NACK ... error=...") so a test can read what
// the client said.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// everyNode puts every client on one snapshot: tests do not care which node asks.
type everyNode struct{}

func (everyNode) ID(*core.Node) string { return "all" }

// logf prints one line to stdout; stdout is unbuffered, so a test sees it at once.
var outMu sync.Mutex

func logf(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func main() {
	dir := flag.String("dir", ".", "directory of resources")
	listen := flag.String("listen", "127.0.0.1:0", "host:port or unix:/path")
	flag.Parse()

	ctx := context.Background()
	snapshots := cache.NewSnapshotCache(false, everyNode{}, nil)
	version := 0
	push := func() {
		version++
		snap, err := snapshot(*dir, strconv.Itoa(version))
		if err != nil {
			logf("push failed: %v", err)
			return
		}
		if err := snapshots.SetSnapshot(ctx, "all", snap); err != nil {
			logf("push failed: %v", err)
			return
		}
		logf("pushed version %d", version)
	}
	push()

	sent := newSentVersions()
	callbacks := server.CallbackFuncs{
		StreamOpenFunc: func(_ context.Context, id int64, typeURL string) error {
			logf("stream %d open %s", id, typeURL)
			return nil
		},
		StreamClosedFunc: func(id int64, _ *core.Node) {
			sent.forget(id)
			logf("stream %d closed", id)
		},
		StreamRequestFunc: func(id int64, req *discovery.DiscoveryRequest) error {
			logRequest(id, req)
			if req.GetErrorDetail() != nil {
				// The snapshot cache answers a request whose version differs from the
				// snapshot's at once, so a NACK (which carries the last version the client
				// accepted) would get the rejected version back in a loop. Treat the
				// rejected version as the client's: the watch then waits for a new snapshot.
				if v, ok := sent.version(id, req.GetResponseNonce()); ok {
					req.VersionInfo = v
				}
			}
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			sent.record(id, resp.GetNonce(), resp.GetVersionInfo())
		},
		DeltaStreamOpenFunc: func(_ context.Context, id int64, typeURL string) error {
			logf("delta stream %d open %s", id, typeURL)
			return nil
		},
		DeltaStreamClosedFunc: func(id int64, _ *core.Node) {
			logf("delta stream %d closed", id)
		},
		StreamDeltaRequestFunc: func(id int64, req *discovery.DeltaDiscoveryRequest) error {
			logDeltaRequest(id, req)
			return nil
		},
	}
	srv := server.NewServer(ctx, snapshots, callbacks)
	grpcServer := grpc.NewServer()
	secretservice.RegisterSecretDiscoveryServiceServer(grpcServer, srv)
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, srv)
	listenerservice.RegisterListenerDiscoveryServiceServer(grpcServer, srv)
	routeservice.RegisterRouteDiscoveryServiceServer(grpcServer, srv)
	clusterservice.RegisterClusterDiscoveryServiceServer(grpcServer, srv)
	endpointservice.RegisterEndpointDiscoveryServiceServer(grpcServer, srv)

	lis, err := listenOn(*listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot listen on %s: %v\n", *listen, err)
		os.Exit(1)
	}
	logf("ready %s", lis.Addr())

	// A line on stdin or SIGHUP: read the directory again and publish it as a new version.
	pushes := make(chan struct{})
	go func() {
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() {
			pushes <- struct{}{}
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-pushes:
			case <-hup:
			}
			push()
		}
	}()

	if err := grpcServer.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
		os.Exit(1)
	}
}

// sentVersions remembers which version each response (stream, nonce) carried.
type sentVersions struct {
	mu       sync.Mutex
	byStream map[int64]map[string]string
}

func newSentVersions() *sentVersions {
	return &sentVersions{byStream: map[int64]map[string]string{}}
}

func (s *sentVersions) record(stream int64, nonce, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byStream[stream] == nil {
		s.byStream[stream] = map[string]string{}
	}
	s.byStream[stream][nonce] = version
}

func (s *sentVersions) version(stream int64, nonce string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byStream[stream][nonce]
	return v, ok
}

func (s *sentVersions) forget(stream int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byStream, stream)
}

func listenOn(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		_ = os.Remove(path)
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// logDeltaRequest is logRequest for the delta protocol.
func logDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) {
	short := shortType(req.GetTypeUrl())
	switch {
	case req.GetErrorDetail() != nil:
		logf("NACK delta stream=%d type=%s nonce=%q error=%s", id, short, req.GetResponseNonce(),
			req.GetErrorDetail().GetMessage())
	case req.GetResponseNonce() != "":
		logf("ACK delta stream=%d type=%s nonce=%q", id, short, req.GetResponseNonce())
	default:
		node := req.GetNode()
		logf("REQUEST delta stream=%d type=%s node=%q subscribe=%s unsubscribe=%s initial=%d", id, short,
			node.GetId(), strings.Join(req.GetResourceNamesSubscribe(), ","),
			strings.Join(req.GetResourceNamesUnsubscribe(), ","), len(req.GetInitialResourceVersions()))
	}
}

// logRequest tells whether a request is the first of a stream, an ACK or a NACK.
func logRequest(id int64, req *discovery.DiscoveryRequest) {
	names := strings.Join(req.GetResourceNames(), ",")
	node := req.GetNode()
	switch {
	case req.GetErrorDetail() != nil:
		logf("NACK stream=%d type=%s version=%q nonce=%q names=%s error=%s", id, shortType(req.GetTypeUrl()), req.GetVersionInfo(),
			req.GetResponseNonce(), names, req.GetErrorDetail().GetMessage())
	case req.GetResponseNonce() != "":
		logf("ACK stream=%d type=%s version=%q nonce=%q names=%s", id, shortType(req.GetTypeUrl()), req.GetVersionInfo(),
			req.GetResponseNonce(), names)
	default:
		logf("REQUEST stream=%d type=%s node=%q cluster=%q version=%q names=%s", id, shortType(req.GetTypeUrl()), node.GetId(),
			node.GetCluster(), req.GetVersionInfo(), names)
	}
}

// shortType is the message name of a type URL: Listener, Cluster, Secret...
func shortType(url string) string {
	return url[strings.LastIndex(url, ".")+1:]
}
