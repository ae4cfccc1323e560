package main

import (
	"fmt"
	"os"
	"path/filepath"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// snapshot reads every resource kind the directory has. Today: secrets. Listeners, clusters,
// routes and endpoints get their own folders beside secrets/ as the control plane grows.
func snapshot(dir, version string) (*cache.Snapshot, error) {
	secrets, err := readSecrets(filepath.Join(dir, "secrets"))
	if err != nil {
		return nil, err
	}
	return cache.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.SecretType: secrets,
	})
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
