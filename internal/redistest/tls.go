package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartServer starts a redis-server of t's own on a free loopback port,
// with extra arguments, for a test that changes the server (ACL users,
// configuration) and so must not use the shared one. It stops when t ends.
// Without redis-server on PATH, t is skipped, or fails under CI=true.
func StartServer(t testing.TB, extra ...string) (addr string) {
	t.Helper()
	requireServerBinary(t)
	s, err := startServer(extra)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.stop)
	return s.addr
}

// TLSServer is a redis-server of one test that accepts only TLS
// connections, with a certificate for 127.0.0.1 signed by a CA made for
// the test.
type TLSServer struct {
	// Addr is 127.0.0.1:port, the TLS port (the plain port is off).
	Addr string
	// RootCAs holds the test CA: a tls.Config with these roots and
	// ServerName "127.0.0.1" verifies the server.
	RootCAs *x509.CertPool
	// ClientCert is a client certificate signed by the test CA, which a
	// server started with client certificates required accepts.
	ClientCert tls.Certificate
	// Dir holds ca.crt, server.crt, server.key, client.crt and client.key.
	Dir string
}

// StartTLS starts a TLS-only redis-server for t (--port 0 --tls-port P),
// with a CA, a server certificate and a client certificate generated in
// t.TempDir(). With clientCerts the server requires a client certificate
// signed by the CA (--tls-auth-clients yes); otherwise it asks for none.
// Without redis-server on PATH, or with one built without TLS, t is
// skipped, or fails under CI=true. The server stops when t ends.
func StartTLS(t testing.TB, clientCerts bool) *TLSServer {
	t.Helper()
	requireServerBinary(t)
	dir := t.TempDir()
	ca := newCA(t, "redistest CA")
	srv := &TLSServer{Dir: dir, RootCAs: x509.NewCertPool()}
	srv.RootCAs.AddCert(ca.cert)
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", ca.cert.Raw)
	ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	srv.ClientCert = ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)

	auth := "no"
	if clientCerts {
		auth = "yes"
	}
	var lastErr error
	for range 5 {
		port, err := freePort(false)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s, err := startOn(port, []string{
			"--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", filepath.Join(dir, "server.crt"),
			"--tls-key-file", filepath.Join(dir, "server.key"),
			"--tls-ca-cert-file", filepath.Join(dir, "ca.crt"),
			"--tls-auth-clients", auth,
		})
		if err == nil {
			t.Cleanup(s.stop)
			srv.Addr = s.addr
			return srv
		}
		if msg := err.Error(); strings.Contains(msg, "tls-port") && (strings.Contains(msg, "Bad directive") || strings.Contains(msg, "not supported")) {
			if inCI() {
				t.Fatalf("redistest: redis-server lacks TLS support under CI: %v", err)
			}
			t.Skipf("redistest: redis-server lacks TLS support: %v", err)
		}
		lastErr = err
	}
	t.Fatalf("redistest: TLS server: %v", lastErr)
	return nil
}

// UnrelatedCA returns a pool holding a CA that signed nothing the test
// servers use: a client that trusts only it must fail to connect.
func UnrelatedCA(t testing.TB) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(newCA(t, "unrelated CA").cert)
	return pool
}

func requireServerBinary(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if inCI() {
			t.Fatal("redistest: no redis-server on PATH under CI")
		}
		t.Skip("redistest: needs redis-server on PATH")
	}
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("redistest: CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("redistest: CA: %v", err)
	}
	return &testCA{cert: cert, key: key}
}

// issue signs a certificate for 127.0.0.1 and localhost, writes it and its
// key to dir/name.crt and dir/name.key, and returns it.
func (ca *testCA) issue(t testing.TB, dir, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "redistest " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("redistest: %s certificate: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("redistest: %s key: %v", name, err)
	}
	writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", keyDER)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("redistest: key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("redistest: serial: %v", err)
	}
	return n
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
}
