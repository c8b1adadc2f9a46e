package snowflake

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The keys in testdata were made with OpenSSL (see testdata/README.md).
func TestParsePrivateKeyOpenSSLFiles(t *testing.T) {
	t.Parallel()
	want, err := loadPrivateKeyFile(filepath.Join("testdata", "rsa_key.p8"), "")
	require.NoError(t, err)

	tests := []struct {
		file, passphrase string
		errContains      string
	}{
		{file: "rsa_key_pkcs1.pem"},
		{file: "rsa_key_des3.p8", passphrase: "listsync-test"},
		{file: "rsa_key_aes256.p8", passphrase: "listsync-test"},
		{file: "rsa_key_aes128_sha1.p8", passphrase: "listsync-test"},
		{file: "rsa_key_aes256.p8", passphrase: "wrong-passphrase", errContains: "passphrase is wrong"},
		{file: "rsa_key_des3.p8", errContains: "no passphrase was given"},
		{file: "rsa_key_pbes1.p8", passphrase: "listsync-test", errContains: "not PBES2"},
		{file: "rsa_key_pkcs1_enc.pem", passphrase: "listsync-test", errContains: "legacy PEM encryption"},
		{file: "missing.p8", errContains: "missing.p8"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.passphrase, func(t *testing.T) {
			t.Parallel()
			key, err := loadPrivateKeyFile(filepath.Join("testdata", tt.file), tt.passphrase)
			if tt.errContains != "" {
				require.ErrorContains(t, err, tt.errContains)
				require.NotContains(t, err.Error(), "listsync-test", "the passphrase stays out of errors")
				require.NotContains(t, err.Error(), "wrong-passphrase")
				return
			}
			require.NoError(t, err)
			require.True(t, want.Equal(key))
		})
	}
}

func TestParsePrivateKeyRefusesNonRSA(t *testing.T) {
	t.Parallel()
	// An Ed25519 PKCS#8 key (RFC 8410's example).
	pemText := "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n"
	_, err := parsePrivateKey([]byte(pemText), "", "inline")
	require.ErrorContains(t, err, "needs an RSA key")
	data, err := os.ReadFile(filepath.Join("testdata", "rsa_key.p8"))
	require.NoError(t, err)
	_, err = parsePrivateKey(data[:200], "", "truncated")
	require.ErrorContains(t, err, "truncated")
}
