#!/bin/sh
# Generate a throwaway test CA and a server certificate for the Medplum test server.
#   tests/server/make_certs.sh DIR
# Writes DIR/ca.pem, DIR/server.pem, DIR/server.key (SAN localhost, 127.0.0.1, ::1) and
# DIR/other-ca.pem, an unrelated CA for "certificate from another CA" tests. EC P-256 keys
# keep this fast (~0.1 s).
set -eu
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
export OPENSSL_CONF=/dev/null   # ignore any system openssl.cnf defaults

ca() {  # ca NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.pem" -days 2 \
        -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
ca ca "pam_medplum test CA"
ca other-ca "pam_medplum unrelated CA"

openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
    -subj "/CN=localhost" 2>/dev/null
printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' 'basicConstraints=CA:FALSE' \
    'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
    -days 2 -extfile server.ext 2>/dev/null
rm -f server.csr server.ext ca.srl other-ca.key
chmod 600 server.key ca.key
