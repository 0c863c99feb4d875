package mgmt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// FetchContainers asks the management endpoint at baseURL (e.g. "http://127.0.0.1:9007") for
// what the dispatcher tracks, with the management token. ctx bounds the request. Errors say
// what the endpoint answered; they never hold the token.
func FetchContainers(ctx context.Context, baseURL, token string) (ContainersResponse, error) {
	url := strings.TrimRight(baseURL, "/") + ContainersPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ContainersResponse{}, fmt.Errorf("ask the management endpoint %s: %w", baseURL, err)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ContainersResponse{}, fmt.Errorf("ask the management endpoint: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Errors []string `json:"errors"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := http.StatusText(resp.StatusCode)
		if json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 {
			msg = strings.Join(e.Errors, "; ")
		}
		return ContainersResponse{}, fmt.Errorf("the management endpoint %s answered %d: %s", url, resp.StatusCode, msg)
	}
	var out ContainersResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return ContainersResponse{}, fmt.Errorf("read the management endpoint's answer from %s: %w", url, err)
	}
	return out, nil
}

// BaseURL is the URL a client on this host uses to reach an endpoint listening on listen
// (management.listen): a wildcard or empty host becomes loopback. "" when listen is empty
// (no endpoint) or not host:port.
func BaseURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if listen == "" || err != nil || port == "" {
		return ""
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
