package marketo

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		body     string
		wantCode string
		wantNext string
	}{
		{name: "success", body: `{"requestId":"a#1","success":true,"result":[{"id":1}],"nextPageToken":"T","moreResult":true}`, wantNext: "T"},
		{name: "string code", body: `{"requestId":"a#1","success":false,"errors":[{"code":"606","message":"Max rate limit '100' exceeded with in '20' secs"}]}`, wantCode: "606"},
		{name: "numeric code", body: `{"success":false,"errors":[{"code":1013,"message":"Static list not found"}]}`, wantCode: "1013"},
		{name: "no errors", body: `{"success":false}`, wantCode: codeInvalidResponse},
		{name: "html", body: `<html>502 Bad Gateway</html>`, wantCode: codeInvalidResponse},
		{name: "asset warnings", body: `{"success":true,"warnings":["No assets found for the given search criteria."],"errors":[]}`},
		{name: "lead warnings", body: `{"success":true,"warnings":[{"code":1003,"message":"x"}],"result":[]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, err := decodeEnvelope("GET /x", []byte(tc.body))
			if tc.wantCode != "" {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, tc.wantCode, ae.Code)
				require.Equal(t, "GET /x", ae.Endpoint)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantNext, env.NextPageToken)
		})
	}
}

func TestDecodeLeads(t *testing.T) {
	t.Parallel()
	env, err := decodeEnvelope("GET /x", []byte(`{"success":true,"result":[
		{"id":1,"email":"a@x.com"},{"id":"2","Email":"B@x.com"},{"id":3,"email":null},{"id":4}]}`))
	require.NoError(t, err)
	got, err := decodeLeads(env, "GET /x", "email")
	require.NoError(t, err)
	require.Equal(t, []Member{{"a@x.com", 1}, {"B@x.com", 2}, {"", 3}, {"", 4}}, got)

	env, err = decodeEnvelope("GET /x", []byte(`{"success":true,"result":[{"id":7,"customerNo":12345}]}`))
	require.NoError(t, err)
	got, err = decodeLeads(env, "GET /x", "customerNo")
	require.NoError(t, err)
	require.Equal(t, []Member{{"12345", 7}}, got)

	env, err = decodeEnvelope("GET /x", []byte(`{"success":true,"result":[{"email":"a@x.com"}]}`))
	require.NoError(t, err)
	_, err = decodeLeads(env, "GET /x", "email")
	require.ErrorContains(t, err, "record 1 has no valid id")
}
