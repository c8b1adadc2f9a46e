package snowflake

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
)

// loadPrivateKeyFile reads the PEM file at path and parses the RSA private
// key in it, decrypting it with passphrase if it is encrypted.
func loadPrivateKeyFile(path, passphrase string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The path error names the file but holds none of its contents.
		return nil, fmt.Errorf("reading the private key: %w", err)
	}
	return parsePrivateKey(data, passphrase, path)
}

// parsePrivateKey parses the first PEM block of data as an RSA private key:
// PKCS#8, unencrypted ("PRIVATE KEY") or encrypted with PBES2
// ("ENCRYPTED PRIVATE KEY", what `openssl pkcs8 -topk8 -v2 …` writes), or
// unencrypted PKCS#1 ("RSA PRIVATE KEY"). where names the key's source in
// errors, which never quote the key or the passphrase.
func parsePrivateKey(data []byte, passphrase, where string) (*rsa.PrivateKey, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("reading the private key from %s: %s", where, fmt.Sprintf(format, args...))
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fail("no PEM block found (expected -----BEGIN PRIVATE KEY----- or -----BEGIN ENCRYPTED PRIVATE KEY-----)")
	}
	der := block.Bytes
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		if passphrase == "" {
			return nil, fail("the key is encrypted and no passphrase was given")
		}
		var err error
		der, err = decryptPKCS8(der, []byte(passphrase))
		if err != nil {
			return nil, fail("%v", err)
		}
		fallthrough
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			if block.Type == "ENCRYPTED PRIVATE KEY" {
				return nil, fail("the passphrase is wrong or the key is damaged")
			}
			return nil, fail("%v", err)
		}
		rsaKey, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fail("it is a %T key; Snowflake key-pair authentication needs an RSA key", key)
		}
		return rsaKey, nil
	case "RSA PRIVATE KEY":
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, fail("the key uses OpenSSL's legacy PEM encryption, which is insecure and not supported; " +
				"convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key.p8`")
		}
		key, err := x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			return nil, fail("%v", err)
		}
		return key, nil
	default:
		return nil, fail("found a %q PEM block, expected PRIVATE KEY or ENCRYPTED PRIVATE KEY", block.Type)
	}
}

// The object identifiers of PKCS#5 v2 (RFC 8018) that decryptPKCS8
// understands.
var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

type encryptedPrivateKeyInfo struct {
	Algorithm     algorithmIdentifier
	EncryptedData []byte
}

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type pbes2Params struct {
	KeyDerivationFunc algorithmIdentifier
	EncryptionScheme  algorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                 `asn1:"optional"`
	PRF            algorithmIdentifier `asn1:"optional"`
}

// maxPBKDF2Iterations bounds the work a key file can demand (OpenSSL writes
// 2048; a hostile file could ask for billions).
const maxPBKDF2Iterations = 10_000_000

// decryptPKCS8 decrypts an EncryptedPrivateKeyInfo protected with PBES2:
// PBKDF2 (HMAC-SHA1 or SHA-2) and AES-CBC or 3DES-CBC, the schemes OpenSSL
// and Snowflake's key-pair documentation use. It returns the DER of the
// PrivateKeyInfo inside.
func decryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
		return nil, errors.New("the encrypted key is not valid PKCS#8")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("the key is encrypted with %v, not PBES2; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, errors.New("the key's PBES2 parameters are not valid")
	}
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("the key's key derivation %v is not PBKDF2", params.KeyDerivationFunc.Algorithm)
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil {
		return nil, errors.New("the key's PBKDF2 parameters are not valid")
	}
	if kdf.IterationCount < 1 || kdf.IterationCount > maxPBKDF2Iterations {
		return nil, fmt.Errorf("the key's PBKDF2 iteration count %d is out of range", kdf.IterationCount)
	}
	var prf func() hash.Hash
	switch alg := kdf.PRF.Algorithm; {
	case len(alg) == 0, alg.Equal(oidHMACSHA1):
		prf = sha1.New
	case alg.Equal(oidHMACSHA224):
		prf = sha256.New224
	case alg.Equal(oidHMACSHA256):
		prf = sha256.New
	case alg.Equal(oidHMACSHA384):
		prf = sha512.New384
	case alg.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("the key's PBKDF2 pseudo-random function %v is not supported", alg)
	}
	var keyLen int
	var newCipher func([]byte) (cipher.Block, error)
	switch alg := params.EncryptionScheme.Algorithm; {
	case alg.Equal(oidAES128CBC):
		keyLen, newCipher = 16, aes.NewCipher
	case alg.Equal(oidAES192CBC):
		keyLen, newCipher = 24, aes.NewCipher
	case alg.Equal(oidAES256CBC):
		keyLen, newCipher = 32, aes.NewCipher
	case alg.Equal(oidDESEDE3CBC):
		keyLen, newCipher = 24, des.NewTripleDESCipher
	default:
		return nil, fmt.Errorf("the key's cipher %v is not supported (use AES-CBC or 3DES-CBC)", alg)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, fmt.Errorf("the key's PBKDF2 key length %d does not suit its cipher", kdf.KeyLength)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil {
		return nil, errors.New("the key's cipher parameters are not valid")
	}
	key, err := pbkdf2.Key(prf, string(passphrase), kdf.Salt, kdf.IterationCount, keyLen)
	if err != nil {
		return nil, fmt.Errorf("deriving the decryption key: %w", err)
	}
	block, err := newCipher(key)
	if err != nil {
		return nil, fmt.Errorf("setting up the cipher: %w", err)
	}
	bs := block.BlockSize()
	data := info.EncryptedData
	if len(iv) != bs || len(data) == 0 || len(data)%bs != 0 {
		return nil, errors.New("the encrypted key has a bad length")
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, data)
	// PKCS#7 padding; a wrong passphrase almost always breaks it.
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > bs {
		return nil, errors.New("the passphrase is wrong or the key is damaged")
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, errors.New("the passphrase is wrong or the key is damaged")
		}
	}
	return plain[:len(plain)-pad], nil
}
