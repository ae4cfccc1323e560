package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	// Linked so that typed_config `@type`s in the YAML files resolve.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// snapshot reads every resource kind the directory has:
//
//	secrets/NAME/     one secret per folder (readSecrets)
//	listeners/*.yaml  one Envoy v3 Listener per file, in Envoy's YAML form
//	routes/*.yaml     RouteConfiguration
//	clusters/*.yaml   Cluster
//	endpoints/*.yaml  ClusterLoadAssignment
func snapshot(dir, version string) (*cache.Snapshot, error) {
	secrets, err := readSecrets(filepath.Join(dir, "secrets"))
	if err != nil {
		return nil, err
	}
	out := map[resource.Type][]types.Resource{resource.SecretType: secrets}
	kinds := []struct {
		folder string
		typ    resource.Type
		make   func() proto.Message
	}{
		{"listeners", resource.ListenerType, func() proto.Message { return &listener.Listener{} }},
		{"routes", resource.RouteType, func() proto.Message { return &route.RouteConfiguration{} }},
		{"clusters", resource.ClusterType, func() proto.Message { return &cluster.Cluster{} }},
		{"endpoints", resource.EndpointType, func() proto.Message { return &endpoint.ClusterLoadAssignment{} }},
	}
	for _, k := range kinds {
		list, err := readYAML(filepath.Join(dir, k.folder), k.make)
		if err != nil {
			return nil, err
		}
		out[k.typ] = list
	}
	return cache.NewSnapshot(version, out)
}

// readYAML reads each *.yaml / *.json file of dir as one resource, in name order. Any
// `typed_config` inside must name a type this program links (see the imports).
func readYAML(dir string, make func() proto.Message) ([]types.Resource, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []types.Resource
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".json")) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, name, err)
		}
		msg := make()
		if err := protojson.Unmarshal(js, msg); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, name, err)
		}
		out = append(out, msg.(types.Resource))
	}
	return out, nil
}

// readSecrets makes one secret per folder of dir, named after the folder:
//
//	cert_chain.pem + private_key.pem  -> tls_certificate
//	trusted_ca.pem                    -> validation_context
//
// The files' bytes are sent inline, unchecked: a test may serve a broken secret on purpose.
func readSecrets(dir string) ([]types.Resource, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []types.Resource
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		read := func(file string) ([]byte, bool, error) {
			b, err := os.ReadFile(filepath.Join(dir, name, file))
			if os.IsNotExist(err) {
				return nil, false, nil
			}
			return b, err == nil, err
		}
		chain, hasChain, err := read("cert_chain.pem")
		if err != nil {
			return nil, err
		}
		key, hasKey, err := read("private_key.pem")
		if err != nil {
			return nil, err
		}
		ca, hasCA, err := read("trusted_ca.pem")
		if err != nil {
			return nil, err
		}
		switch {
		case hasChain && hasKey:
			out = append(out, &tls.Secret{Name: name, Type: &tls.Secret_TlsCertificate{
				TlsCertificate: &tls.TlsCertificate{
					CertificateChain: inline(chain),
					PrivateKey:       inline(key),
				},
			}})
		case hasCA:
			out = append(out, &tls.Secret{Name: name, Type: &tls.Secret_ValidationContext{
				ValidationContext: &tls.CertificateValidationContext{TrustedCa: inline(ca)},
			}})
		default:
			return nil, fmt.Errorf("secret %q: needs cert_chain.pem and private_key.pem, or trusted_ca.pem", name)
		}
	}
	return out, nil
}

func inline(b []byte) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: b}}
}
