package snowflake

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// loadPrivateKeyFile reads the PEM file at path and parses the RSA private
// key in it.
func loadPrivateKeyFile(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The path error names the file but holds none of its contents.
		return nil, fmt.Errorf("reading the private key: %w", err)
	}
	return parsePrivateKey(data, path)
}

// parsePrivateKey parses the first PEM block of data as an unencrypted RSA
// private key, PKCS#8 or PKCS#1. where names the key's source in errors,
// which never quote the key.
func parsePrivateKey(data []byte, where string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("reading the private key from %s: no PEM block found (expected -----BEGIN PRIVATE KEY-----)", where)
	}
	switch block.Type {
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("reading the private key from %s: %w", where, err)
		}
		rsaKey, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("reading the private key from %s: it is a %T key; Snowflake key-pair authentication needs an RSA key", where, key)
		}
		return rsaKey, nil
	case "RSA PRIVATE KEY":
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, encryptedKeyError(where)
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("reading the private key from %s: %w", where, err)
		}
		return key, nil
	case "ENCRYPTED PRIVATE KEY":
		return nil, encryptedKeyError(where)
	default:
		return nil, fmt.Errorf("reading the private key from %s: found a %q PEM block, expected PRIVATE KEY", where, block.Type)
	}
}

func encryptedKeyError(where string) error {
	return fmt.Errorf("reading the private key from %s: the key is encrypted, and listsync reads unencrypted keys only; "+
		"decrypt it with `openssl pkcs8 -topk8 -nocrypt -in encrypted.p8 -out key.p8` and protect the file with mode 0600", where)
}
