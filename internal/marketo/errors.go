package marketo

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrDailyQuota means Marketo's daily API quota (error 607) is exhausted, or
// the client's own count of today's calls reached Config.DailyQuota. The
// operation stops; rows not yet sent are left for a later run. The quota
// resets at midnight US Central time.
var ErrDailyQuota = errors.New("marketo: daily API quota exhausted; the remaining work is left for a later run")

// ErrListNotFound means the static list does not exist in Marketo.
var ErrListNotFound = errors.New("marketo: static list not found")

// ErrFolderNotFound means the folder in which a static list was to be created
// does not exist in Marketo. listsync does not create folders: the user
// creates it in Marketo (Lead Database > Group Lists) or names another one.
var ErrFolderNotFound = errors.New("marketo: folder not found; create it in Marketo (Lead Database > Group Lists) or name an existing folder")

// ErrAuth means Marketo refused the client's credentials (HTTP 401 from the
// Identity endpoint) or kept refusing fresh access tokens.
var ErrAuth = errors.New("marketo: authentication failed; check the client id and client secret")

// ErrorClass says how the client treats an [APIError].
type ErrorClass int

const (
	// ClassPermanent errors are not retried: the request or the data is wrong.
	ClassPermanent ErrorClass = iota
	// ClassRetryable errors are transient; the request is retried with
	// exponential backoff and jitter.
	ClassRetryable
	// ClassAuth errors (601, 602) are answered by fetching a new access token
	// and retrying the request once.
	ClassAuth
	// ClassQuota is the daily quota (607): retrying before the quota resets
	// is pointless, so the operation stops with [ErrDailyQuota].
	ClassQuota
)

// String returns the class's name.
func (c ErrorClass) String() string {
	switch c {
	case ClassRetryable:
		return "retryable"
	case ClassAuth:
		return "auth"
	case ClassQuota:
		return "quota"
	default:
		return "permanent"
	}
}

// APIError is an error Marketo answered: a response-level error code from the
// envelope (`success:false`, errors[0]), or an HTTP-level failure (HTTPStatus
// set, Code "http_<status>").
type APIError struct {
	// Code is Marketo's error code as a string ("606", "1004"), or
	// "http_<status>" for an HTTP-level failure without a Marketo code.
	Code string
	// Message is Marketo's message for the code.
	Message string
	// HTTPStatus is the HTTP status code when it was not 200, else 0.
	HTTPStatus int
	// Endpoint is the call that failed ("GET /rest/v1/leads.json").
	Endpoint string
}

// Error returns the code, message and endpoint.
func (e *APIError) Error() string {
	if e.Endpoint != "" {
		return fmt.Sprintf("marketo %s: error %s: %s", e.Endpoint, e.Code, e.Message)
	}
	return fmt.Sprintf("marketo: error %s: %s", e.Code, e.Message)
}

// Class classifies the error.
func (e *APIError) Class() ErrorClass {
	if e.HTTPStatus >= 500 {
		return ClassRetryable
	}
	if e.HTTPStatus == 429 || e.HTTPStatus == 408 {
		return ClassRetryable
	}
	if e.HTTPStatus != 0 && e.HTTPStatus != 200 {
		return ClassPermanent
	}
	switch e.Code {
	case "601", "602":
		return ClassAuth
	case "607":
		return ClassQuota
	case "500", "502", "604", "606", "608", "611", "614", "615", "713", "719", "1016", "1019", "1029",
		codeInvalidResponse:
		return ClassRetryable
	}
	return ClassPermanent
}

// Retryable reports whether the request may succeed if sent again later.
func (e *APIError) Retryable() bool { return e.Class() == ClassRetryable }

// Auth reports whether the access token was refused (601, 602).
func (e *APIError) Auth() bool { return e.Class() == ClassAuth }

// Permanent reports whether sending the request again cannot help (including
// the daily quota, until it resets).
func (e *APIError) Permanent() bool {
	c := e.Class()
	return c == ClassPermanent || c == ClassQuota
}

// httpError builds the APIError of a non-200 HTTP response.
func httpError(endpoint string, status int, body []byte) *APIError {
	msg := string(body)
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = "HTTP " + strconv.Itoa(status)
	}
	return &APIError{Code: "http_" + strconv.Itoa(status), Message: msg, HTTPStatus: status, Endpoint: endpoint}
}
