package main

import (
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestListensOnLoopbackByDefault: without --listen the emulator, which
// accepts any seeding and fault request on /_emulator, is reachable from
// this machine only.
func TestListensOnLoopbackByDefault(t *testing.T) {
	t.Parallel()
	o, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(o.listen)
	require.NoError(t, err)
	ip := net.ParseIP(host)
	require.NotNil(t, ip, "the default %q names an address, not a host name to resolve", o.listen)
	require.True(t, ip.IsLoopback(), "the default %q is loopback", o.listen)
}
