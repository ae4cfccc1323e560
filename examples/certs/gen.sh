#!/usr/bin/env bash
# Makes a test PKI with openssl: two CAs, a server certificate, a second server certificate,
# and client certificates with SPIFFE IDs. Keys are written 0600. For tests and examples only.
#
#   examples/certs/gen.sh [OUT_DIR]      (default: examples/certs/out)
#
# OUT_DIR/
#   ca.pem ca.key              the CA that signs everything below
#   server.pem server.key      DNS: a.example.com, b.example.com, localhost; IP 127.0.0.1;
#                              URI: spiffe://cluster.local/ns/default/sa/sluice
#   b.pem b.key                DNS: b.example.com only (for SNI selection)
#   client.pem client.key      URI: spiffe://cluster.local/ns/default/sa/client, DNS: client.local
#   backend.pem backend.key    URI: spiffe://cluster.local/ns/default/sa/backend, DNS: backend.local
#                              (a server certificate with a workload identity, for upstream TLS)
#   other-ca.pem other-ca.key  an unrelated CA
#   other-client.pem/.key      a client certificate from the unrelated CA
set -euo pipefail
out=${1:-"$(dirname "$0")/out"}
mkdir -p "$out"
cd "$out"
umask 077
days=3650

ca() { # name subject
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
        -subj "$2" -keyout "$1.key" -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() { # name ca subject san usage
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$3" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$5" "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
        -days "$days" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "/O=Sluice test/CN=Sluice test CA"
ca other-ca "/O=Elsewhere/CN=Unrelated CA"
leaf server ca "/CN=a.example.com" \
    "DNS:a.example.com,DNS:b.example.com,DNS:localhost,IP:127.0.0.1,URI:spiffe://cluster.local/ns/default/sa/sluice" serverAuth
leaf b ca "/CN=b.example.com" "DNS:b.example.com" serverAuth
leaf backend ca "/CN=backend.local" \
    "URI:spiffe://cluster.local/ns/default/sa/backend,DNS:backend.local" serverAuth
leaf client ca "/O=Sluice test/CN=client" \
    "URI:spiffe://cluster.local/ns/default/sa/client,DNS:client.local" clientAuth
leaf other-client other-ca "/CN=intruder" \
    "URI:spiffe://elsewhere/ns/default/sa/intruder" clientAuth
chmod 600 ./*.key
chmod 644 ./*.pem
rm -f ./*.srl
echo "certificates in $(pwd)"
