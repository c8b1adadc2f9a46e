package emulator

import (
	"net/http"
	"net/http/httptest"
	"strconv"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// httptestRecorder serves one request directly through the handler.
func httptestRecorder(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}
