package azuread

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// newProvider validates cfg and builds the token cache WithAzureAD's
// transport asks for tokens.
func newProvider(cfg Config, now func() time.Time) (*tokenCache, error) {
	s, err := validate(cfg, os.Getenv)
	if err != nil {
		return nil, err
	}
	cred, err := newCredential(s)
	if err != nil {
		return nil, err
	}
	return newTokenCache(cred, s.scope, now, s.describe(), s.secrets), nil
}

// describe names the credential in errors: its kind and the (public) IDs.
func (s settings) describe() string {
	var b strings.Builder
	b.WriteString(s.kind.String())
	if s.kind == kindManagedIdentity {
		if s.cfg.ClientID != "" {
			fmt.Fprintf(&b, ", user-assigned client ID %s", s.cfg.ClientID)
		} else {
			b.WriteString(", system-assigned")
		}
	} else {
		if s.cfg.TenantID != "" {
			fmt.Fprintf(&b, ", tenant %s", s.cfg.TenantID)
		}
		if s.cfg.ClientID != "" {
			fmt.Fprintf(&b, ", client %s", s.cfg.ClientID)
		}
	}
	fmt.Fprintf(&b, ", scope %s", s.scope)
	return b.String()
}

// secrets returns every secret value that may end up in an error from the
// Azure SDK, so that errors can be cleaned of them: the client secret, the
// files' contents and the variables the SDK reads secrets from. Called on
// the error path only.
func (s settings) secrets() []string {
	out := []string{s.cfg.ClientSecret}
	for _, path := range []string{s.cfg.ClientSecretFile, s.workloadFile, os.Getenv("AZURE_FEDERATED_TOKEN_FILE")} {
		if path == "" {
			continue
		}
		if b, err := readBounded(path, maxSecretFile); err == nil {
			out = append(out, strings.TrimSpace(string(b)))
		}
	}
	for _, name := range []string{"AZURE_CLIENT_SECRET", "AZURE_PASSWORD", "IDENTITY_HEADER", "MSI_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD"} {
		out = append(out, os.Getenv(name))
	}
	return out
}

// newCredential builds the Azure SDK credential s chooses. Files are read
// now, so that a missing or malformed one fails New.
func newCredential(s settings) (azcore.TokenCredential, error) {
	co := s.clientOptions()
	switch s.kind {
	case kindManagedIdentity:
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if s.cfg.ClientID != "" {
			o.ID = azidentity.ClientID(s.cfg.ClientID)
		}
		cred, err := azidentity.NewManagedIdentityCredential(o)
		if err != nil {
			return nil, fmt.Errorf("ManagedIdentity: %w", err)
		}
		return cred, nil

	case kindWorkloadIdentity:
		if _, err := os.Stat(s.workloadFile); err != nil {
			return nil, fmt.Errorf("WorkloadIdentity: the federated token file (AZURE_FEDERATED_TOKEN_FILE): %w", err)
		}
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions:            co,
			ClientID:                 s.cfg.ClientID,
			TenantID:                 s.cfg.TenantID,
			TokenFilePath:            s.workloadFile,
			DisableInstanceDiscovery: s.trusted,
		})
		if err != nil {
			return nil, fmt.Errorf("WorkloadIdentity: %w", err)
		}
		return cred, nil

	case kindSecret:
		newSecretCred := func(secret string) (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential(s.cfg.TenantID, s.cfg.ClientID, secret, &azidentity.ClientSecretCredentialOptions{
				ClientOptions:            co,
				DisableInstanceDiscovery: s.trusted,
			})
		}
		if s.cfg.ClientSecret != "" {
			cred, err := newSecretCred(strings.TrimSpace(s.cfg.ClientSecret))
			if err != nil {
				return nil, fmt.Errorf("Config.ClientSecret: %w", err)
			}
			return cred, nil
		}
		return newFileCredential("Config.ClientSecretFile", s.cfg.ClientSecretFile, maxSecretFile, func(data []byte) (azcore.TokenCredential, error) {
			secret := strings.TrimSpace(string(data))
			if secret == "" {
				return nil, fmt.Errorf("the file is empty: write the client secret into it")
			}
			return newSecretCred(secret)
		})

	case kindCertificate:
		return newFileCredential("Config.ClientCertificateFile", s.cfg.ClientCertificateFile, maxCertificateFile, func(data []byte) (azcore.TokenCredential, error) {
			certs, key, err := azidentity.ParseCertificates(data, nil)
			if err != nil {
				return nil, fmt.Errorf("want PEM with the certificate and its unencrypted private key: %w", err)
			}
			if _, ok := key.(*rsa.PrivateKey); !ok {
				return nil, fmt.Errorf("the private key is %s: Entra ID certificate credentials need an RSA key", keyKind(key))
			}
			return azidentity.NewClientCertificateCredential(s.cfg.TenantID, s.cfg.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
				ClientOptions:            co,
				DisableInstanceDiscovery: s.trusted,
			})
		})
	}
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
		ClientOptions:            co,
		DisableInstanceDiscovery: s.trusted,
	})
	if err != nil {
		return nil, fmt.Errorf("the Azure SDK's default credential chain: %w", err)
	}
	return cred, nil
}

