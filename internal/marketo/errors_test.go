package marketo

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAPIErrorClass(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code   string
		status int
		want   ErrorClass
	}{
		{"601", 0, ClassAuth},
		{"602", 0, ClassAuth},
		{"607", 0, ClassQuota},
		{"502", 0, ClassRetryable},
		{"604", 0, ClassRetryable},
		{"606", 0, ClassRetryable},
		{"608", 0, ClassRetryable},
		{"611", 0, ClassRetryable},
		{"614", 0, ClassRetryable},
		{"615", 0, ClassRetryable},
		{"713", 0, ClassRetryable},
		{"719", 0, ClassRetryable},
		{"1016", 0, ClassRetryable},
		{"1019", 0, ClassRetryable},
		{"1029", 0, ClassRetryable},
		{codeInvalidResponse, 0, ClassRetryable},
		{"http_502", 502, ClassRetryable},
		{"http_503", 503, ClassRetryable},
		{"613", 0, ClassPermanent}, // retried only on a bulk status read
		{"603", 0, ClassPermanent},
		{"609", 0, ClassPermanent},
		{"709", 0, ClassPermanent},
		{"1003", 0, ClassPermanent},
		{"1004", 0, ClassPermanent},
		{"1013", 0, ClassPermanent},
		{"http_413", 413, ClassPermanent},
		{"http_414", 414, ClassPermanent},
		{"http_404", 404, ClassPermanent},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			e := &APIError{Code: tc.code, Message: "m", HTTPStatus: tc.status}
			require.Equal(t, tc.want, e.Class(), "class of %s", tc.code)
			require.Equal(t, tc.want == ClassRetryable, e.Retryable())
			require.Equal(t, tc.want == ClassAuth, e.Auth())
			require.Equal(t, tc.want == ClassPermanent || tc.want == ClassQuota, e.Permanent())
		})
	}
}

func TestAPIErrorMessage(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("adding to list 1: %w", &APIError{Code: "607", Message: "Daily quota reached"})
	var ae *APIError
	require.True(t, errors.As(err, &ae))
	require.Equal(t, "607", ae.Code)
	require.Contains(t, (&APIError{Code: "606", Message: "Max rate limit", Endpoint: "GET /x"}).Error(), "GET /x: error 606: Max rate limit")
}
