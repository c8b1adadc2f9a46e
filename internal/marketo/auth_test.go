package marketo_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
)

// stepClock is a clock the test moves by hand.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (s *stepClock) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *stepClock) advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

// TestTokenRefreshedBeforeExpiry: the client asks for a new token when its
// own will expire within TokenRefreshMargin; Marketo hands back the same
// token until it expires, and the client then uses it to the end rather than
// asking on every call. An expired token (602) is replaced at once.
func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	clk := &stepClock{now: time.Now()}
	b := setup(t, options{
		speed: 1,
		em:    emulator.Config{TokenTTL: time.Hour},
		client: func(c *marketo.Config) {
			c.Now = clk.Now
			c.TokenRefreshMargin = time.Minute
		},
	})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	get := func() {
		t.Helper()
		_, err := b.c.ResolveList(t.Context(), marketo.ListRef{ID: list})
		require.NoError(t, err)
	}
	get()
	get()
	require.Equal(t, int64(1), b.em.Stats().IdentityCalls)

	clk.advance(time.Hour - 30*time.Second) // inside the margin, by the client's clock
	get()
	require.Equal(t, int64(2), b.em.Stats().IdentityCalls, "refreshed before expiry")
	get()
	get()
	require.Equal(t, int64(2), b.em.Stats().IdentityCalls, "the same token is used to its end")

	b.em.ExpireTokens()
	get()
	st := b.em.Stats()
	require.Equal(t, int64(3), st.IdentityCalls)
	require.Equal(t, int64(1), st.Rejected["602"])
	require.Zero(t, st.Rejected["601"])
}