func keyKind(key any) string {
	switch key.(type) {
	case *ecdsa.PrivateKey:
		return "an ECDSA key"
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	}
	return fmt.Sprintf("a %T", key)
}

// fileCredential is a credential built from a file that is read again
// before each token request and rebuilt when its content changed, so that a
// rotated secret or certificate takes effect without a restart.
type fileCredential struct {
	field string // the Config field, for errors
	path  string
	limit int64
	build func(data []byte) (azcore.TokenCredential, error)

	mu   sync.Mutex
	data []byte
	cred azcore.TokenCredential
}

// newFileCredential reads the file once: an unreadable or malformed file
// fails New.
func newFileCredential(field, path string, limit int64, build func([]byte) (azcore.TokenCredential, error)) (*fileCredential, error) {
	f := &fileCredential{field: field, path: path, limit: limit, build: build}
	if _, reloadErr, err := f.load(); err != nil || reloadErr != nil {
		if err == nil {
			err = reloadErr
		}
		return nil, err
	}
	return f, nil
}

// load returns the credential for the file's current content. When the
// file cannot be read or used but an earlier content could, it returns the
// earlier credential with the reload error beside it: a rotation that
// replaces the file non-atomically must not stop the exports.
func (f *fileCredential) load() (cred azcore.TokenCredential, reloadErr, err error) {
	data, err := readBounded(f.path, f.limit)
	if err != nil {
		err = fmt.Errorf("%s: %w", f.field, err)
	} else {
		f.mu.Lock()
		if f.cred != nil && bytes.Equal(data, f.data) {
			defer f.mu.Unlock()
			return f.cred, nil, nil
		}
		f.mu.Unlock()
		var c azcore.TokenCredential
		if c, err = f.build(data); err == nil {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.data, f.cred = data, c
			return c, nil, nil
		}
		err = fmt.Errorf("%s %q: %w", f.field, f.path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cred != nil {
		return f.cred, err, nil
	}
	return nil, nil, err
}

// GetToken implements azcore.TokenCredential.
func (f *fileCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	cred, reloadErr, err := f.load()
	if err != nil {
		return azcore.AccessToken{}, err
	}
	tok, err := cred.GetToken(ctx, opts)
	if err != nil && reloadErr != nil {
		// The old content failed too; say why the new one was not used.
		return tok, &reloadError{err: err, reload: reloadErr}
	}
	return tok, err
}

// reloadError is a token failure with an earlier content of the file after
// the file's current content could not be used.
type reloadError struct{ err, reload error }

func (e *reloadError) Error() string {
	return e.err.Error() + " (with the file's earlier content; its current content was not used: " + e.reload.Error() + ")"
}

func (e *reloadError) Unwrap() error { return e.err }

// readBounded reads at most limit bytes of path, failing on a larger file:
// a secret file of megabytes is the wrong file.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: is it the right file?", path, limit)
	}
	return data, nil
}
