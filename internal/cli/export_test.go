package cli

import "github.com/listsync/listsync/internal/marketo"

// WithMarketoConfigForTest makes every command adjust the Marketo client's
// config with f before building the client (to shorten poll intervals).
func WithMarketoConfigForTest(f func(*marketo.Config)) Option {
	return func(e *env) { e.tuneMarketo = f }
}
